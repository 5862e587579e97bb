// (Regression tests; the failures below are fixed: PAUSE waits for logins under way and holds its clients if they fail.)
// PAUSE and a server login that is still in flight when it lands.
//
// README: "PAUSE [db] waits for in-flight transactions, holds new ones and closes the server
// connections". A client whose request arrived just before PAUSE, while pgway was still opening a
// server connection for it, is a "new" transaction: it should be held until RESUME and then run.
// PgBouncer closes logins in flight at PAUSE (janitor per_loop_pause closes new_server_list) and
// keeps the clients waiting. pgway's PAUSE answers at once (sv_login 1 is not waited for), and when
// that login then fails (here: it times out, as when the old primary is going away during a
// switchover), Pool.open's failure path hands the error to the first waiter - a client the pause holds
// - which is ended with 08006 in the middle of the pause instead of running after RESUME.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { startHoldingProxy, type HoldingProxy } from './helpers/holding-proxy.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';

const DB = 'rvd_pause_login';
const { files, connect: connectUrl } = fileGatewayTests(DB);
let proxy: HoldingProxy;

beforeAll(async () => {
  proxy = await startHoldingProxy();
});
afterAll(() => {
  proxy?.close();
});
afterEach(() => {
  proxy.frozen = false;
  proxy.release();
});
const connect = (gw: FileGateway, user = 'app', database = DB): Promise<pg.Client> => connectUrl(gw.url(user, database));
function outcome(p: Promise<unknown>): { value?: unknown; error?: { code?: string; message: string } } {
  const o: { value?: unknown; error?: { code?: string; message: string } } = {};
  p.then((v) => { o.value = v; }, (e: { code?: string; message: string }) => { o.error = e; });
  return o;
}

describe('PAUSE while a server login is in flight', () => {
  it('a client held by PAUSE is not ended by the failure of a login begun before the pause; it runs after RESUME', async () => {
    const gw = await files.start({
      pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 20000, server_connect_timeout_ms: 1000 }',
      primaryPort: proxy.port,
    });
    const admin = await connect(gw, 'admin', 'pgway');
    const client = await connect(gw);
    // The pool knows the server's parameters now; its one connection goes, so the next request opens one.
    await admin.query('RECONNECT');
    await waitFor('the idle connection to close', () => gw.gateway.servers().length === 0);

    proxy.frozen = true; // the server's answers to the new login are held: the login stays in flight
    const query = client.query('SELECT 42 AS x');
    const result = outcome(query);
    await waitFor('the client to wait', () => gw.gateway.clients().some((c) => c.user === 'app' && c.state === 'waiting'));

    await admin.query('PAUSE');
    // The login times out (server_connect_timeout_ms 1000) during the pause.
    await sleep(2000);
    const duringPause = { ...result };

    proxy.frozen = false;
    proxy.release();
    await admin.query('RESUME');
    await Promise.race([query.catch(() => undefined), sleep(5000)]);

    // Held by the pause, not failed: no error during the pause, and the query runs after RESUME.
    expect(duringPause.error?.code, `error during PAUSE: ${duringPause.error?.message}`).toBeUndefined();
    expect(result.error?.message).toBeUndefined();
    expect((result.value as pg.QueryResult | undefined)?.rows).toEqual([{ x: 42 }]);
  }, 20000);

  it('when PAUSE has answered, no login to the server is still in flight (PgBouncer closes them at PAUSE)', async () => {
    const gw = await files.start({
      pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 20000, server_connect_timeout_ms: 3000 }',
      primaryPort: proxy.port,
    });
    const admin = await connect(gw, 'admin', 'pgway');
    const client = await connect(gw);
    await admin.query('RECONNECT');
    await waitFor('the idle connection to close', () => gw.gateway.servers().length === 0);
    proxy.frozen = true;
    const query = client.query('SELECT 1');
    query.catch(() => undefined);
    await waitFor('the client to wait', () => gw.gateway.clients().some((c) => c.user === 'app' && c.state === 'waiting'));
    await admin.query('PAUSE');
    const loginsInFlight = (await admin.query<{ sv_login: string }>('SHOW POOLS')).rows.reduce((n, r) => n + Number(r.sv_login), 0);
    proxy.frozen = false;
    proxy.release();
    await admin.query('RESUME');
    expect(loginsInFlight).toBe(0);
  }, 20000);
});
