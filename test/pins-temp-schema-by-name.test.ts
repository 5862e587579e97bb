// Found by review round 30 A, and fixed: the precheck reads pg_temp_N as the temp schema it is.
// Review round 30 A. A client that names its own temporary schema as PostgreSQL names it
// (pg_temp_N, as pg_my_temp_schema()::regnamespace gives it) creates temporary relations there, as
// with pg_temp or TEMP. pgway's cheap precheck (src/router/effect-precheck.ts, ANYWHERE) only knows
// the word `pg_temp` itself, so such a statement never reaches the parser (whose isTempSchema does
// know pg_temp_N): the client is not pinned, and the temp relation stays on a server connection that
// the next client gets.
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
