// Found by review round 30 A, and fixed: pins that were never made, and pins never lifted.
//
// A client that names its own temporary schema as PostgreSQL names it (pg_temp_N, as
// pg_my_temp_schema()::regnamespace gives it) creates temporary relations there, as with pg_temp or
// TEMP; pgway's precheck knew only the word pg_temp, so such a statement never reached the parser:
// the client was not pinned, and the relation stayed on a connection the next client got.
//
// State that pins a client is gone, as PostgreSQL says, yet pgway kept the client on its server
// connection until it left: pg_advisory_unlock_all() called other than as a plain SELECT target,
// a DROP of the last temporary relation named in pg_temp_N, a protocol Close of the last WITH HOLD
// cursor. With a pool of 2, two such clients leave every other client waiting (57P05).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { clientsOfEachTest, sleep } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (): Promise<pg.Client> => testClients.connect(gw.url());
const portOf = (c: pg.Client): number => (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;

/** Whether the client keeps its server connection while idle (pgway's view, read for 200 ms). */
async function isPinned(c: pg.Client): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if ((gw.gateway.clients().find((x) => x.port === portOf(c))?.serverId ?? 0) === 0) return false;
    await sleep(20);
  }
  return true;
}

const has = async (c: pg.Client, sql: string): Promise<boolean> => (await c.query(sql)).rows[0].has as boolean;

describe('pins whose state is gone', () => {
  it('pg_advisory_unlock_all() called in FROM (SELECT * FROM pg_advisory_unlock_all()): the client is free', async () => {
    const c = await connect();
    await c.query('SELECT pg_advisory_lock(30201), pg_advisory_lock(30202)');
    expect(await isPinned(c)).toBe(true);
    await c.query('SELECT * FROM pg_advisory_unlock_all()');
    expect(await has(c, "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS has")).toBe(false);
    expect(await isPinned(c)).toBe(false);
  });

  it('pg_advisory_unlock_all() in a SELECT with a FROM clause: the client is free', async () => {
    const c = await connect();
    await c.query('SELECT pg_advisory_lock(30203)');
    expect(await isPinned(c)).toBe(true);
    await c.query('SELECT pg_advisory_unlock_all() FROM (VALUES (1)) AS v(x)');
    expect(await has(c, "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS has")).toBe(false);
    expect(await isPinned(c)).toBe(false);
  });

  it('DROP TABLE pg_temp_N.t of its only temp table (the schema as pg_my_temp_schema() names it): the client is free', async () => {
    const c = await connect();
    await c.query('CREATE TEMP TABLE r30a_only (x int)');
    expect(await isPinned(c)).toBe(true);
    const schema = (await c.query('SELECT pg_my_temp_schema()::regnamespace::text AS s')).rows[0].s as string;
    expect(schema).toMatch(/^pg_temp_\d+$/);
    await c.query(`DROP TABLE ${schema}.r30a_only`);
    expect(await has(c, 'SELECT EXISTS (SELECT FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS has')).toBe(false);
    expect(await isPinned(c)).toBe(false);
  });

  it('a protocol Close (portal) of its only WITH HOLD cursor: the client is free', async () => {
    const c = await connect();
    await c.query('DECLARE r30a_hold CURSOR WITH HOLD FOR SELECT 1');
    expect(await isPinned(c)).toBe(true);
    const conn = (c as unknown as { connection: { close(m: { type: string; name: string }): void; sync(): void; once(e: string, f: () => void): void } }).connection;
    await new Promise<void>((resolve) => {
      conn.once('readyForQuery', () => resolve());
      conn.close({ type: 'P', name: 'r30a_hold' });
      conn.sync();
    });
    expect(await has(c, 'SELECT EXISTS (SELECT FROM pg_cursors) AS has')).toBe(false);
    expect(await isPinned(c)).toBe(false);
  });
});

/** Whether either server connection, taken by two fresh clients at once, has the temp relation `name`. */
async function othersSee(name: string): Promise<boolean> {
  const [x, y] = [await connect(), await connect()];
  await Promise.all([x.query('BEGIN'), y.query('BEGIN')]);
  const sql = `SELECT to_regclass('pg_temp.${name}') IS NOT NULL AS has`;
  const seen = [(await x.query(sql)).rows[0].has, (await y.query(sql)).rows[0].has];
  await Promise.all([x.query('COMMIT'), y.query('COMMIT')]);
  return seen.includes(true);
}

const cases: [string, string, (schema: string) => string][] = [
  ['CREATE TABLE pg_temp_N.t', 'r30a_by_name_t', (s) => `CREATE TABLE ${s}.r30a_by_name_t (x int)`],
  ['CREATE VIEW pg_temp_N.v', 'r30a_by_name_v', (s) => `CREATE VIEW ${s}.r30a_by_name_v AS SELECT 1 AS x`],
  ['CREATE SEQUENCE pg_temp_N.s', 'r30a_by_name_s', (s) => `CREATE SEQUENCE ${s}.r30a_by_name_s`],
  ['SELECT ... INTO pg_temp_N.t', 'r30a_by_name_i', (s) => `SELECT 1 AS x INTO ${s}.r30a_by_name_i`],
];

describe('a temp relation created in the temp schema named pg_temp_N', () => {
  for (const [title, name, create] of cases) {
    it(`${title}: the client is pinned and nobody else sees it`, async () => {
      const c = await connect();
      await c.query('BEGIN');
      // Makes sure this backend has its temp schema, and learns its name (dropped at COMMIT: pins nothing).
      await c.query('CREATE TEMP TABLE r30a_scratch (x int) ON COMMIT DROP');
      const schema = (await c.query('SELECT pg_my_temp_schema()::regnamespace::text AS s')).rows[0].s as string;
      expect(schema).toMatch(/^pg_temp_\d+$/);
      await c.query(create(schema));
      await c.query('COMMIT');
      // The client's relation is there for it, as on a direct connection.
      expect((await c.query(`SELECT to_regclass('pg_temp.${name}') IS NOT NULL AS has`)).rows[0].has).toBe(true);
      const pinned = await isPinned(c);
      const leaked = pinned ? false : await othersSee(name);
      expect({ pinned, leaked }).toEqual({ pinned: true, leaked: false });
    });
  }
});
