// SHUTDOWN's grace period serves only work under way: a client holding a server connection (inside a
// transaction, in session mode) is served until it ends, while a transaction-mode client between
// transactions that asks for a connection is told 57P01 and closed, as the shutdown's end tells everyone,
// so a busy application cannot hold the gateway up to shutdown_timeout_ms nor have new transactions cut.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { FileGateways } from './helpers/file-gateway.js';
import { clientsOfEachTest, errorOf, sqlstate, waitFor } from './helpers/pg-helpers.js';

const DB = 'shutdown_new_work';
const files = new FileGateways(DB);

beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
  await adminQuery('CREATE TABLE shutdown_work (seq int, sent_after_shutdown boolean)', [], 'primary', DB);
  await adminQuery('GRANT ALL ON shutdown_work TO app', [], 'primary', DB);
});
afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  files.removeFiles();
});
afterEach(() => files.stopAll()); // after the clients' afterEach below (hooks run last registered first)
const { connect } = clientsOfEachTest();

describe('SHUTDOWN with clients that keep working', () => {
  it('transaction mode: a client between transactions is refused new work with 57P01; the transaction in flight finishes', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }', extra: 'shutdown_timeout_ms: 3000' });
    const holder = await connect(gw.url('app', DB));
    const worker = await connect(gw.url('app', DB));
    const admin = await connect(gw.url('admin', 'pgway'));
    await worker.query('SELECT 1'); // logged in, idle, holding no server connection
    await holder.query('BEGIN');
    await admin.query('SHUTDOWN').catch(() => undefined);
    await waitFor('the shutdown to begin', () => gw.gateway.shuttingDown);
    // The holder's transaction goes on after SHUTDOWN and commits.
    const finishing = holder.query('SELECT pg_sleep(0.5)').then(() => holder.query('COMMIT'));
    // The worker keeps sending work while SHUTDOWN waits for the holder's transaction.
    const outcomes: string[] = [];
    for (let seq = 0; seq < 5; seq++) {
      try {
        await worker.query('INSERT INTO shutdown_work VALUES ($1, true)', [seq]);
        outcomes.push('ran');
      } catch (err) {
        outcomes.push(sqlstate(err) ?? 'connection closed');
        break;
      }
    }
    expect(await errorOf(finishing), 'the transaction in flight at SHUTDOWN').toBeUndefined();
    await waitFor('the gateway to let every client go', () => gw.gateway.clientCount === 0, 6000).catch(() => undefined);
    const ran = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM shutdown_work WHERE sent_after_shutdown', [], 'primary', DB);
    expect(outcomes).toEqual(['57P01']);
    expect(ran.rows[0]!.n, 'rows written after SHUTDOWN by a client that held no server connection').toBe(0);
  });

  it('session mode: a client connected before SHUTDOWN keeps being served until it leaves', async () => {
    const gw = await files.start({ pool: '{ mode: session, size: 2 }', extra: 'shutdown_timeout_ms: 5000' });
    const session = await connect(gw.url('app', DB));
    const admin = await connect(gw.url('admin', 'pgway'));
    await admin.query('SHUTDOWN').catch(() => undefined);
    await waitFor('the shutdown to begin', () => gw.gateway.shuttingDown);
    for (let n = 0; n < 3; n++) expect((await session.query<{ n: number }>('SELECT $1::int AS n', [n])).rows).toEqual([{ n }]);
    await session.end();
    await waitFor('the gateway to let every client go', () => gw.gateway.clientCount === 0, 6000);
  });
});
