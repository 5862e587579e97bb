// Found by review round 19 (B), and fixed: a FATAL (pg_terminate_backend) read in the same chunk as the ReadyForQuery
// that ends a transaction-mode client's request must not reach a client that is between
// transactions and pinned by nothing (README: such a client "never hears of it", and goes on on
// another connection; test/fatal-after-ready, test/fatal-read-back). It does, when the request
// RESET a setting (RESET x, RESET ALL, RESET ROLE) or ended a transaction that had failed and went
// on past a ROLLBACK TO: pgway then lays the client's settings on again (SessionState.settle ->
// resync) on the dying connection, the client stays attached meanwhile, and the held FATAL is
// passed to it (ServerConnection.passErrorBehindReady): the client gets FATAL 57P01 and is
// disconnected, and its next query gets no answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { answersWithin, rawTrustLogin, readCycle, queryMessage, type RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/pg-helpers.js';
import { terminateOnceIdleBlocking } from './helpers/terminate.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

/**
 * In one transaction (so on one server connection, whose pid is taken first): `pre`; then, unless
 * `inBlock`, COMMIT. Then `sql` runs with a pg_sleep behind it, and the connection is terminated
 * right behind its answer. Returns that answer, what else arrives, and the answer to a next query.
 */
async function terminatedBehind(pre: string[], sql: string, inBlock = false): Promise<{ second: unknown; after: string[]; third: unknown }> {
  const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
  const c: RawClient = client;
  try {
    c.write(queryMessage('BEGIN; SELECT pg_backend_pid()'));
    const pid = Number((await readCycle(c)).rows[0]![0]);
    for (const p of pre) {
      c.write(queryMessage(p));
      await readCycle(c);
    }
    if (!inBlock) {
      c.write(queryMessage('COMMIT'));
      await readCycle(c);
    }
    c.write(queryMessage(`${sql}; SELECT 'done', pg_sleep(0.2)`));
    const running = async (): Promise<boolean> =>
      (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 1;
    await waitFor('the server to run the request', running);
    terminateOnceIdleBlocking(pid);
    const second = await readCycle(c).catch((e: Error) => `closed: ${e.message}`);
    const after = await answersWithin(c, 500);
    c.write(queryMessage("SELECT current_setting('work_mem')"));
    const third = await Promise.race([
      readCycle(c),
      new Promise<string>((resolve) => setTimeout(() => resolve('no answer within 3 s'), 3000)),
    ]).catch((e: Error) => `closed: ${e.message}`);
    return { second, after, third };
  } finally {
    c.destroy();
  }
}

describe('a FATAL behind the answer to a RESET, for a client between transactions', () => {
  it('control: after a SET, the client never hears of it and goes on', async () => {
    const r = await terminatedBehind([], "SET work_mem = '5MB'");
    expect(r).toEqual({ second: { rows: [['done', '']], errors: [] }, after: ['<open>'], third: { rows: [['5MB']], errors: [] } });
  }, 30_000);

  it('RESET work_mem: the same', async () => {
    const r = await terminatedBehind(["SET work_mem = '5MB'"], 'RESET work_mem');
    expect(r).toEqual({ second: { rows: [['done', '']], errors: [] }, after: ['<open>'], third: { rows: [['4MB']], errors: [] } });
  }, 30_000);

  it('RESET ALL: the same', async () => {
    const r = await terminatedBehind(["SET work_mem = '5MB'"], 'RESET ALL');
    expect(r).toEqual({ second: { rows: [['done', '']], errors: [] }, after: ['<open>'], third: { rows: [['4MB']], errors: [] } });
  }, 30_000);

  it('RESET ROLE: the same', async () => {
    const r = await terminatedBehind(['SET ROLE app'], 'RESET ROLE');
    expect(r).toEqual({ second: { rows: [['done', '']], errors: [] }, after: ['<open>'], third: { rows: [['4MB']], errors: [] } });
  }, 30_000);

  it('ROLLBACK TO a savepoint after an error, then COMMIT: the same', async () => {
    const r = await terminatedBehind(['SAVEPOINT s', "SET work_mem = '7MB'", 'SELECT 1/0'], 'ROLLBACK TO s; COMMIT', true);
    expect(r).toEqual({ second: { rows: [['done', '']], errors: [] }, after: ['<open>'], third: { rows: [['4MB']], errors: [] } });
  }, 30_000);
});
