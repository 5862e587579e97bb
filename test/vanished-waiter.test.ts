// A client that pipelines requests while it waits for the only server connection, then leaves.
// Below MAX_HELD_WHILE_WAITING (1 MB held) pgway still reads it, sees it leave, and its requests
// never run (README, "Leaving"). Past that bound pgway reads it no further, so it cannot see it leave
// before it is served (README, "Known differences"): then it goes, and the clients behind it are
// served; it does not stay in the wait queue or in the sessions.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { queryMessage } from './helpers/raw-client.js';
import { rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 20000 }' });
  await adminQuery('DROP TABLE IF EXISTS vanished_waiter; CREATE TABLE vanished_waiter (i int); GRANT ALL ON vanished_waiter TO app');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS vanished_waiter');
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sessions = (): number => (gw.gateway as unknown as { sessions: Set<unknown> }).sessions.size;

async function clientsWaiting(): Promise<number> {
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  await admin.connect();
  const r = await admin.query('SHOW POOLS');
  await admin.end();
  const row = r.rows.find((x) => x.database === 'app' && x.user === 'app');
  return Number(row.cl_waiting);
}

/** Holds the only server connection, has a client pipeline `count` ~1 KB INSERTs behind it and leave, then frees the connection. */
async function leaveWhileWaiting(count: number): Promise<{ waitingAfterLeaving: number; sessionsAfterLeaving: number; rows: number; sessionsInTheEnd: number }> {
  await adminQuery('TRUNCATE vanished_waiter');
  const atStart = sessions();
  const holder = new pg.Client(gw.url());
  await holder.connect();
  await holder.query('BEGIN'); // the only server connection is taken
  const before = sessions();
  const c = await rawAfterLogin(gw.url(), () => undefined);
  const pad = `-- ${'p'.repeat(900)}\n`; // ~1 KB per request
  for (let i = 0; i < count; i++) c.socket.write(queryMessage(`${pad}INSERT INTO vanished_waiter VALUES (${i})`));
  await sleep(1000);
  c.destroy(); // the client gives up and leaves
  await sleep(1000);
  const waitingAfterLeaving = await clientsWaiting();
  const sessionsAfterLeaving = sessions() - before;
  await holder.query('COMMIT');
  await holder.end();
  // Another client is served (behind whatever the departed one left running).
  const other = new pg.Client(gw.url());
  await other.connect();
  await other.query('SELECT 1');
  await other.end();
  const [{ n: rows }] = (await adminQuery('SELECT count(*)::int AS n FROM vanished_waiter')).rows as [{ n: number }];
  for (let i = 0; i < 50 && sessions() > atStart; i++) await sleep(100);
  return { waitingAfterLeaving, sessionsAfterLeaving, rows, sessionsInTheEnd: sessions() - atStart };
}

describe('a client that pipelines ~1 KB INSERTs while waiting for the only connection, then leaves', () => {
  it('below the 1 MB bound: its requests never run and it leaves the wait queue at once', { timeout: 30_000 }, async () => {
    expect(await leaveWhileWaiting(500)).toEqual({ waitingAfterLeaving: 0, sessionsAfterLeaving: 0, rows: 0, sessionsInTheEnd: 0 });
  });

  it('past the 1 MB bound: it is gone once it is served, and the client behind it is served', { timeout: 30_000 }, async () => {
    // Until then it is not read, so not seen leaving, and what it sent runs (README, Known differences).
    const { sessionsInTheEnd } = await leaveWhileWaiting(3000);
    expect({ sessionsInTheEnd, waitingInTheEnd: await clientsWaiting() }).toEqual({ sessionsInTheEnd: 0, waitingInTheEnd: 0 });
  });
});
