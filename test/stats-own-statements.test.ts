// SHOW STATS and /metrics count the client's requests and transactions, never pgway's own
// statements: after a client's RESET, pgway lays the client's settings on again on the connection
// it holds, and that statement's ReadyForQuery is neither a request nor a transaction of the
// client's, nor does it stretch the client's transaction time.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';

const DB = 'stats_own_statements_db';
const { files, connect } = fileGatewayTests(DB);

async function scrape(port: number | undefined): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
const settled = (): Promise<void> => new Promise((r) => setTimeout(r, 300)); // pgway's statement after the RESET is answered meanwhile

describe("statistics around pgway's settings statement", () => {
  it('a RESET is one transaction, no longer than it took, in pgway_transaction_duration_seconds', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }', http: true });
    const c = await connect(gw.url());
    await c.query('SELECT 1');
    const series = `pgway_transaction_duration_seconds`;
    const before = await scrape(gw.httpPort);
    const t0 = performance.now();
    await c.query('RESET work_mem');
    await settled();
    const elapsed = (performance.now() - t0) / 1000;
    const after = await scrape(gw.httpPort);
    const d = (k: string): number => sample(after, `${series}_${k}{pool="${DB}/app"}`) - sample(before, `${series}_${k}{pool="${DB}/app"}`);
    expect({ count: d('count'), sumWithinElapsed: d('sum') <= elapsed }).toEqual({ count: 1, sumWithinElapsed: true });
  });

  it('SHOW STATS counts a client RESET as one request and one transaction, no longer than it took', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }' });
    const c = await connect(gw.url());
    const admin = await connect(gw.url('admin', 'pgway'));
    type Row = Record<string, string>;
    const stats = async (): Promise<Row> => (await admin.query<Row>('SHOW STATS')).rows.find((r) => r.database === DB)!;
    await c.query('SELECT 1');
    const a = await stats();
    await c.query('SELECT 1');
    const b = await stats();
    const t0 = performance.now();
    await c.query('RESET work_mem');
    await settled();
    const elapsedUs = (performance.now() - t0) * 1000;
    const d = await stats();
    const delta = (x: Row, y: Row, k: string): number => Number(y[k]) - Number(x[k]);
    // SELECT 1: one of each.
    expect([delta(a, b, 'total_xact_count'), delta(a, b, 'total_query_count')]).toEqual([1, 1]);
    // RESET work_mem: one of each as well.
    expect({ xacts: delta(b, d, 'total_xact_count'), queries: delta(b, d, 'total_query_count'), xactTimeWithinElapsed: delta(b, d, 'total_xact_time') <= elapsedUs })
      .toEqual({ xacts: 1, queries: 1, xactTimeWithinElapsed: true });
  });
});
