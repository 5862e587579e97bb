// When state that pins a client (temporary tables, LISTEN, WITH HOLD cursors, advisory locks) begins
// and ends, over a pool of 2 in transaction mode, where statements in one request make, release and
// roll back state: a ROLLBACK followed by new state in the same query string or Sync batch, state
// released and made again before a commit, pipelined requests, a COMMIT of a failed transaction,
// temp relations a CASCADE takes with it, objects a search_path puts in the temp schema, and the
// question pgway asks the server before it lets a temp pin go.
// Unpinned too early, a client's temp table or LISTEN is on a connection other clients get next;
// unpinned never, the client holds a server connection until it leaves.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { clientsOfEachTest, sleep } from './helpers/pg-helpers.js';
import { answers, B, cat, E, P, Q, rawAfterLogin, S } from './helpers/wire-script.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (): Promise<pg.Client> => testClients.connect(gw.url());

const closers: (() => void)[] = [];
afterEach(() => { // before the clients above are ended (hooks run last registered first)
  for (const close of closers.splice(0)) close();
});

const raw = (): Promise<RawClient> => rawAfterLogin(gw.url(), (close) => closers.push(close));

const portOf = (c: pg.Client): number => (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;

/** Whether the client on `port` keeps its server connection while idle (pgway's view, read for 200 ms). */
async function pinnedAt(port: number): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if ((gw.gateway.clients().find((x) => x.port === port)?.serverId ?? 0) === 0) return false;
    await sleep(20);
  }
  return true;
}

const isPinned = (c: pg.Client): Promise<boolean> => pinnedAt(portOf(c));
const rawPinned = (r: RawClient): Promise<boolean> => pinnedAt(r.socket.localPort ?? 0);

/** Whether either server connection, taken by two fresh clients at once, answers `has` true to `sql`. */
async function othersSee(sql: string): Promise<boolean> {
  const [x, y] = [await connect(), await connect()];
  await Promise.all([x.query('BEGIN'), y.query('BEGIN')]);
  const seen = [(await x.query(sql)).rows[0].has, (await y.query(sql)).rows[0].has];
  await Promise.all([x.query('COMMIT'), y.query('COMMIT')]);
  return seen.includes(true);
}

const tempTable = (name: string): string => `SELECT to_regclass('pg_temp.${name}') IS NOT NULL AS has`;
const listening = (channel: string): string => `SELECT '${channel}' = ANY (ARRAY(SELECT pg_listening_channels())) AS has`;
const holdCursor = (name: string): string => `SELECT EXISTS (SELECT FROM pg_cursors WHERE name = '${name}') AS has`;
const advisoryLock = (key: number): string => `SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = ${key}) AS has`;

/** The client keeps the state `has` finds to itself: pinned, and no other client sees it. */
async function keeps(c: pg.Client, has: string): Promise<void> {
  const pinned = await isPinned(c);
  const leaked = pinned ? false : await othersSee(has);
  expect({ pinned, leaked }).toEqual({ pinned: true, leaked: false });
}

const keepsTempTable = (c: pg.Client, name: string): Promise<void> => keeps(c, tempTable(name));

/** Each statement as an extended-protocol Parse/Bind/Execute of the unnamed statement. */
const run = (sql: string): Buffer => cat(P('', sql), B(''), E());

describe('state made after a ROLLBACK in the same request stays pinned', () => {
  it('"CREATE TEMP TABLE a; ROLLBACK; CREATE TEMP TABLE b" in one query string: b exists', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('CREATE TEMP TABLE hpg_rv_a (x int); ROLLBACK; CREATE TEMP TABLE hpg_rv_b (x int)');
    await keepsTempTable(c, 'hpg_rv_b');
  });

  it('"ROLLBACK; CREATE TEMP TABLE t" in one query string: t exists', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('ROLLBACK; CREATE TEMP TABLE hpg_rb_t (x int)');
    await keepsTempTable(c, 'hpg_rb_t');
  });

  it('"BEGIN; LISTEN x; ROLLBACK; LISTEN y": the client still hears y', { timeout: 30_000 }, async () => {
    const [c, n] = [await connect(), await connect()];
    const heard: string[] = [];
    c.on('notification', (m) => heard.push(m.channel));
    await c.query('BEGIN; LISTEN hpg_rv_x; ROLLBACK; LISTEN hpg_rv_y');
    expect(await isPinned(c)).toBe(true);
    await n.query("NOTIFY hpg_rv_y, 'y'; NOTIFY hpg_rv_x, 'x'");
    await c.query('SELECT 1');
    expect(heard).toEqual(['hpg_rv_y']);
  });

  for (const end of ['ROLLBACK', 'ABORT']) {
    it(`one Sync batch: BEGIN | CREATE TEMP a | ${end} | CREATE TEMP b: b exists`, { timeout: 30_000 }, async () => {
      const r = await raw();
      r.write(cat(run('BEGIN'), run('CREATE TEMP TABLE hpg_xa (x int)'), run(end), run('CREATE TEMP TABLE hpg_xb (x int)'), S));
      expect((await answers(r, 1)).at(-1)).toBe('Z:I');
      r.write(Q("SELECT to_regclass('pg_temp.hpg_xb') IS NOT NULL AS has"));
      expect(await answers(r, 1)).toContain('D:t');
      expect(await rawPinned(r)).toBe(true);
    });
  }

  it('one Sync batch after a failed transaction: COMMIT (reported as ROLLBACK) | CREATE TEMP t: t exists', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(Q('BEGIN'));
    await answers(r, 1);
    r.write(Q('SELECT 1/0'));
    expect((await answers(r, 1)).at(-1)).toBe('Z:E');
    r.write(cat(run('COMMIT'), run('CREATE TEMP TABLE hpg_after_failed (x int)'), S));
    const got = await answers(r, 1);
    expect(got).toContain('C:ROLLBACK');
    r.write(Q("SELECT to_regclass('pg_temp.hpg_after_failed') IS NOT NULL AS has"));
    expect(await answers(r, 1)).toContain('D:t');
    expect(await rawPinned(r)).toBe(true);
  });
});

describe('state made again after a statement that released it, before that statement committed', () => {
  it('"UNLISTEN *; LISTEN y": the client still listens on y', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('UNLISTEN *; LISTEN hpg_ul_y');
    await keeps(c, listening('hpg_ul_y'));
  });

  it('BEGIN / UNLISTEN * / LISTEN y / COMMIT, one by one', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('LISTEN hpg_ul_first');
    await c.query('BEGIN');
    await c.query('UNLISTEN *');
    await c.query('LISTEN hpg_ul_again');
    await c.query('COMMIT');
    await keeps(c, listening('hpg_ul_again'));
  });

  it('"DISCARD TEMP; CREATE TEMP TABLE t": t exists', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('DISCARD TEMP; CREATE TEMP TABLE hpg_dt_t (x int)');
    await keepsTempTable(c, 'hpg_dt_t');
  });

  it('"CLOSE ALL; DECLARE c CURSOR WITH HOLD", and CLOSE c then DECLARE c again: c exists', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('CLOSE ALL; DECLARE hpg_hc_a CURSOR WITH HOLD FOR SELECT 1');
    await keeps(c, holdCursor('hpg_hc_a'));
    await c.query('CLOSE hpg_hc_a; DECLARE hpg_hc_a CURSOR WITH HOLD FOR SELECT 2');
    await keeps(c, holdCursor('hpg_hc_a'));
    await c.query('BEGIN');
    await c.query('CLOSE hpg_hc_a');
    await c.query('DECLARE hpg_hc_a CURSOR WITH HOLD FOR SELECT 3');
    await c.query('COMMIT');
    await keeps(c, holdCursor('hpg_hc_a'));
    await c.query('CLOSE hpg_hc_a');
    expect(await isPinned(c)).toBe(false);
  });

  it('"SELECT pg_advisory_unlock_all(), pg_advisory_lock(n)": the lock is held', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('SELECT pg_advisory_unlock_all(), pg_advisory_lock(424299)');
    await keeps(c, advisoryLock(424299));
    await c.query('SELECT pg_advisory_unlock_all()');
    expect(await isPinned(c)).toBe(false);
  });
});

describe('state made again after its release, and then taken back', () => {
  it('BEGIN; UNLISTEN *; SAVEPOINT s; LISTEN b; ROLLBACK TO s; COMMIT: nothing listens, the client is free', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('LISTEN hpg_rb_first');
    await c.query('BEGIN; UNLISTEN *; SAVEPOINT s; LISTEN hpg_rb_second; ROLLBACK TO s; COMMIT');
    expect((await c.query('SELECT count(*)::int AS n FROM pg_listening_channels()')).rows).toEqual([{ n: 0 }]);
    expect(await isPinned(c)).toBe(false);
    await c.query('LISTEN hpg_rb_third');
    for (const sql of ['BEGIN', 'UNLISTEN *', 'SAVEPOINT s', 'LISTEN hpg_rb_fourth', 'ROLLBACK TO s', 'COMMIT']) await c.query(sql);
    expect(await isPinned(c)).toBe(false);
  });

  it('pg_advisory_unlock_all() then a lock rolled back to a savepoint: the lock survives, as session locks do', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('SELECT pg_advisory_lock(424301)');
    await c.query('BEGIN; SELECT pg_advisory_unlock_all(); SAVEPOINT s; SELECT pg_advisory_lock(424302); ROLLBACK TO s; COMMIT');
    await keeps(c, advisoryLock(424302));
    await c.query('SELECT pg_advisory_unlock(424302)');
    expect(await isPinned(c)).toBe(false);
  });

  it('SET SESSION AUTHORIZATION made again after a RESET and rolled back to a savepoint: the client is free', { timeout: 30_000 }, async () => {
    // A superuser: only one may change its session user (to itself, a login user changes nothing).
    const c = await testClients.connect(gw.url('admin'));
    await c.query('SET SESSION AUTHORIZATION app');
    expect(await isPinned(c)).toBe(true);
    await c.query('BEGIN; RESET SESSION AUTHORIZATION; SAVEPOINT s; SET SESSION AUTHORIZATION app; ROLLBACK TO s; COMMIT');
    expect(await isPinned(c)).toBe(false);
  });

  it('UNLISTEN * pipelined ahead of a LISTEN whose request fails: the client is free', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(Q('LISTEN hpg_pf_a'));
    await answers(r, 1);
    r.write(cat(Q('UNLISTEN *'), Q('LISTEN hpg_pf_b; SELECT 1/0')));
    await answers(r, 2);
    expect(await rawPinned(r)).toBe(false);
  });
});

describe('DISCARD ALL first in an extended-protocol batch, an error after it', () => {
  it('keeps what PostgreSQL kept: the settings reset and the client free, as DISCARD ALL committed on its own', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(cat(Q("SET application_name = 'hpg_before_discard'"), Q('LISTEN hpg_before_discard')));
    await answers(r, 2);
    expect(await rawPinned(r)).toBe(true);
    r.write(cat(run('DISCARD ALL'), run('SELECT 1/0'), S));
    expect(await answers(r, 1)).toContain('E:22012');
    expect(await rawPinned(r)).toBe(false);
    // Another client takes the connection the first one used; the first then reads its setting elsewhere.
    const [x, y] = [await connect(), await connect()];
    await Promise.all([x.query('BEGIN'), y.query('BEGIN')]);
    r.write(Q('SHOW application_name'));
    const shown = answers(r, 1);
    await sleep(100);
    await Promise.all([x.query('COMMIT'), y.query('COMMIT')]);
    expect(await shown).toContain('D:');
  });
});

describe('objects created in the temp schema without TEMP', () => {
  it('SET search_path = pg_temp, public: a CREATE TABLE is temporary and pins', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('SET search_path = pg_temp, public');
    await c.query('CREATE TABLE hpg_path_t (x int)');
    expect((await c.query("SELECT relpersistence FROM pg_class WHERE oid = 'hpg_path_t'::regclass")).rows).toEqual([{ relpersistence: 't' }]);
    await keepsTempTable(c, 'hpg_path_t');
  });

  it('DISCARD TEMP then SET search_path = pg_temp, in one string and pipelined: a later CREATE TABLE pins', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('DISCARD TEMP; SET search_path = pg_temp, public');
    await c.query('CREATE TABLE hpg_path_d (x int)');
    await keepsTempTable(c, 'hpg_path_d');
    const r = await raw();
    r.write(cat(Q('DISCARD TEMP'), Q('SET search_path = pg_temp, public')));
    await answers(r, 2);
    r.write(Q('CREATE TABLE hpg_path_e (x int)'));
    await answers(r, 1);
    expect(await rawPinned(r)).toBe(true);
  });

  it('a table created while the path briefly listed pg_temp first pins, though the path was set back', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('BEGIN; SET search_path = pg_temp, public; CREATE TABLE hpg_path_b (x int); SET search_path = public; COMMIT');
    await keepsTempTable(c, 'hpg_path_b');
    const d = await connect();
    await d.query('SET search_path = pg_temp, public; CREATE TABLE hpg_path_c (x int); RESET search_path');
    await keepsTempTable(d, 'hpg_path_c');
  });

  it('a path committed after a rolled-back transaction with temp work in the same string pins', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('BEGIN; CREATE TEMP TABLE hpg_path_x (x int); ROLLBACK; SET search_path = pg_temp, public; CREATE TABLE hpg_path_y (x int)');
    await keepsTempTable(c, 'hpg_path_y');
  });

  it('SET LOCAL search_path = pg_temp (also set_config(..., true)): a CREATE TABLE in that transaction pins', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('BEGIN; SET LOCAL search_path = pg_temp, public; CREATE TABLE hpg_path_l (x int); COMMIT');
    await keepsTempTable(c, 'hpg_path_l');
    const d = await connect();
    await d.query("BEGIN; SELECT set_config('search_path', 'pg_temp', true); CREATE TABLE hpg_path_m (x int); COMMIT");
    await keepsTempTable(d, 'hpg_path_m');
  });

  it('"$user", pg_temp, public pins too; public, pg_temp (temp last) and a rolled-back SET pin nothing', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('BEGIN; SET search_path = pg_temp; ROLLBACK');
    expect(await isPinned(c)).toBe(false);
    await c.query('SET search_path = public, pg_temp');
    expect(await isPinned(c)).toBe(false);
    await c.query('SET search_path = "$user", pg_temp, public');
    await c.query('CREATE TABLE hpg_path_u (x int)');
    await keepsTempTable(c, 'hpg_path_u');
  });
});

describe('state undone by the ROLLBACK of its own transaction lets the client go', () => {
  it('LISTENs sent one by one into one transaction that rolls back', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('BEGIN');
    await c.query('LISTEN hpg_tx_a');
    await c.query('LISTEN hpg_tx_b');
    await c.query('ROLLBACK');
    expect(await isPinned(c)).toBe(false);
  });

  it('BEGIN and LISTEN pipelined in one write, then ROLLBACK', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(cat(Q('BEGIN'), Q('LISTEN hpg_pl_listen')));
    await answers(r, 2);
    r.write(Q('ROLLBACK'));
    await answers(r, 1);
    expect(await rawPinned(r)).toBe(false);
  });

  it('BEGIN, DECLARE ... WITH HOLD and ROLLBACK pipelined, a Sync each', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(cat(run('BEGIN'), S, run('DECLARE hpg_pl_cur CURSOR WITH HOLD FOR SELECT 1'), S, run('ROLLBACK'), S));
    await answers(r, 3);
    expect(await rawPinned(r)).toBe(false);
  });

  it('a temp table made in a rolled-back transaction sent in one pipelined write, while another stays, until that one is dropped', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(Q('CREATE TEMP TABLE hpg_pl_kept (x int)'));
    await answers(r, 1);
    r.write(cat(Q('SELECT 1'), Q('BEGIN'), Q('CREATE TEMP TABLE hpg_pl_undone (x int)'), Q('ROLLBACK')));
    expect((await answers(r, 4)).filter((s) => s.startsWith('Z:'))).toEqual(['Z:I', 'Z:T', 'Z:T', 'Z:I']);
    expect(await rawPinned(r)).toBe(true);
    r.write(Q('DROP TABLE hpg_pl_kept'));
    await answers(r, 1);
    expect(await rawPinned(r)).toBe(false);
  });

  it('the same over the extended protocol, a Sync per statement', { timeout: 30_000 }, async () => {
    const r = await raw();
    r.write(Q('CREATE TEMP TABLE hpg_pl_kept2 (x int)'));
    await answers(r, 1);
    r.write(cat(run('SELECT 1'), S, run('BEGIN'), S, run('CREATE TEMP TABLE hpg_pl_undone2 (x int)'), S, run('ROLLBACK'), S));
    await answers(r, 4);
    r.write(Q('DROP TABLE hpg_pl_kept2'));
    await answers(r, 1);
    expect(await rawPinned(r)).toBe(false);
  });
});

describe('temp relations a CASCADE took with it', () => {
  it('ALTER TABLE ... DROP COLUMN ... CASCADE drops the temp view on it: the client is free', { timeout: 30_000 }, async () => {
    await adminQuery('DROP TABLE IF EXISTS hpg_cv_base');
    await adminQuery('CREATE TABLE hpg_cv_base (x int, y int)');
    await adminQuery('ALTER TABLE hpg_cv_base OWNER TO app');
    try {
      const c = await connect();
      await c.query('CREATE TEMP VIEW hpg_cv_v AS SELECT y FROM hpg_cv_base');
      expect(await isPinned(c)).toBe(true);
      await c.query('ALTER TABLE hpg_cv_base DROP COLUMN y CASCADE');
      expect((await c.query("SELECT to_regclass('pg_temp.hpg_cv_v') IS NULL AS gone")).rows).toEqual([{ gone: true }]);
      expect(await isPinned(c)).toBe(false);
    } finally {
      await adminQuery('DROP TABLE IF EXISTS hpg_cv_base CASCADE');
    }
  });

  it('DROP OWNED BY CURRENT_USER drops the temp tables: the client is free', { timeout: 30_000 }, async () => {
    // DROP OWNED takes every session's objects of the role, temp tables of other test files' clients
    // too: the temp table here belongs to a role of this test's own.
    await adminQuery('DROP ROLE IF EXISTS hpg_owner');
    await adminQuery('CREATE ROLE hpg_owner NOLOGIN');
    await adminQuery('GRANT hpg_owner TO app');
    try {
      const c = await connect();
      await c.query('SET ROLE hpg_owner');
      await c.query('CREATE TEMP TABLE hpg_owned (x int)');
      expect(await isPinned(c)).toBe(true);
      await c.query('DROP OWNED BY CURRENT_USER');
      expect(await isPinned(c)).toBe(false);
      await c.query('RESET ROLE');
    } finally {
      await adminQuery('DROP ROLE hpg_owner');
    }
  });
});

describe('temp objects made in ways pgway did not see before', () => {
  it('EXPLAIN ANALYZE CREATE TEMP TABLE ... AS pins; DROP TABLE frees', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('EXPLAIN ANALYZE CREATE TEMP TABLE hpg_ex_t AS SELECT 1 AS x');
    await keepsTempTable(c, 'hpg_ex_t');
    await c.query('DROP TABLE hpg_ex_t');
    expect(await isPinned(c)).toBe(false);
  });

  it('a temp range type pins until DISCARD TEMP', { timeout: 30_000 }, async () => {
    const c = await connect();
    await c.query('CREATE TYPE pg_temp.hpg_rng AS RANGE (subtype = int4)');
    await c.query('SELECT 1');
    expect(await isPinned(c)).toBe(true);
    expect((await c.query("SELECT pg_temp.hpg_rng(1, 3)::text AS r")).rows).toEqual([{ r: '[1,3)' }]);
    await c.query('DISCARD TEMP');
    expect(await isPinned(c)).toBe(false);
  });
});

describe('a client whose SQL pgway cannot read as PostgreSQL does', () => {
  it('standard_conforming_strings off (a backslash escapes a quote): its temp table made after one pins it', { timeout: 30_000 }, async () => {
    const a = await connect();
    await a.query('SET standard_conforming_strings = off');
    await a.query(String.raw`SELECT 'it\'s'; CREATE TEMP TABLE pl_scs (x int)`);
    await keepsTempTable(a, 'pl_scs');
  });

  it('standard_conforming_strings off at startup: the client stays pinned after DISCARD ALL, which goes back to off', { timeout: 30_000 }, async () => {
    const a = await testClients.connect({ connectionString: gw.url(), options: '-c standard_conforming_strings=off' } as pg.ClientConfig);
    await a.query('DISCARD ALL');
    await a.query(String.raw`SELECT 'a\''; CREATE TEMP TABLE pl_scs_startup (x int); SELECT ' --'`);
    await keepsTempTable(a, 'pl_scs_startup');
  });

  it('client_encoding LATIN1: a SET of a non-ASCII value keeps the client where the server set what it read', { timeout: 30_000 }, async () => {
    // node-postgres sends UTF-8 whatever the client_encoding says: the server reads é's two bytes as LATIN1.
    const steps = [`SET client_encoding = 'LATIN1'`, `SET application_name = 'café'`, `SET client_encoding = 'UTF8'`];
    const d = await testClients.connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
    const a = await connect();
    for (const sql of steps) {
      await d.query(sql);
      await a.query(sql);
    }
    const want = (await d.query(`SELECT current_setting('application_name') AS v`)).rows[0].v as string;
    expect(want).not.toBe('café');
    expect(await isPinned(a)).toBe(true);
    const [x, y] = [await connect(), await connect()];
    await Promise.all([x.query('SELECT 1'), y.query('SELECT 1')].map((p) => p.catch(() => undefined)));
    expect((await a.query(`SELECT current_setting('application_name') AS v`)).rows[0].v).toBe(want);
  });

  it('a SET client_encoding in the same query string as the non-ASCII SET does not count: PostgreSQL read the text as LATIN1', { timeout: 30_000 }, async () => {
    const a = await connect();
    await a.query(`SET client_encoding = 'LATIN1'`);
    await a.query(`SET client_encoding = 'UTF8'; SET application_name = 'café'`);
    expect(await isPinned(a)).toBe(true);
  });

  it('client_encoding LATIN1 set earlier in the same transaction counts for a non-ASCII SET after it', { timeout: 30_000 }, async () => {
    const a = await connect();
    for (const sql of ['BEGIN', `SET client_encoding = 'LATIN1'`, `SET application_name = 'café'`, 'COMMIT', `SET client_encoding = 'UTF8'`]) await a.query(sql);
    expect(await isPinned(a)).toBe(true);
  });

  it('SET LOCAL standard_conforming_strings = off pins the client too', { timeout: 30_000 }, async () => {
    const a = await connect();
    await a.query('BEGIN');
    await a.query('SET LOCAL standard_conforming_strings = off');
    await a.query(String.raw`SELECT 'a\''; CREATE TEMP TABLE pl_scs_local (x int); SELECT ' --'`);
    await a.query('COMMIT');
    await keepsTempTable(a, 'pl_scs_local');
  });
});

describe('a pinned client leaving a pool whose server_reset_query is empty', () => {
  it('leaves its connection clean: no temp table, advisory lock or LISTEN for the next client', { timeout: 30_000 }, async () => {
    const g = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000, server_reset_query: "" }' });
    try {
      const a = new pg.Client({ connectionString: g.url() });
      a.on('error', () => undefined);
      await a.connect();
      await a.query('CREATE TEMP TABLE pl_left (x int); SELECT pg_advisory_lock(4651); LISTEN pl_left_ch');
      const pid = (await a.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await a.end();
      const b = new pg.Client({ connectionString: g.url() });
      b.on('error', () => undefined);
      await b.connect();
      const r = (await b.query(`SELECT pg_backend_pid() AS pid,
        (SELECT count(*)::int FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temps,
        (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
        (SELECT count(*)::int FROM pg_listening_channels()) AS listens`)).rows[0];
      await b.end();
      expect(r).toEqual({ pid, temps: 0, locks: 0, listens: 0 });
    } finally {
      await g.stop();
    }
  });
});

describe("pgway's question about temp relations", () => {
  it('reads the catalog as it is, whatever operators the client put ahead of pg_catalog', { timeout: 30_000 }, async () => {
    await adminQuery('DROP SCHEMA IF EXISTS hpg_ops CASCADE');
    await adminQuery('CREATE SCHEMA hpg_ops AUTHORIZATION app');
    try {
      const c = await connect();
      await c.query("CREATE FUNCTION hpg_ops.never(oid, oid) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT false'");
      await c.query('CREATE OPERATOR hpg_ops.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = hpg_ops.never)');
      await c.query('SET search_path = hpg_ops, pg_catalog');
      await c.query('CREATE TEMP TABLE hpg_op_t (x int)');
      // A rollback in a transaction with temp work: pgway asks whether any temp relation is left.
      await c.query('BEGIN; CREATE TEMP TABLE hpg_op_u (x int); ROLLBACK');
      await keepsTempTable(c, 'hpg_op_t');
    } finally {
      await adminQuery('DROP SCHEMA IF EXISTS hpg_ops CASCADE');
    }
  });
});
