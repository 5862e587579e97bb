// A server connection that is not to be used again (after RECONNECT, past server_lifetime_ms) closes
// when its client gives it back, without first running the reset the pool would run before reusing
// it: server_reset_query in session mode, ROLLBACK for a client that left inside a transaction.
// The reset query here leaves a row behind, so whether it ran shows on the server.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { waitFor } from './helpers/pg-helpers.js';

const RESET = "{ mode: session, size: 2, server_reset_query: 'INSERT INTO occ_resets VALUES (pg_backend_pid())' }";
let gw: TestGateway | undefined;
beforeAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS occ_resets; CREATE TABLE occ_resets (pid int); GRANT ALL ON occ_resets TO app');
});
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});
afterAll(async () => { await adminQuery('DROP TABLE IF EXISTS occ_resets'); });

async function client(url: string): Promise<{ c: pg.Client; pid: number }> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { c, pid };
}

async function reconnect(g: TestGateway): Promise<void> {
  const admin = new pg.Client({ connectionString: g.url('admin', 'pgway') });
  await admin.connect();
  await admin.query('RECONNECT');
  await admin.end();
}

const resetsOf = async (pid: number): Promise<number> =>
  (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM occ_resets WHERE pid = $1', [pid])).rows[0]!.n;
const backendGone = async (pid: number): Promise<boolean> =>
  (await adminQuery('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0;

describe('a session-mode client leaving', () => {
  it('a connection to be reused is reset first (server_reset_query runs there)', async () => {
    gw = await startGateway({ pool: RESET });
    const { c, pid } = await client(gw.url());
    await c.end();
    await waitFor('the reset query', async () => (await resetsOf(pid)) === 1);
    expect(await backendGone(pid)).toBe(false);
  });

  it('after RECONNECT: the connection closes without the reset', async () => {
    gw = await startGateway({ pool: RESET });
    const { c, pid } = await client(gw.url());
    await reconnect(gw);
    await c.end();
    await waitFor('the backend to end', () => backendGone(pid));
    expect(await resetsOf(pid)).toBe(0);
  });

  it('past server_lifetime_ms: the same', async () => {
    gw = await startGateway({ pool: RESET.replace('size: 2', 'size: 2, server_lifetime_ms: 200') });
    const { c, pid } = await client(gw.url());
    await new Promise((r) => setTimeout(r, 300));
    await c.end();
    await waitFor('the backend to end', () => backendGone(pid));
    expect(await resetsOf(pid)).toBe(0);
  });
});

describe('a transaction-mode client leaving inside a transaction', () => {
  it('after RECONNECT: its connection closes, and what it did is rolled back', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
    const { c, pid } = await client(gw.url());
    await c.query('BEGIN');
    await c.query('SELECT pg_backend_pid()');
    await c.query('INSERT INTO occ_resets VALUES (-1)');
    await reconnect(gw);
    await c.end();
    await waitFor('the backend to end', () => backendGone(pid));
    expect(await resetsOf(-1)).toBe(0);
  });
});
