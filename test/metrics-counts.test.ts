// /metrics after a known workload counts what the client did: one query per request (simple or
// extended), one transaction per transaction (a statement outside a block is one), one pool wait per
// transaction, server errors by SQLSTATE; and while clients wait for the pool, the waiting gauges
// show them, and each one that gives up counts as a 57P05 pgway sent. There is no direct-PostgreSQL
// half: PostgreSQL has no such endpoint.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { errorOf, waitFor } from './helpers/pg-helpers.js';

const DB = 'metrics_counts';
const { files, connect } = fileGatewayTests(DB);

async function scrape(gw: FileGateway): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
}
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('/metrics after a known workload', () => {
  it('N simple queries, M errors, one 3-statement transaction, K extended-protocol queries: counts match', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }', http: true });
    const pool = `${DB}/app`;
    const c = await connect(gw.url());
    await c.query('SELECT 1');
    const base = await scrape(gw);
    for (let i = 0; i < 5; i++) await c.query('SELECT 1');
    for (let i = 0; i < 2; i++) await errorOf(c.query('SELECT 1/0'));
    await c.query('BEGIN');
    await c.query('SELECT 2');
    await c.query('COMMIT');
    for (let i = 0; i < 3; i++) await c.query('SELECT $1::int AS n', [i]);
    const after = await scrape(gw);
    const d = (series: string): number => sample(after, series) - sample(base, series);
    expect({
      queries: d(`pgway_query_duration_seconds_count{pool="${pool}"}`),
      transactions: d(`pgway_transaction_duration_seconds_count{pool="${pool}"}`),
      waits: d(`pgway_pool_wait_seconds_count{pool="${pool}"}`),
      divByZero: d('pgway_errors_total{source="server",sqlstate="22012"}'),
    }).toEqual({ queries: 13, transactions: 11, waits: 11, divByZero: 2 });
  });

  it('K clients waiting and their 57P05: gauge and error counter', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 600 }', http: true });
    const pool = `${DB}/app`;
    const holder = await connect(gw.url());
    const ws = await Promise.all([0, 1, 2].map(() => connect(gw.url())));
    const base = await scrape(gw);
    await holder.query('BEGIN');
    const errs = ws.map((w) => errorOf(w.query('SELECT 1')));
    await waitFor('3 waiting', () => gw.gateway.clients().filter((c) => c.state === 'waiting').length === 3, 2000);
    const during = await scrape(gw);
    await Promise.all(errs);
    await holder.query('COMMIT');
    const after = await scrape(gw);
    expect({
      waiting: sample(during, `pgway_clients_waiting{pool="${pool}"}`),
      waitingClients: sample(during, 'pgway_client_connections{state="waiting"}'),
      timeouts: sample(after, 'pgway_errors_total{source="gateway",sqlstate="57P05"}') - sample(base, 'pgway_errors_total{source="gateway",sqlstate="57P05"}'),
    }).toEqual({ waiting: 3, waitingClients: 3, timeouts: 3 });
  });
});
