// Found by review round 15 in changes of the same day, and fixed; what went wrong:
// A FATAL read in the same chunk as the ReadyForQuery that ends a transaction-mode client's request
// is held back, and given to the client only if it keeps the connection (README: "a transaction-mode
// client between transactions never hears of it"). But when the request set a setting pgway reads
// back before the client leaves the connection (default_text_search_config: betweenTransactions ->
// OwnQuestions.readSettingBack), the client is still attached when the held FATAL is passed on
// (ServerConnection.passErrorBehindReady runs after onServerReady): the client gets FATAL 57P01 and
// is disconnected, though it is between transactions and holds no state there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { rawTrustLogin, readCycle, queryMessage, type RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/pg-helpers.js';
import { terminateOnceIdleBlocking } from './helpers/terminate.js';


let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

/** Runs `sql` on a server connection that is terminated right behind its answer; then what a next query gets. */
async function terminatedBehind(sql: string): Promise<{ second: { rows: (string | null)[][]; errors: string[] }; third: { rows: (string | null)[][]; errors: string[] } | string }> {
  const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
  const c: RawClient = client;
  try {
    c.write(queryMessage('SELECT pg_backend_pid()'));
    const pid = Number((await readCycle(c)).rows[0]![0]);
    c.write(queryMessage(`${sql}; SELECT 'done', pg_sleep(0.2)`));
    const running = async (): Promise<boolean> =>
      (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 1;
    await waitFor('the server to run the request', running);
    terminateOnceIdleBlocking(pid);
    const second = await readCycle(c);
    c.write(queryMessage("SELECT current_setting('default_text_search_config')"));
    const third = await Promise.race([
      readCycle(c),
      new Promise<string>((resolve) => setTimeout(() => resolve('no answer within 3 s'), 3000)),
    ]).catch((e: Error) => `closed: ${e.message}`);
    return { second, third };
  } finally {
    c.destroy();
  }
}

describe('a FATAL behind the last answer of a transaction-mode client between transactions', () => {
  it('control: after a plain SET, the client never hears of it and goes on', async () => {
    const { second, third } = await terminatedBehind("SET work_mem = '5MB'");
    expect(second.errors).toEqual([]);
    expect(typeof third === 'string' ? third : third.errors).toEqual([]);
  }, 30_000);

  it('after a SET of a setting pgway reads back: the same (the client goes on, with its setting)', async () => {
    const { second, third } = await terminatedBehind("SET default_text_search_config = 'pg_catalog.german'");
    expect(second.errors).toEqual([]);
    expect(third).toEqual({ rows: [['pg_catalog.german']], errors: [] });
  }, 30_000);
});
