// A database (or role) whose default search_path lists pg_temp first (ALTER DATABASE ... SET
// search_path = pg_temp, public) makes a plain CREATE TABLE temporary, as the client's own SET would.
// PostgreSQL 18 reports search_path at login, so pgway knows the default its clients start from: the
// client that made the table is pinned (the next one waits for the only connection, 57P05), and no
// other client finds the table in its session.
import { beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { fileGatewayTests } from './helpers/file-gateway.js';

const DB = 'pins_default_path';
const { files, connect } = fileGatewayTests(DB);
const POOL = '{ mode: transaction, size: 1, query_wait_timeout_ms: 1500 }';

beforeAll(async () => {
  await adminQuery(`ALTER DATABASE ${DB} SET search_path = pg_temp, public`);
});

describe('a default search_path with pg_temp first', () => {
  it('pins the client whose CREATE TABLE it made temporary', async () => {
    const gw = await files.start({ pool: POOL });
    // The pool knows the server's parameters: a's login is answered without a server.
    const w = await connect(gw.url('app', DB));
    await w.query('SELECT 1');
    await w.end();
    const a = await connect(gw.url('app', DB));
    expect((await a.query('SHOW search_path')).rows[0].search_path).toBe('pg_temp, public');
    await a.query('CREATE TABLE pdp_t (x int)');
    expect((await a.query("SELECT to_regclass('pg_temp.pdp_t') IS NOT NULL AS temp")).rows[0].temp).toBe(true);
    const b = await connect(gw.url('app', DB));
    const seen = await b.query("SELECT to_regclass('pg_temp.pdp_t') IS NOT NULL AS temp").then((r) => r.rows[0].temp as boolean, (e: { code: string }) => e.code);
    expect(seen).toBe('57P05');
  });

  it('pins the pool\'s first client too (no server parameters known at its login)', async () => {
    const gw = await files.start({ pool: POOL });
    const a = await connect(gw.url('app', DB));
    await a.query('CREATE TABLE pdp_first (x int)');
    const b = await connect(gw.url('app', DB));
    const seen = await b.query("SELECT to_regclass('pg_temp.pdp_first') IS NOT NULL AS temp").then((r) => r.rows[0].temp as boolean, (e: { code: string }) => e.code);
    expect(seen).toBe('57P05');
  });
});
