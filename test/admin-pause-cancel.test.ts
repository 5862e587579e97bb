// A CancelRequest carrying the admin console's key while its PAUSE waits for a transaction to finish
// (psql's Ctrl-C): the PAUSE ends at once with 57014 and ReadyForQuery, as a cancelled waiting statement
// ends on a direct PostgreSQL connection, and what that PAUSE paused is lifted, as PgBouncer's
// admin_handle_cancel resumes. A pause the cancelled PAUSE did not put in place stays.
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { FileGateways } from './helpers/file-gateway.js';
import { clientsOfEachTest, errorOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';
import { cancelRequestPacket, RawClient } from './helpers/raw-client.js';

const DB = 'pause_cancel';
const files = new FileGateways(DB);

beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
});
afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  files.removeFiles();
});
afterEach(() => files.stopAll()); // after the clients' afterEach below (hooks run last registered first)
const { connect } = clientsOfEachTest();

/** The BackendKeyData pg kept for `c`. */
const keyOf = (c: pg.Client): { pid: number; secret: number } => {
  const k = c as unknown as { processID: number; secretKey: number };
  return { pid: k.processID, secret: k.secretKey };
};

async function sendCancel(address: { host: string; port: number }, key: { pid: number; secret: number }): Promise<void> {
  const c = await RawClient.connect(address);
  c.write(cancelRequestPacket(key.pid, key.secret));
  await c.waitClosed(2000).catch(() => undefined);
  c.destroy();
}

/** Resolves true when `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  const deadline = Date.now() + ms;
  while (!settled && Date.now() < deadline) await sleep(20);
  return settled;
}

describe('cancelling a statement that waits', () => {
  it('direct PostgreSQL: a cancel ends a waiting statement at once with 57014', async () => {
    const l = lab();
    const holder = await connect(pgUrl(l.primary, 'app', 'app-secret', DB));
    const waiter = await connect(pgUrl(l.primary, 'app', 'app-secret', DB));
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(4242)');
    const waiting = errorOf(waiter.query('SELECT pg_advisory_lock(4242)'));
    await sleep(300);
    await sendCancel(l.primary, keyOf(waiter));
    expect(await settlesWithin(waiting, 2000)).toBe(true);
    expect(sqlstate(await waiting)).toBe('57014');
    await holder.query('COMMIT');
  });

  it('pgway admin console: a cancel of a PAUSE (or PAUSE db) still waiting for a transaction ends it with 57014 and lifts its pause', async () => {
    for (const pauseArg of ['', ` ${DB}`]) {
      const gw = await files.start({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 10000 }' });
      const app = await connect(gw.url('app', DB));
      await app.query('BEGIN'); // PAUSE waits for this transaction
      const admin = await connect(gw.url('admin', 'pgway'));
      const pausing = errorOf(admin.query(`PAUSE${pauseArg}`));
      await waitFor('the pools to be paused', () => gw.gateway.pools().some((p) => p.paused));
      await sendCancel({ host: gw.host, port: gw.port }, keyOf(admin));
      // Ctrl-C in psql: the console gets its answer back, not held behind the open transaction.
      expect(await settlesWithin(pausing, 2000), `PAUSE${pauseArg} answered within 2 s of the cancel`).toBe(true);
      expect(await pausing).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
      // ReadyForQuery followed: the console takes its next command; and nothing is paused any more.
      expect((await admin.query<{ name: string; paused: string }>('SHOW DATABASES')).rows.find((r) => r.name === DB)?.paused).toBe('0');
      const other = await connect(gw.url('app', DB));
      expect(await settlesWithin(other.query('SELECT 1'), 2000), `a new query is not held by the cancelled PAUSE${pauseArg}`).toBe(true);
      await app.query('COMMIT');
      await gw.stop();
    }
  });

  it('pgway admin console: a cancel of a PAUSE db that joined an earlier PAUSE db ends only the cancelled command', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 10000 }' });
    const app = await connect(gw.url('app', DB));
    await app.query('BEGIN');
    const first = await connect(gw.url('admin', 'pgway'));
    const second = await connect(gw.url('admin', 'pgway'));
    const firstPause = first.query(`PAUSE ${DB}`);
    firstPause.catch(() => undefined); // awaited below; a failure before must not leave it unhandled
    await waitFor('the pools to be paused', () => gw.gateway.pools().some((p) => p.paused));
    const secondPause = errorOf(second.query(`PAUSE ${DB}`)); // taken, and waits for the same drain
    await sendCancel({ host: gw.host, port: gw.port }, keyOf(second));
    expect(await settlesWithin(secondPause, 2000), 'the cancelled PAUSE answered within 2 s').toBe(true);
    expect(sqlstate(await secondPause)).toBe('57014');
    // The pause is the first PAUSE's: it stays, and that PAUSE completes once the transaction ends.
    expect((await second.query<{ name: string; paused: string }>('SHOW DATABASES')).rows.find((r) => r.name === DB)?.paused).toBe('1');
    await app.query('COMMIT');
    expect((await firstPause).command).toBe('PAUSE');
    await first.query(`RESUME ${DB}`);
  });
});
