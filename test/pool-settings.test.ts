// Pool settings that bound what a pool may do, each observed from the client side: a reserve
// connection after reserve_timeout_ms, max_db_connections across a database's pools,
// idle_transaction_timeout_ms, and server_check_delay_ms replacing a connection the server
// dropped while it sat idle.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function client(url: string, name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

describe('pool settings', () => {
  it('opens a reserve connection for a client that waited reserve_timeout_ms, beyond pool size', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, reserve_size: 1, reserve_timeout_ms: 200, query_wait_timeout_ms: 3000 }' });
    const a = await client(gw.url(), 'ps-reserve-a');
    const b = await client(gw.url(), 'ps-reserve-b');
    await a.query('BEGIN');
    await a.query('SELECT 1');
    // a holds the only regular connection inside its transaction; b gets the reserve one.
    const { rows } = await b.query<{ n: number }>('SELECT 2 AS n');
    expect(rows).toEqual([{ n: 2 }]);
    expect(gw.gateway.pools()[0]!.serversActive + gw.gateway.pools()[0]!.serversUsed + gw.gateway.pools()[0]!.serversIdle).toBeLessThanOrEqual(2);
    await a.query('COMMIT');
    await Promise.all([a.end(), b.end()]);
  });

  it('without a reserve, the same client times out with 57P05', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 400 }' });
    const a = await client(gw.url(), 'ps-noreserve-a');
    const b = await client(gw.url(), 'ps-noreserve-b');
    await a.query('BEGIN');
    await a.query('SELECT 1');
    await expect(b.query('SELECT 2')).rejects.toMatchObject({ code: '57P05' });
    await a.query('COMMIT');
    await a.end();
    await b.end().catch(() => undefined);
  });

  it('caps server connections to one database across users with max_db_connections', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 5, max_db_connections: 1, query_wait_timeout_ms: 400 }' });
    const app = await client(gw.url('app'), 'ps-maxdb-app');
    const md5 = await client(gw.url('md5user'), 'ps-maxdb-md5');
    await app.query('BEGIN');
    await app.query('SELECT 1');
    // Another user's pool for the same database may not open a second connection.
    await expect(md5.query('SELECT 2')).rejects.toMatchObject({ code: '57P05' });
    await app.query('COMMIT');
    await app.end();
    await md5.end().catch(() => undefined);
  });

  it('closes a client idle inside a transaction past idle_transaction_timeout_ms (25P03) and rolls it back', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, idle_transaction_timeout_ms: 300, query_wait_timeout_ms: 3000 }' });
    await adminQuery('CREATE TABLE IF NOT EXISTS ps_idle_tx (v int)');
    await adminQuery('GRANT ALL ON ps_idle_tx TO app');
    const a = await client(gw.url(), 'ps-idle-tx');
    const errors: unknown[] = [];
    a.on('error', (err) => errors.push(err));
    await a.query('BEGIN');
    await a.query('INSERT INTO ps_idle_tx VALUES (1)');
    const b = await client(gw.url(), 'ps-idle-tx-b');
    // b needs the only connection, which a holds until its timeout ends it.
    expect((await b.query<{ n: number }>('SELECT count(*)::int AS n FROM ps_idle_tx')).rows).toEqual([{ n: 0 }]);
    await expect(a.query('SELECT 1')).rejects.toBeDefined();
    expect(errors.some((e) => (e as { code?: string }).code === '25P03')).toBe(true);
    await b.end();
  });

  it('ends a transaction-mode client whose startup setting the server rejects (22023 FATAL) before its first statement runs', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
    await adminQuery('CREATE TABLE IF NOT EXISTS ps_bad_setting (v int)');
    await adminQuery('GRANT ALL ON ps_bad_setting TO app');
    // Transaction mode logs in without a server, so the server's verdict comes with the first request.
    const bad = new pg.Client({ connectionString: gw.url(), options: '-c statement_timeout=soon' });
    bad.on('error', () => undefined);
    await bad.connect();
    await expect(bad.query('INSERT INTO ps_bad_setting VALUES (1)')).rejects.toMatchObject({ code: '22023', severity: 'FATAL' });
    expect((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM ps_bad_setting')).rows).toEqual([{ n: 0 }]);
    // The same setting with a valid value works; the connection the bad client used serves it.
    const good = new pg.Client({ connectionString: gw.url(), options: '-c statement_timeout=4321' });
    await good.connect();
    expect((await good.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '4321ms' }]);
    await good.end();
  });

  it('replaces an idle connection the server dropped, before handing it out (server_check_delay_ms 0)', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, server_check_delay_ms: 0, query_wait_timeout_ms: 3000 }' });
    const a = await client(gw.url(), 'ps-check');
    const { rows } = await a.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const first = rows[0]!.pid;
    await adminQuery('SELECT pg_terminate_backend($1)', [first]);
    const after = await a.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(after.rows[0]!.pid).not.toBe(first);
    await a.end();
  });
});
