// node-postgres (`pg`) through pgway in transaction mode, pool of 2, compared with a direct
// connection to the same PostgreSQL. Several pg.Client instances share the 2 server connections and
// their work is interleaved so that a client's next statement runs on another server connection than
// its last one. Each scenario runs on both; the observations (rows, error fields, settings,
// ParameterStatus) must match.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { bothConnectionsUsable, clientsOfEachTest, onAnotherConnection, onConnection, pidOf, sleep, waitFor, within } from './helpers/pg-helpers.js';

let gw: TestGateway;
const DIRECT = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

const TABLES = [
  'hpg_items', 'hpg_sp_t', 'hpg_ddl_d', 'hpg_ddl_g', 'hpg_ddl2_d', 'hpg_ddl2_g', 'hpg_big', 'hpg_err', 'hpg_rows', 'hpg_end',
  'hpg_multi', 'hpg_hammer', 'hpg_ro',
];

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
  await adminQuery(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
  await adminQuery('DROP SCHEMA IF EXISTS hpg_s2 CASCADE');
  await adminQuery('CREATE SCHEMA hpg_s2');
  await adminQuery('CREATE TABLE hpg_items (id int PRIMARY KEY, v text)');
  await adminQuery('CREATE TABLE hpg_sp_t (a int)');
  await adminQuery('INSERT INTO hpg_sp_t VALUES (1)');
  await adminQuery('CREATE TABLE hpg_s2.hpg_sp_t (a text, b text)');
  await adminQuery("INSERT INTO hpg_s2.hpg_sp_t VALUES ('two', 'bee')");
  for (const t of ['hpg_ddl_d', 'hpg_ddl_g', 'hpg_ddl2_d', 'hpg_ddl2_g']) {
    await adminQuery(`CREATE TABLE ${t} (a int)`);
    await adminQuery(`INSERT INTO ${t} VALUES (1)`);
  }
  await adminQuery('CREATE TABLE hpg_big (id int, v text, n numeric, j jsonb)');
  await adminQuery(`INSERT INTO hpg_big SELECT g, 'row ' || g, g / 7.0, jsonb_build_object('g', g) FROM generate_series(1, 100000) g`);
  await adminQuery(`CREATE TABLE hpg_err (
    id int PRIMARY KEY, email text UNIQUE, n int NOT NULL DEFAULT 0 CONSTRAINT hpg_err_n_check CHECK (n >= 0),
    parent int REFERENCES hpg_err (id))`);
  await adminQuery("INSERT INTO hpg_err (id, email) VALUES (1, 'a@x')");
  await adminQuery('CREATE TABLE hpg_rows (id int PRIMARY KEY, v text)');
  await adminQuery("INSERT INTO hpg_rows VALUES (1, 'orig'), (2, 'orig')");
  await adminQuery('CREATE TABLE hpg_end (tag text)');
  await adminQuery('CREATE TABLE hpg_multi (id int, tag text)');
  await adminQuery('CREATE TABLE hpg_hammer (w int, k int, tag text)');
  await adminQuery('CREATE TABLE hpg_ro (id int)');
  await adminQuery('GRANT USAGE ON SCHEMA hpg_s2 TO app');
  await adminQuery('GRANT ALL ON ALL TABLES IN SCHEMA hpg_s2 TO app');
  await adminQuery(`GRANT ALL ON ${TABLES.join(', ')} TO app`);
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
  await adminQuery('DROP SCHEMA IF EXISTS hpg_s2 CASCADE');
});

const pools: pg.Pool[] = [];
afterEach(async () => { // after the clients' afterEach below (hooks run last registered first)
  await Promise.all(pools.splice(0).map((p) => Promise.race([p.end().catch(() => undefined), sleep(3000)])));
});

type Cfg = Omit<pg.ClientConfig, 'connectionString'>;

const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (url: string, cfg: Cfg = {}): Promise<pg.Client> => testClients.connect({ connectionString: url, ...cfg });

/** Where a scenario runs: a direct connection or pgway, with the means to move a client between server connections. */
interface Env {
  viaGateway: boolean;
  url: string;
  client(cfg?: Cfg): Promise<pg.Client>;
  /** pgway: runs `work` while the other clients hold the server connection `c` just used, so it runs on the other one. Direct: runs it. */
  elsewhere<T>(c: pg.Client, work: () => Promise<T>): Promise<T>;
  /** pgway: runs `work` on server connection `pid` (pool of 2). Direct: runs it. */
  on<T>(pid: number, work: () => Promise<T>): Promise<T>;
}

function envFor(viaGateway: boolean, url = viaGateway ? gw.url() : DIRECT()): Env {
  let holders: Promise<[pg.Client, pg.Client]> | undefined;
  const hold = (): Promise<[pg.Client, pg.Client]> => (holders ??= Promise.all([connect(url), connect(url)]));
  // The holders serve one move at a time: concurrent calls queue.
  let turn: Promise<unknown> = Promise.resolve();
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const run = turn.then(work, work);
    turn = run.catch(() => undefined);
    return run;
  };
  return {
    viaGateway,
    url,
    client: (cfg = {}) => connect(url, cfg),
    elsewhere(c, work) {
      if (!viaGateway) return work();
      return serialized(async () => {
        // A pinned client cannot move (and would leave the holders waiting for its connection).
        if (await isPinned(c)) return work();
        const h = await hold();
        const pid = await pidOf(c);
        return onAnotherConnection(pid, h, work);
      });
    },
    on(pid, work) {
      if (!viaGateway) return work();
      return serialized(async () => onConnection(pid, await hold(), work));
    },
  };
}

/** The pgway session of client `c` (matched by its port), as SHOW CLIENTS sees it. */
function sessionOf(c: pg.Client, g: TestGateway = gw) {
  const port = (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
  return g.gateway.clients().find((x) => x.port === port);
}

/** Whether idle client `c` keeps a server connection (pinned): still attached after a moment. */
async function isPinned(c: pg.Client, g: TestGateway = gw): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if ((sessionOf(c, g)?.serverId ?? 0) === 0) return false;
    await sleep(20);
  }
  return true;
}

/** What a query came to, comparable across connections. */
async function settle<R extends pg.QueryResultRow>(p: Promise<pg.QueryResult<R> | pg.QueryResult<R>[]>): Promise<unknown> {
  try {
    const r = await p;
    if (Array.isArray(r)) return { ok: r.map((x) => ({ command: x.command, rows: x.rows })) };
    return { ok: r.rows, command: r.command, rowCount: r.rowCount };
  } catch (e) {
    return errorShape(e);
  }
}

/** The fields of a pg DatabaseError a user can read (no stack). */
function errorShape(e: unknown): unknown {
  const err = e as pg.DatabaseError;
  if (!(err instanceof Error)) return { thrown: String(e) };
  const out: Record<string, unknown> = { err: err.code ?? 'no-code', message: err.message };
  for (const k of ['severity', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where', 'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'routine'] as const) {
    if (err[k] !== undefined) out[k] = err[k];
  }
  return out;
}

/** Runs `scenario` on a direct connection, then through pgway; returns both observations. */
async function compare<T>(scenario: (env: Env) => Promise<T>, ms = 12_000): Promise<{ d: T; g: T }> {
  const d = await within(ms, 'direct', scenario(envFor(false)));
  const g = await within(ms, 'gateway', scenario(envFor(true)));
  return { d, g };
}

/** The settings a client reads back, without the backend pid. */
const SETTINGS_SQL = `SELECT current_setting('application_name') AS app, current_setting('search_path') AS sp,
  current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,
  current_setting('idle_in_transaction_session_timeout') AS iit, current_setting('client_encoding') AS enc,
  current_setting('TimeZone') AS tz, current_setting('work_mem') AS wm, current_setting('DateStyle') AS ds`;

async function settingsOf(c: pg.Client): Promise<Record<string, unknown>> {
  return (await c.query(SETTINGS_SQL)).rows[0] as Record<string, unknown>;
}

// --- named queries -------------------------------------------------------------------------------------

describe('named queries ({ name, text, values })', () => {
  it('many clients: same name with different texts, same text under different names, interleaved', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all(Array.from({ length: 5 }, () => env.client()));
      const out: unknown[] = [];
      for (let round = 0; round < 8; round++) {
        out.push(await Promise.all(clients.map(async (c, i) => [
          await settle(c.query(i % 2 === 0
            ? { name: 'hpg_q', text: 'SELECT $1::int + 1 AS v', values: [round] }
            : { name: 'hpg_q', text: "SELECT $1::text || '-' || $2::text AS v, 'odd' AS kind", values: [round, i] })),
          await settle(c.query({ name: `hpg_q_${i}`, text: 'SELECT $1::int * 2 AS w', values: [round + i] })),
          await settle(c.query({ name: 'hpg_shared', text: 'SELECT $1::int * 2 AS w', values: [i] })),
        ])));
      }
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('a named query after another client prepared the same text, each on the other connection', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [a, b] = [await env.client(), await env.client()];
      const q = (c: pg.Client, name: string, v: number) => settle(c.query({ name, text: 'SELECT $1::int AS v, $2::text AS t', values: [v, name] }));
      const out: unknown[] = [await q(a, 'hpg_a', 1)];
      out.push(await env.elsewhere(a, () => q(b, 'hpg_b', 2)));
      out.push(await env.elsewhere(b, () => q(a, 'hpg_a', 3)));
      out.push(await env.elsewhere(a, () => q(b, 'hpg_b', 4)));
      out.push(await env.elsewhere(b, () => q(a, 'hpg_a', 5)));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  for (const how of ['DEALLOCATE ALL', 'DISCARD ALL']) {
    it(`${how} issued by the client, then its named queries and settings, on either connection`, { timeout: 30_000 }, async () => {
      const scenario = async (env: Env): Promise<unknown> => {
        const c = await env.client({ application_name: 'hpg-dealloc', statement_timeout: 4000 });
        const q = (name: string, v: number) => settle(c.query({ name, text: 'SELECT $1::int + 100 AS v', values: [v] }));
        const out: unknown[] = [await q('hpg_d1', 1), await q('hpg_d2', 2)];
        await c.query("SET work_mem = '3MB'");
        out.push(await settle(c.query(how)));
        out.push(await q('hpg_d1', 3)); // pg sends Bind only: the statement is gone (26000)
        out.push(await env.elsewhere(c, () => q('hpg_d2', 4)));
        out.push(await env.elsewhere(c, () => settle(c.query({ name: 'hpg_d3', text: 'SELECT $1::int + 100 AS v', values: [5] }))));
        out.push(await env.elsewhere(c, () => settle(c.query({ name: 'hpg_d3', text: 'SELECT $1::int + 100 AS v', values: [6] }))));
        out.push(await env.elsewhere(c, () => settingsOf(c)));
        return out;
      };
      const { d, g } = await compare(scenario);
      expect(g).toEqual(d);
    });
  }

  // pg never prepares a named query again: a client that prepared it before the DDL is refused at
  // each run, as PostgreSQL refuses it; one that prepares it after gets the new type.
  it('DDL changing a column type: 0A000 at each run for clients that prepared before, the new type for a new one', { timeout: 30_000 }, async () => {
    const run = async (url: string, table: string): Promise<unknown[][]> => {
      const clients = await Promise.all([1, 2, 3].map(() => connect(url)));
      const q = (c: pg.Client) => settle(c.query({ name: 'hpg_ddl', text: `SELECT * FROM ${table} WHERE a >= $1`, values: [0] }));
      for (const c of clients) expect(await q(c)).toEqual({ ok: [{ a: 1 }], command: 'SELECT', rowCount: 1 });
      await adminQuery(`ALTER TABLE ${table} ALTER COLUMN a TYPE bigint`);
      const fresh = await connect(url);
      return Promise.all([...clients, fresh].map(async (c) => {
        const s: unknown[] = [];
        for (let i = 0; i < 4; i++) s.push(await q(c));
        return s.map((x) => (x as { err?: string }).err ?? x);
      }));
    };
    const d = await run(DIRECT(), 'hpg_ddl2_d');
    expect(d.map((s) => s[3])).toEqual(['0A000', '0A000', '0A000', { ok: [{ a: '1' }], command: 'SELECT', rowCount: 1 }]);
    expect(await run(gw.url(), 'hpg_ddl2_g')).toEqual(d);
  });

  it('a named query whose values fail to serialize (pg sends Parse, Close, Sync), then the same name again', { timeout: 30_000 }, async () => {
    const bad = { toPostgres: () => { throw new Error('cannot serialize'); } };
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client();
      const out: unknown[] = [await settle(c.query({ name: 'hpg_bad', text: 'SELECT $1::text AS v', values: [bad] }))];
      out.push(await settle(c.query({ name: 'hpg_bad', text: 'SELECT $1::text AS v', values: ['ok'] })));
      out.push(await env.elsewhere(c, () => settle(c.query({ name: 'hpg_bad', text: 'SELECT $1::text AS v', values: ['ok2'] }))));
      out.push(await settle(c.query('SELECT 1 AS one')));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- result shapes -------------------------------------------------------------------------------------

describe('result shapes', () => {
  it("rowMode 'array', custom type parsers, NULLs, bytea, json, arrays, numeric, from clients taking turns", { timeout: 30_000 }, async () => {
    const types = { getTypeParser: (oid: number) => (v: string) => `oid${oid}:${v}` };
    const bytes = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all([1, 2, 3].map(() => env.client()));
      const queries: pg.QueryConfig[] = [
        { text: "SELECT 1 AS a, 'x' AS a, NULL::int AS n", rowMode: 'array' } as pg.QueryConfig,
        { text: 'SELECT $1::int AS a, $2::text AS b, $3::text AS c', values: [1, null, undefined], rowMode: 'array' } as pg.QueryConfig,
        { text: "SELECT 1::int AS i, 2.5::numeric AS n, 't'::bool AS b, '2020-01-02'::date AS d", types } as pg.QueryConfig,
        { name: 'hpg_typed', text: 'SELECT $1::int + 1 AS i', values: [41], types } as pg.QueryConfig,
        { text: 'SELECT $1::bytea AS b, length($1::bytea) AS len', values: [bytes] },
        { text: "SELECT '\\x00ff'::bytea AS b, ''::bytea AS e" },
        { text: `SELECT '{"a":[1,2,{"b":null}]}'::json AS j, '{"z":1,"a":2}'::jsonb AS jb, $1::jsonb AS p`, values: [JSON.stringify({ k: ['v', 1, null] })] },
        { text: "SELECT ARRAY[1,NULL,3]::int[] AS a, ARRAY['a','b,c','\"q\"',NULL]::text[] AS t, '{{1,2},{3,4}}'::int[] AS m, $1::int[] AS p", values: [[5, 6, null]] },
        { text: "SELECT 12345678901234567890.123456789::numeric AS n, 'NaN'::numeric AS nan, 9007199254740993::bigint AS big, 1.5::float8 AS f, '-Infinity'::float8 AS inf" },
        { text: "SELECT '2020-01-02 03:04:05.678+00'::timestamptz::text AS tz, '1 day 02:03:04'::interval AS iv, 'a'::char(3) AS ch, '00000000-0000-0000-0000-000000000001'::uuid AS u" },
        { text: 'SELECT NULL AS n1, NULL::text AS n2, NULL::jsonb AS n3, NULL::int[] AS n4' },
        { text: 'SELECT * FROM hpg_big WHERE id <= $1 ORDER BY id', values: [3] },
      ];
      const out: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        out.push(await Promise.all(clients.map(async (c) => Promise.all(queries.map(async (q) => {
          try {
            const r = await c.query(q);
            return { rows: r.rows, fields: r.fields.map((f) => [f.name, f.dataTypeID, f.format]) };
          } catch (e) {
            return errorShape(e);
          }
        })))));
      }
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('1,000 columns and a 100k-row result while other clients use the pool', { timeout: 30_000 }, async () => {
    const wide = `SELECT ${Array.from({ length: 1000 }, (_, i) => `${i} AS c${i}`).join(', ')}`;
    const scenario = async (env: Env): Promise<unknown> => {
      const [c, ...others] = await Promise.all([1, 2, 3].map(() => env.client()));
      const big = c!.query('SELECT id, v, n, j FROM hpg_big ORDER BY id');
      const bigNamed = others[0]!.query({ name: 'hpg_bign', text: 'SELECT id, v FROM hpg_big WHERE id > $1 ORDER BY id', values: [0], rowMode: 'array' });
      const churn = Promise.all(others.map(async (o, i) => {
        const got: unknown[] = [];
        for (let k = 0; k < 20; k++) got.push((await o.query(k % 2 ? wide : { text: 'SELECT $1::int AS k', values: [k * 10 + i] })).rows[0]);
        return got;
      }));
      const [r, rn, small] = await Promise.all([big, bigNamed, churn]);
      let sum = 0;
      for (const row of r.rows) sum += row.id as number;
      return { n: r.rows.length, first: r.rows[0], last: r.rows[r.rows.length - 1], sum, nn: rn.rows.length, lastn: rn.rows[rn.rows.length - 1], small };
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });

  it('binary: true (results in binary format)', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all([1, 2].map(() => env.client({ binary: true } as Cfg)));
      const out: unknown[] = [];
      for (let i = 0; i < 4; i++) {
        out.push(await Promise.all(clients.map(async (c, k) => settle(c.query({ text: 'SELECT $1::int AS i, $2::text AS t, 2.5::float8 AS f, true AS b, NULL::int AS n, 12::bigint AS big', values: [i, `c${k}`] })))));
        out.push(await Promise.all(clients.map(async (c) => settle(c.query({ name: 'hpg_bin', text: 'SELECT $1::int * 3 AS x', values: [i] })))));
      }
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- startup parameters --------------------------------------------------------------------------------

describe('startup parameters pg sends', () => {
  const configs: Cfg[] = [
    { application_name: 'hpg-one', options: '-c search_path=hpg_s2,public -c statement_timeout=4321', statement_timeout: 2500, lock_timeout: 1234, idle_in_transaction_session_timeout: 60000 },
    { application_name: 'hpg-two', options: '--search_path=public -c TimeZone=Asia/Tokyo -c application_name=from\\ options', lock_timeout: 777 },
    { options: '-c DateStyle=SQL,DMY -c work_mem=5MB' },
    { client_encoding: 'LATIN1', application_name: 'hpg-latin1' } as Cfg,
  ];

  it('SHOW and current_setting after rotations, RESET of one setting, RESET ALL and DISCARD ALL', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all(configs.map((cfg) => env.client(cfg)));
      const out: unknown[] = [];
      const readAll = async () => Promise.all(clients.map((c) => env.elsewhere(c, () => settingsOf(c))));
      out.push(await readAll());
      out.push(await Promise.all(clients.map((c) => c.query('SHOW statement_timeout').then((r) => r.rows))));
      await Promise.all(clients.map((c) => c.query("SET statement_timeout = '9s'; SET search_path = pg_catalog; SET application_name = 'changed'; SET TimeZone = 'UTC'; SET hpg.tag = 'set'")));
      out.push(await readAll());
      await Promise.all(clients.map((c) => c.query('RESET statement_timeout')));
      await Promise.all(clients.map((c) => c.query('RESET application_name; SET search_path TO DEFAULT')));
      out.push(await readAll());
      await Promise.all(clients.map((c) => c.query('RESET ALL')));
      out.push(await readAll());
      await Promise.all(clients.map((c) => c.query("SET work_mem = '7MB'; SET lock_timeout = 1")));
      await Promise.all(clients.map((c) => c.query('DISCARD ALL')));
      out.push(await readAll());
      out.push(await readAll());
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

});

// --- SET, SET LOCAL, RESET, set_config ------------------------------------------------------------------

describe('SET / SET LOCAL / RESET / set_config', () => {

  it('SETs inside and outside transactions, with errors, ROLLBACK, savepoints and set_config, read on the other connection each time', { timeout: 30_000 }, async () => {
    const steps = [
      "SET work_mem = '2MB'",
      "BEGIN; SET work_mem = '3MB'; ROLLBACK",
      "BEGIN; SET work_mem = '4MB'; SELECT 1/0; COMMIT",
      "SET work_mem = '5MB'; SELECT 1/0",
      "BEGIN; SET LOCAL work_mem = '6MB'; COMMIT",
      "SELECT set_config('work_mem', '7MB', true)",
      "SELECT set_config('work_mem', '8MB', false), set_config('hpg.tag', 'eight', false)",
      "BEGIN; SAVEPOINT a; SET work_mem = '9MB'; ROLLBACK TO a; SET hpg.tag = 'nine'; COMMIT",
      "BEGIN; SAVEPOINT a; SET work_mem = '10MB'; RELEASE a; COMMIT",
      'RESET work_mem',
      "SET TIME ZONE 'Europe/Paris'",
      "SET TIME ZONE INTERVAL '+05:30'",
      'SET TIME ZONE -7',
      'SET TIME ZONE LOCAL',
      "SET DateStyle TO postgres, dmy",
      "SET search_path TO \"$user\", hpg_s2, 'public'",
      'SET statement_timeout = 1500',
      'SET work_mem TO DEFAULT',
      "SET seq_page_cost = .5; SET extra_float_digits = -3",
      "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY",
      "SET client_min_messages = warning",
      'RESET ALL',
      // pgway cannot reproduce this value: the client stays on its connection until DISCARD ALL (README)
      "SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE",
      "SET work_mem = '11MB'",
      'DISCARD ALL',
      "SET work_mem = '12MB'",
    ];
    // hpg.tag: '' and NULL alike (an unset custom setting; see the test on custom settings above)
    const read = `SELECT current_setting('work_mem') AS wm, coalesce(current_setting('hpg.tag', true), '') AS tag, current_setting('TimeZone') AS tz,
      current_setting('DateStyle') AS ds, current_setting('search_path') AS sp, current_setting('statement_timeout') AS st,
      current_setting('seq_page_cost') AS spc, current_setting('extra_float_digits') AS efd, current_setting('default_transaction_isolation') AS iso,
      current_setting('default_transaction_read_only') AS ro, current_setting('client_min_messages') AS cmm`;
    const scenario = async (env: Env): Promise<unknown> => {
      const [c, other] = [await env.client(), await env.client()];
      const out: unknown[] = [];
      for (const step of steps) {
        const r = await settle(c.query(step));
        if (step.startsWith('BEGIN') && (r as { err?: string }).err) await c.query('ROLLBACK');
        // another client with its own settings uses the pool meanwhile
        await other.query(`SET work_mem = '1MB'; SET TimeZone = 'Asia/Tokyo'`);
        out.push([step, (r as { err?: string }).err ?? 'ok', await env.elsewhere(c, async () => (await c.query(read)).rows[0])]);
      }
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('set_config with a bound value, by unnamed and named statements, inside and outside transactions', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all([0, 1, 2].map(() => env.client()));
      const out: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        out.push(await Promise.all(clients.map(async (c, i) => {
          await c.query("SELECT set_config('hpg.tenant', $1, false)", [`t${i}-${round}`]);
          const a = await env.elsewhere(c, async () => (await c.query("SELECT current_setting('hpg.tenant') AS t")).rows[0]);
          await c.query({ name: 'hpg_setcfg', text: "SELECT set_config('search_path', $1, false) AS sp", values: [i % 2 ? 'hpg_s2, public' : 'public'] });
          const b = await env.elsewhere(c, async () => (await c.query('SELECT * FROM hpg_sp_t')).rows);
          await c.query('BEGIN');
          await c.query("SELECT set_config('hpg.tenant', $1, false)", [`rolled-${i}`]);
          await c.query('ROLLBACK');
          await c.query('BEGIN');
          await c.query("SELECT set_config('hpg.tenant', $1, true)", [`local-${i}`]);
          const inTx = (await c.query("SELECT current_setting('hpg.tenant') AS t")).rows[0];
          await c.query('COMMIT');
          const after = await env.elsewhere(c, async () => (await c.query("SELECT current_setting('hpg.tenant') AS t")).rows[0]);
          return [a, b, inTx, after];
        })));
      }
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('a setting that changes what the client sees: client_min_messages and notices', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client();
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(`${n.severity}:${n.message}`));
      const raise = "DO $$ BEGIN RAISE NOTICE 'n1'; RAISE WARNING 'w1'; END $$";
      await c.query(raise);
      await c.query('SET client_min_messages = warning');
      await env.elsewhere(c, () => c.query(raise));
      await env.elsewhere(c, () => c.query("BEGIN; SET LOCAL client_min_messages = error; DO $$ BEGIN RAISE WARNING 'w2'; END $$; COMMIT"));
      await env.elsewhere(c, () => c.query(raise));
      await c.query('RESET client_min_messages');
      await env.elsewhere(c, () => c.query(raise));
      await sleep(50);
      return notices;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- multi-statement simple queries and transactions ------------------------------------------------------

describe('multi-statement simple queries and transactions', () => {
  it('several statements in one string, with an error in the middle, BEGIN/COMMIT inside the string', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env, tag: string): Promise<unknown> => {
      const [c, other] = [await env.client(), await env.client()];
      const t = (s: string) => s.replaceAll('TAG', tag);
      const steps = [
        'SELECT 1 AS a; SELECT 2 AS b, 3 AS c',
        "INSERT INTO hpg_multi VALUES (1, 'TAG'); SELECT 1/0; INSERT INTO hpg_multi VALUES (2, 'TAG')",
        "INSERT INTO hpg_multi VALUES (3, 'TAG'); SELECT count(*)::int AS n FROM hpg_multi WHERE tag = 'TAG'",
        "BEGIN; INSERT INTO hpg_multi VALUES (4, 'TAG'); COMMIT; INSERT INTO hpg_multi VALUES (5, 'TAG'); SELECT 1/0",
        "BEGIN; INSERT INTO hpg_multi VALUES (6, 'TAG'); SELECT txid_current_if_assigned() IS NOT NULL AS tx",
        "INSERT INTO hpg_multi VALUES (7, 'TAG'); COMMIT",
        "BEGIN; INSERT INTO hpg_multi VALUES (8, 'TAG')",
        'SELECT 1/0',
        'SELECT 1',
        'COMMIT',
        "SELECT array_agg(id ORDER BY id) AS ids FROM hpg_multi WHERE tag = 'TAG'",
        "SELECT 1 AS x; SELECT * FROM hpg_no_such_table; SELECT 2 AS y",
        ';;',
        '',
        "SELECT 'a;b' AS s; -- trailing comment",
        "SELECT $$x;y$$ AS d; SELECT E'\\';' AS e",
      ];
      const out: unknown[] = [];
      for (const [i, step] of steps.entries()) {
        out.push(await settle(c.query(t(step))));
        // pg rejects at ErrorResponse; PostgreSQL flushes that before the ReadyForQuery that carries the status
        await waitFor('ReadyForQuery', () => (c as unknown as { readyForQuery: boolean }).readyForQuery, 2000);
        out.push(c.getTransactionStatus());
        // another client uses the pool between each step
        out.push((await other.query({ text: 'SELECT $1::int AS i', values: [i] })).rows);
      }
      return out;
    };
    const d = await within(10_000, 'direct', scenario(envFor(false), 'hpg-d'));
    const g = await within(10_000, 'gateway', scenario(envFor(true), 'hpg-g'));
    expect(g).toEqual(d);
  });

  it('a transaction spanning several query strings stays on one backend while other clients rotate', { timeout: 30_000 }, async () => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => connect(gw.url())));
    const problems: string[] = [];
    await within(20_000, 'transactions', Promise.all(clients.map(async (c, i) => {
      for (let round = 0; round < 10; round++) {
        await c.query('BEGIN');
        const pids = new Set<number>();
        for (let k = 0; k < 3; k++) {
          const r = await c.query({ text: 'SELECT pg_backend_pid() AS pid, txid_current() AS tx, $1::int AS k', values: [k] });
          pids.add(r.rows[0].pid as number);
          await sleep(1);
        }
        await c.query(round % 2 ? 'COMMIT' : 'ROLLBACK');
        if (pids.size !== 1) problems.push(`client ${i} round ${round}: ${[...pids].join(',')}`);
      }
    })));
    expect(problems).toEqual([]);
  });

  it('COPY through pg without a stream: COPY FROM STDIN is failed by pg, COPY TO STDOUT is ignored', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client();
      const out: unknown[] = [];
      out.push(await settle(c.query('COPY hpg_multi (id, tag) FROM STDIN')));
      out.push(await settle(c.query('SELECT 1 AS after_in')));
      out.push(await settle(c.query('COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT')));
      out.push(await env.elsewhere(c, () => settle(c.query('SELECT 2 AS after_out'))));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- errors ----------------------------------------------------------------------------------------------

describe('errors', () => {
  it('error fields (code, position, detail, hint, constraint...) match, simple and extended, named and not', { timeout: 30_000 }, async () => {
    const failing: pg.QueryConfig[] = [
      { text: "INSERT INTO hpg_err (id, email) VALUES (1, 'b@x')" },
      { text: 'INSERT INTO hpg_err (id, email) VALUES ($1, $2)', values: [2, 'a@x'] },
      { name: 'hpg_e_fk', text: 'INSERT INTO hpg_err (id, parent) VALUES ($1, $2)', values: [3, 99] },
      { text: 'INSERT INTO hpg_err (id, n) VALUES (4, -1)' },
      { text: 'INSERT INTO hpg_err (id, n) VALUES ($1, $2)', values: [5, null] },
      { text: 'SELECT 1/0' },
      { name: 'hpg_e_div', text: 'SELECT 1/$1::int', values: [0] },
      { text: 'SELEC 1' },
      { text: 'SELECT 1 FROM hpg_nope WHERE x = $1', values: [1] },
      { text: 'SELECT nope FROM hpg_err' },
      { text: "SELECT 'abc'::int" },
      { text: 'SELECT $1::int', values: ['abc'] },
      { text: "SELECT jsonb_path_query('{}', 'bad path')" },
      { text: "DO $$ BEGIN RAISE EXCEPTION USING MESSAGE = 'custom', DETAIL = 'd', HINT = 'h', ERRCODE = 'P0042'; END $$" },
      { text: 'CREATE FUNCTION hpg_f() RETURNS int AS $$ SELECT 1/0 $$ LANGUAGE sql; SELECT hpg_f()' },
      { text: "SELECT * FROM generate_series(1, 3) g WHERE 1/(g - 2) > 0" },
      { text: 'SELECT repeat($1, 3)::varchar(2)', values: ['xy'] },
    ];
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all([1, 2].map(() => env.client()));
      const out: unknown[] = [];
      for (let round = 0; round < 2; round++) {
        for (const q of failing) {
          out.push(await Promise.all(clients.map((c) => settle(c.query(q)))));
        }
      }
      out.push(await Promise.all(clients.map((c) => settle(c.query('SELECT 1 AS ok')))));
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it("pg's query_timeout (client side), then the next queries", { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      // pg starts a query's timer when it is queued: pg_sleep(2.1) outlasts its own (600 ms) and those of
      // the two queries queued behind it (1200, 1800 ms), and ends 300 ms before the next one's (2400 ms).
      const c = await env.client({ query_timeout: 600 });
      const out: unknown[] = [];
      out.push(await settle(c.query('SELECT pg_sleep(2.1) AS s')));
      out.push(await settle(c.query('SELECT 1 AS after')));
      out.push(await settle(c.query({ text: 'SELECT pg_sleep($1) AS s', values: [1] })));
      out.push(await settle(c.query({ text: 'SELECT $1::int AS after2', values: [2] })));
      out.push(await settle(c.query('BEGIN')));
      // Timed out at 600 ms; SELECT 3 is queued then and sent when the sleep ends at 900 ms, 300 ms
      // before its own timer (1200 ms): 300 ms either way.
      out.push(await settle(c.query('SELECT pg_sleep(0.9) AS s')));
      out.push(await settle(c.query('SELECT 3 AS in_tx')));
      out.push(await settle(c.query('COMMIT')));
      out.push(await env.elsewhere(c, () => settle(c.query('SELECT 4 AS moved'))));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('statement_timeout from the client config and from SET, on whichever connection runs it', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [c, busy] = [await env.client({ statement_timeout: 200 }), await env.client()];
      const out: unknown[] = [];
      const bg = (async () => { for (let i = 0; i < 6; i++) await busy.query('SELECT pg_sleep(0.05)'); })();
      for (let i = 0; i < 3; i++) out.push(await settle(c.query(i % 2 ? 'SELECT pg_sleep(1)' : { text: 'SELECT pg_sleep($1)', values: [1] })));
      await c.query("SET statement_timeout = '2s'");
      out.push(await env.elsewhere(c, () => settle(c.query('SELECT pg_sleep(0.4) AS s'))));
      await c.query('RESET statement_timeout');
      out.push(await env.elsewhere(c, () => settle(c.query('SELECT pg_sleep(0.4) AS s'))));
      await c.query('BEGIN');
      out.push(await settle(c.query("SET LOCAL statement_timeout = '3s'; SELECT pg_sleep(0.4) AS s")));
      await c.query('COMMIT');
      out.push(await env.elsewhere(c, () => settle(c.query('SELECT pg_sleep(0.4) AS s'))));
      await bg;
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('idle_in_transaction_session_timeout from the client config ends the session as on a direct connection; the pool recovers', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = new pg.Client({ connectionString: env.url, idle_in_transaction_session_timeout: 300 });
      const errors: unknown[] = [];
      c.on('error', (e) => errors.push(errorShape(e)));
      testClients.opened.push(c);
      await c.connect();
      const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
      const out: unknown[] = [await settle(c.query('SELECT 1 AS a'))];
      await c.query('BEGIN');
      await c.query('SELECT 2');
      await within(3000, 'end after idle timeout', ended);
      out.push(errors);
      out.push(await settle(c.query('SELECT 3')));
      // others are served
      const [x, y] = [await env.client(), await env.client()];
      out.push(await within(5000, 'both', Promise.all([x, y].map(async (k) => {
        await k.query('BEGIN');
        const r = await k.query('SELECT 1 AS one');
        await sleep(100);
        await k.query('COMMIT');
        return r.rows;
      }))));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- pg.Pool, many clients --------------------------------------------------------------------------------

describe('pg.Pool of 50 over a server pool of 2', () => {
  it('mixed transactions while other clients SET their own search_path / TimeZone: each sees only its own', { timeout: 30_000 }, async () => {
    const pool = new pg.Pool({ connectionString: gw.url(), max: 50 });
    pool.on('error', () => undefined);
    pools.push(pool);
    const problems: string[] = [];
    const zones = ['UTC', 'Asia/Tokyo', 'America/New_York', 'Europe/Paris', 'Australia/Sydney'];
    const workers = Array.from({ length: 50 }, async (_, w) => {
      const c = await pool.connect();
      try {
        const mine = w % 3 === 0 ? { sp: w % 2 ? 'hpg_s2, public' : 'public, hpg_s2', tz: zones[w % zones.length]!, tag: `w${w}` } : undefined;
        if (mine) {
          await c.query(`SET search_path = ${mine.sp}`);
          await c.query(`SET TimeZone = '${mine.tz}'`);
          await c.query("SELECT set_config('hpg.tag', $1, false)", [mine.tag]);
        }
        for (let k = 0; k < 8; k++) {
          if (k % 2 === 0) {
            await c.query('BEGIN');
            await c.query('INSERT INTO hpg_hammer VALUES ($1, $2, $3)', [w, k, 'tx']);
            if (k % 4 === 0) await c.query('SAVEPOINT s; INSERT INTO hpg_hammer VALUES (-1, -1, \'sp\'); ROLLBACK TO s');
            const r = await c.query("SELECT count(*)::int AS n, current_setting('search_path') AS sp FROM hpg_hammer WHERE w = $1 AND k = $2", [w, k]);
            await c.query(k % 6 === 0 ? 'ROLLBACK' : 'COMMIT');
            if (r.rows[0].n !== 1) problems.push(`w${w} k${k}: count ${r.rows[0].n}`);
          }
          const r = await c.query({ name: 'hpg_settings', text: "SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_setting('hpg.tag', true) AS tag, $1::int AS k", values: [k] });
          const row = r.rows[0];
          const want = mine ? { sp: mine.sp, tz: mine.tz, tag: mine.tag, k } : { sp: '"$user", public', tz: 'Etc/UTC', k };
          const got = mine ? row : { sp: row.sp, tz: row.tz, k: row.k };
          if (JSON.stringify(got) !== JSON.stringify(want) || (!mine && row.tag !== null && row.tag !== '')) problems.push(`w${w} k${k}: ${JSON.stringify(row)}`);
          if (w % 7 === 0) await pool.query('SELECT 1/0').catch(() => undefined);
        }
      } finally {
        c.release();
      }
    });
    await within(25_000, 'hammer', Promise.all(workers));
    expect(problems).toEqual([]);
    const r = await adminQuery<{ n: number; sp: number }>("SELECT count(*) FILTER (WHERE w >= 0)::int AS n, count(*) FILTER (WHERE w < 0)::int AS sp FROM hpg_hammer");
    // 50 workers x 4 transactions, of which k = 0 and k = 6 roll back
    expect(r.rows[0]).toEqual({ n: 100, sp: 0 });
  });
});

// --- pins: LISTEN, temp tables, advisory locks ----------------------------------------------------------------

describe('state that pins a client, and its end', () => {
  /** After `c` gave up its state: it holds no server connection while idle, and two others can work at once. */
  async function unpinned(c: pg.Client): Promise<void> {
    // What others observe: two transactions at once (a pinned client leaves one connection: 57P05 after 5 s).
    const [x, y] = [await connect(gw.url()), await connect(gw.url())];
    await within(7000, 'both connections for others', bothConnectionsUsable(x, y));
    expect(await isPinned(c)).toBe(false);
  }

  it('LISTEN / UNLISTEN * cycles: notifications arrive, then the client is free again', { timeout: 30_000 }, async () => {
    const [l, n] = [await connect(gw.url()), await connect(gw.url())];
    const got: string[] = [];
    l.on('notification', (m) => got.push(`${m.channel}:${m.payload}`));
    for (let cycle = 0; cycle < 3; cycle++) {
      await l.query('LISTEN hpg_ch');
      expect(await isPinned(l)).toBe(true);
      await n.query(`NOTIFY hpg_ch, 'c${cycle}'`);
      await n.query("SELECT pg_notify('hpg_ch', $1)", [`p${cycle}`]);
      await waitFor('notifications', () => got.length === (cycle + 1) * 2, 3000);
      await l.query('UNLISTEN *');
      await unpinned(l);
    }
    await n.query("NOTIFY hpg_ch, 'after'");
    await sleep(200);
    expect(got).toEqual(['hpg_ch:c0', 'hpg_ch:p0', 'hpg_ch:c1', 'hpg_ch:p1', 'hpg_ch:c2', 'hpg_ch:p2']);
  });

  it('a temp table: pinned while it exists; DROP TABLE (also IF EXISTS, also pg_temp.) frees the client', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    for (const drop of ['DROP TABLE hpg_tmp', 'DROP TABLE IF EXISTS hpg_tmp', 'DROP TABLE pg_temp.hpg_tmp']) {
      await c.query('CREATE TEMP TABLE hpg_tmp (x int)');
      await c.query({ text: 'INSERT INTO hpg_tmp VALUES ($1)', values: [1] });
      expect(await isPinned(c)).toBe(true);
      await c.query(drop);
      await unpinned(c);
    }
  });

  it('a temp sequence and a temp view: pinned while either exists; DROP SEQUENCE and DROP VIEW free the client', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('CREATE TEMP SEQUENCE hpg_tseq');
    await c.query('CREATE TEMP VIEW hpg_tview AS SELECT 7 AS x');
    expect((await c.query("SELECT nextval('hpg_tseq')::int AS n")).rows).toEqual([{ n: 1 }]);
    await c.query('DROP SEQUENCE hpg_tseq');
    expect(await isPinned(c)).toBe(true);
    expect((await c.query('SELECT x FROM hpg_tview')).rows).toEqual([{ x: 7 }]);
    await c.query('DROP VIEW IF EXISTS pg_temp.hpg_tview');
    await unpinned(c);
  });

  it('stays pinned while a temp relation is left that a DROP of its name did not take', { timeout: 30_000 }, async () => {
    await adminQuery('DROP SCHEMA IF EXISTS hpg_first CASCADE');
    await adminQuery('CREATE SCHEMA hpg_first AUTHORIZATION app');
    try {
      const c = await connect(gw.url());
      // Dropped and made again in one transaction: the new table is there.
      await c.query('CREATE TEMP TABLE hpg_again (x int)');
      await c.query('BEGIN');
      await c.query('DROP TABLE hpg_again');
      await c.query('CREATE TEMP TABLE hpg_again (x int)');
      await c.query('COMMIT');
      expect(await isPinned(c)).toBe(true);
      await c.query('INSERT INTO hpg_again VALUES (1)');
      await c.query('DROP TABLE hpg_again');
      // With pg_temp after another schema, DROP VIEW takes that schema's view: the temp one stays.
      await c.query('SET search_path = hpg_first, pg_temp');
      await c.query('CREATE TEMP VIEW hpg_shadowed AS SELECT 1 AS x');
      await c.query('CREATE VIEW hpg_shadowed AS SELECT 2 AS x');
      await c.query('DROP VIEW hpg_shadowed');
      expect(await isPinned(c)).toBe(true);
      expect((await c.query('SELECT x FROM pg_temp.hpg_shadowed')).rows).toEqual([{ x: 1 }]);
      await c.query('DROP VIEW pg_temp.hpg_shadowed');
      await unpinned(c);
    } finally {
      await adminQuery('DROP SCHEMA IF EXISTS hpg_first CASCADE');
    }
  });

  it('a temp table made in a transaction that rolled back, while another stays: freed once that one is dropped', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('CREATE TEMP TABLE hpg_kept (x int)');
    await c.query('BEGIN');
    await c.query('CREATE TEMP TABLE hpg_undone (x int)');
    await c.query('ROLLBACK');
    expect(await isPinned(c)).toBe(true);
    await c.query('INSERT INTO hpg_kept VALUES (1)');
    await c.query('DROP TABLE hpg_kept');
    await unpinned(c);
  });

  it('a temp table rolled back to a savepoint, in a transaction that commits, pins nothing', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('SAVEPOINT a');
    await c.query('CREATE TEMP TABLE hpg_sp_tmp (x int)');
    await c.query('ROLLBACK TO a');
    await c.query('COMMIT');
    await unpinned(c);
    // A CREATE that failed (the name is taken) leaves the first table, which still pins.
    await c.query('CREATE TEMP TABLE hpg_sp_tmp (x int)');
    await expect(c.query('CREATE TEMP TABLE hpg_sp_tmp (y int)')).rejects.toMatchObject({ code: '42P07' });
    expect(await isPinned(c)).toBe(true);
    await c.query('DROP TABLE hpg_sp_tmp');
    await unpinned(c);
  });

  it('a renamed temp table pins under its new name; a rename that failed leaves the old one', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('CREATE TEMP TABLE hpg_old (x int)');
    await c.query('ALTER TABLE hpg_old RENAME TO hpg_new');
    expect(await isPinned(c)).toBe(true);
    await c.query('INSERT INTO hpg_new VALUES (1)');
    await c.query('DROP TABLE hpg_new');
    await unpinned(c);
    await c.query('CREATE TEMP TABLE hpg_old (x int); CREATE TEMP TABLE hpg_taken (x int)');
    await expect(c.query('ALTER TABLE hpg_old RENAME TO hpg_taken')).rejects.toMatchObject({ code: '42P07' });
    await c.query('DROP TABLE hpg_taken');
    expect(await isPinned(c)).toBe(true);
    await c.query('DROP TABLE hpg_old');
    await unpinned(c);
  });

  it('temp views a DROP ... CASCADE took with it pin nothing, whatever was dropped', { timeout: 30_000 }, async () => {
    await adminQuery('DROP SCHEMA IF EXISTS hpg_casc CASCADE');
    await adminQuery('CREATE SCHEMA hpg_casc AUTHORIZATION app');
    try {
      const c = await connect(gw.url());
      await c.query('CREATE TEMP TABLE hpg_base (x int)');
      await c.query('CREATE TEMP VIEW hpg_on_base AS SELECT x FROM hpg_base');
      await c.query('DROP TABLE hpg_base CASCADE');
      await unpinned(c);
      // A temp view on a table of a schema: DROP SCHEMA ... CASCADE names no temp relation.
      await c.query('CREATE TABLE hpg_casc.t (x int)');
      await c.query('CREATE TEMP VIEW hpg_on_schema AS SELECT x FROM hpg_casc.t');
      expect(await isPinned(c)).toBe(true);
      await c.query('DROP SCHEMA hpg_casc CASCADE');
      await unpinned(c);
    } finally {
      await adminQuery('DROP SCHEMA IF EXISTS hpg_casc CASCADE');
    }
  });

  it('a temp function made after the temp tables went keeps the client pinned: the server is not asked about tables then', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('CREATE TEMP TABLE hpg_gone (x int)');
    await c.query('DROP TABLE hpg_gone; DISCARD TEMP');
    await c.query("CREATE FUNCTION pg_temp.hpg_f() RETURNS int LANGUAGE sql AS 'SELECT 42'");
    await c.query('SELECT 1');
    expect(await isPinned(c)).toBe(true);
    expect((await c.query('SELECT pg_temp.hpg_f() AS v')).rows).toEqual([{ v: 42 }]);
    await c.query('DISCARD TEMP');
    await unpinned(c);
  });

  it('an advisory lock and a temp table, both gone: the server is asked about each, and the client is free', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('SELECT pg_advisory_lock(4242)');
    await c.query('CREATE TEMP TABLE hpg_both (x int)');
    await c.query('DROP TABLE hpg_both');
    expect(await isPinned(c)).toBe(true);
    await c.query('SELECT pg_advisory_unlock(4242)');
    await unpinned(c);
  });

  it('a temp table ON COMMIT DROP does not pin', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('CREATE TEMP TABLE hpg_tmp2 (x int) ON COMMIT DROP');
    await c.query('COMMIT');
    await unpinned(c);
  });

  // The state never existed once ROLLBACK ran; a client stuck to a connection for the rest of its life
  // leaves other clients one server connection short (they wait, or time out with 57P05).

  it('a session advisory lock, taken with a bound key, until pg_advisory_unlock_all()', { timeout: 30_000 }, async () => {
    const [c, other] = [await connect(gw.url()), await connect(gw.url())];
    await c.query('SELECT pg_advisory_lock($1)', [424242]);
    expect(await isPinned(c)).toBe(true);
    await c.query({ name: 'hpg_lock', text: 'SELECT pg_advisory_lock($1)', values: [424243] });
    const tryBoth = 'BEGIN; SELECT pg_try_advisory_xact_lock(424242) AS a, pg_try_advisory_xact_lock(424243) AS b; COMMIT';
    expect(((await other.query(tryBoth)) as unknown as pg.QueryResult[])[1]!.rows).toEqual([{ a: false, b: false }]);
    await c.query('SELECT pg_advisory_unlock_all()');
    await unpinned(c);
    expect(((await other.query(tryBoth)) as unknown as pg.QueryResult[])[1]!.rows).toEqual([{ a: true, b: true }]);
  });

  it('a transaction-level advisory lock does not pin', { timeout: 30_000 }, async () => {
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [5151]);
    await c.query('COMMIT');
    await unpinned(c);
  });

  it('a WITH HOLD cursor until CLOSE', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client();
      const out: unknown[] = [];
      await c.query('BEGIN; DECLARE hpg_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g; COMMIT');
      out.push((await c.query('FETCH 3 FROM hpg_cur')).rows);
      if (env.viaGateway) out.push(await isPinned(c)); else out.push(true);
      out.push((await c.query('FETCH 3 FROM hpg_cur')).rows);
      await c.query('CLOSE hpg_cur');
      if (env.viaGateway) out.push(await isPinned(c)); else out.push(false);
      out.push(await settle(c.query('FETCH 1 FROM hpg_cur')));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- clients that leave abruptly ------------------------------------------------------------------------------

describe('client.end() and destroyed sockets', () => {
  /** Two fresh clients of `env` at once: both served, clean (no transaction, default settings, no locks held). */
  async function cleanAndBoth(env: Env): Promise<unknown> {
    const [x, y] = [await env.client(), await env.client()];
    return within(8000, 'two clean transactions', Promise.all([x, y].map(async (k) => {
      await k.query('BEGIN');
      const r = await k.query(`SELECT current_setting('work_mem') AS wm, current_setting('hpg.tag', true) IS NULL OR current_setting('hpg.tag', true) = '' AS no_tag,
        txid_current_if_assigned() AS tx, (SELECT count(*)::int FROM pg_locks WHERE pid = pg_backend_pid() AND locktype IN ('advisory', 'tuple', 'transactionid')) AS locks,
        (SELECT v FROM hpg_rows WHERE id = 1) AS v`);
      await sleep(200);
      await k.query('COMMIT');
      return r.rows[0];
    })));
  }

  it('end() during an open transaction holding a row lock: rolled back, the row free, others clean', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const victim = await env.client();
      await victim.query('BEGIN');
      await victim.query("SET work_mem = '9MB'; SELECT set_config('hpg.tag', 'victim', false)");
      await victim.query("UPDATE hpg_rows SET v = 'victim' WHERE id = 1");
      const waiter = await env.client({ lock_timeout: 5000 });
      const blocked = settle(waiter.query("UPDATE hpg_rows SET v = 'waiter' WHERE id = 1 RETURNING v"));
      await sleep(200);
      await victim.end();
      const out: unknown[] = [await within(6000, 'blocked update', blocked)];
      await waiter.query("UPDATE hpg_rows SET v = 'orig' WHERE id = 1");
      out.push(await cleanAndBoth(env));
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('end() while a long query runs, inside a transaction: others are served and clean', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const victim = await env.client();
      await victim.query('BEGIN');
      await victim.query("UPDATE hpg_rows SET v = 'victim2' WHERE id = 1");
      const long = settle(victim.query('SELECT pg_sleep(3)'));
      await sleep(200);
      await victim.end();
      const out: unknown[] = [(await long) !== undefined];
      out.push(await cleanAndBoth(env));
      return out;
    };
    const d = await within(15_000, 'direct', scenario(envFor(false)));
    const g = await within(15_000, 'gateway', scenario(envFor(true)));
    expect(g).toEqual(d);
  });

  it('a socket destroyed in the middle of a 100k-row result: others unaffected, connection reused clean', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [victim, other] = [await env.client(), await env.client()];
      let rows = 0;
      const big = victim.query(new pg.Query('SELECT id, v, j FROM hpg_big ORDER BY id'));
      (big as unknown as NodeJS.EventEmitter).on('row', () => {
        if (++rows === 1000) (victim as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      });
      (big as unknown as NodeJS.EventEmitter).on('error', () => undefined);
      const side = [];
      for (let i = 0; i < 5; i++) side.push((await other.query({ text: 'SELECT $1::int AS i', values: [i] })).rows[0]);
      // The abandoned statement ends (the backend fails to send, or pgway cancels it) before the next step.
      await waitFor('the abandoned result to end', async () =>
        (await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT id, v, j FROM hpg_big%'")).rows[0]!.n === 0, 10_000);
      await sleep(300);
      return [rows >= 1000, side, await cleanAndBoth(env)];
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('a socket destroyed after pg sent Parse/Bind/Execute with no Sync yet (rows: n, portal suspended)', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const victim = await env.client();
      await victim.query('BEGIN');
      await victim.query("INSERT INTO hpg_end VALUES ('portal')");
      const q = new pg.Query({ text: 'SELECT g FROM generate_series(1, 1000) g', rows: 10 } as pg.QueryConfig);
      const emitter = q as unknown as NodeJS.EventEmitter;
      let got = 0;
      emitter.on('error', () => undefined);
      const first = new Promise<void>((resolve) => emitter.on('row', () => { if (++got === 10) resolve(); }));
      victim.query(q);
      await within(3000, 'first rows', first);
      (victim as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await sleep(300);
      return [got, await cleanAndBoth(env), (await adminQuery("SELECT count(*)::int AS n FROM hpg_end WHERE tag = 'portal'")).rows];
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });
});

// --- pg's pipeline mode (pipeline: true) -------------------------------------------------------------------------

describe("pg's pipeline mode", () => {
  const all = (qs: Promise<unknown>[]) => Promise.all(qs);

  it('a pipelined transaction with an error, SETs in and out of it, then the settings on the other connection', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client({ pipeline: true } as Cfg);
      const r = await all([
        settle(c.query("SET work_mem = '2MB'")),
        settle(c.query('BEGIN')),
        settle(c.query("SET work_mem = '3MB'")),
        settle(c.query({ text: "SELECT set_config('hpg.tag', $1, false)", values: ['in-failed-tx'] })),
        settle(c.query({ text: 'INSERT INTO hpg_multi VALUES ($1, $2)', values: [100, 'pipe'] })),
        settle(c.query('SELECT 1/0')),
        settle(c.query("SET work_mem = '4MB'")),
        settle(c.query('COMMIT')),
        settle(c.query({ text: "SELECT set_config('hpg.tag', $1, false) AS t", values: ['kept'] })),
        settle(c.query("BEGIN; SET work_mem = '5MB'; COMMIT")),
        settle(c.query('BEGIN')),
        settle(c.query("SET work_mem = '6MB'")),
        settle(c.query('ROLLBACK')),
        settle(c.query("SELECT current_setting('work_mem') AS wm, current_setting('hpg.tag', true) AS t")),
      ]);
      const after = await env.elsewhere(c, () => settle(c.query("SELECT current_setting('work_mem') AS wm, current_setting('hpg.tag', true) AS t, (SELECT count(*)::int FROM hpg_multi WHERE id = 100) AS n")));
      return [r, after];
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('pipelined named statements on a client whose next pipeline runs on the other connection', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [c, o] = [await env.client({ pipeline: true } as Cfg), await env.client({ pipeline: true } as Cfg)];
      const batch = (k: pg.Client, n: number) => all(Array.from({ length: 20 }, (_, i) => settle(k.query({ name: `hpg_pp${i % 4}`, text: `SELECT $1::int + ${i % 4} AS v`, values: [n + i] }))));
      const out: unknown[] = [await batch(c, 0)];
      out.push(await env.elsewhere(c, () => batch(c, 100)));
      out.push(await env.elsewhere(c, () => all([batch(c, 200), batch(o, 300)])));
      out.push(await env.elsewhere(c, () => batch(c, 400)));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- more of what pg applications do ------------------------------------------------------------------------------

describe('more of what pg applications do', () => {
  it("DDL on one table: another client's unrelated named statement keeps working", { timeout: 30_000 }, async () => {
    const scenario = async (env: Env, table: string): Promise<unknown> => {
      const [a, b] = [await env.client(), await env.client()];
      const qa = () => settle(a.query({ name: 'hpg_ddl_a', text: `SELECT * FROM ${table} WHERE a >= $1`, values: [0] }));
      const qb = (v: number) => settle(b.query({ name: 'hpg_unrelated', text: 'SELECT $1::int + 1 AS v', values: [v] }));
      const qa2 = (v: number) => settle(a.query({ name: 'hpg_unrelated_a', text: 'SELECT $1::text AS t', values: [`x${v}`] }));
      // a's statement is run again where it was prepared, so that it meets the DDL as on a direct connection
      const pidA = await env.elsewhere(a, async () => [await qa(), await pidOf(a)] as const);
      const out: unknown[] = [pidA[0], await qb(1), await qa2(1)];
      await adminQuery(`ALTER TABLE ${table} ADD COLUMN b text DEFAULT 'bee'`);
      out.push(await env.on(pidA[1], qa)); // 0A000 on both: pg does not prepare again
      out.push(await qb(2), await env.elsewhere(b, () => qb(3)), await qa2(2), await env.elsewhere(a, () => qa2(3)));
      return out;
    };
    const d = await within(10_000, 'direct', scenario(envFor(false), 'hpg_ddl_d'));
    const g = await within(10_000, 'gateway', scenario(envFor(true), 'hpg_ddl_g'));
    expect(g).toEqual(d);
  });

  it("DDL on one table: another client's transaction using an unrelated named statement commits", { timeout: 30_000 }, async () => {
    const scenario = async (env: Env, table: string, tag: string): Promise<unknown> => {
      const [a, b] = [await env.client(), await env.client()];
      const qa = () => settle(a.query({ name: 'hpg_ddl_a2', text: `SELECT * FROM ${table} WHERE a >= $1`, values: [0] }));
      const qb = (v: number) => settle(b.query({ name: 'hpg_unrelated2', text: 'SELECT $1::int + 1 AS v', values: [v] }));
      const pidA = await env.elsewhere(a, async () => [await qa(), await pidOf(a)] as const);
      const out: unknown[] = [pidA[0], await qb(1)];
      await adminQuery(`ALTER TABLE ${table} ADD COLUMN c text DEFAULT 'cee'`);
      out.push(await env.on(pidA[1], qa)); // 0A000 on both: pg does not prepare again
      await b.query('BEGIN');
      await b.query('INSERT INTO hpg_end VALUES ($1)', [tag]);
      out.push(await qb(2));
      out.push(await settle(b.query('COMMIT')));
      out.push((await adminQuery('SELECT count(*)::int AS n FROM hpg_end WHERE tag = $1', [tag])).rows);
      return out;
    };
    const d = await within(10_000, 'direct', scenario(envFor(false), 'hpg_ddl_d', 'ddl-d'));
    const g = await within(10_000, 'gateway', scenario(envFor(true), 'hpg_ddl_g', 'ddl-g'));
    expect(g).toEqual(d);
  });

  it("pg's client.cancel() of a running query, with other clients rotating", { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [c, o] = [await env.client(), await env.client()];
      await c.query('SELECT 1');
      const q = new pg.Query('SELECT pg_sleep(5)');
      const done = new Promise<unknown>((resolve) => {
        (q as unknown as NodeJS.EventEmitter).on('error', (e) => resolve((e as { code?: string }).code));
        (q as unknown as NodeJS.EventEmitter).on('end', () => resolve('finished'));
      });
      c.query(q);
      const busy = (async () => { for (let i = 0; i < 5; i++) await o.query('SELECT pg_sleep(0.02)'); })();
      await sleep(300);
      const canceller = new pg.Client({ connectionString: env.url });
      (canceller as unknown as { cancel(client: pg.Client, query: pg.Query): void }).cancel(c, q);
      const code = await within(4000, 'cancel', done);
      await busy;
      return [code, await settle(c.query('SELECT 1 AS after'))];
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('300 distinct named statements (more than max_prepared_statements), twice, from 3 clients', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const clients = await Promise.all([1, 2, 3].map(() => env.client()));
      return Promise.all(clients.map(async (c, k) => {
        const seen: number[] = [];
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < 300; i++) {
            const r = await c.query({ name: `hpg_many_${i}`, text: `SELECT $1::int + ${i} AS v`, values: [k] });
            seen.push(r.rows[0].v as number);
          }
        }
        return seen.reduce((s, v) => s + v, 0);
      }));
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });

  it('application_name and options with quotes, backslashes and non-ASCII', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client({ application_name: "it's a \\ test ✓", options: "-c hpg.tag=o'k\\\\x -c search_path=hpg_s2" });
      const read = async () => (await c.query("SELECT current_setting('application_name') AS a, current_setting('hpg.tag') AS t, current_setting('search_path') AS sp")).rows;
      return [await read(), await env.elsewhere(c, read), await env.elsewhere(c, read)];
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});


describe('ParameterStatus values', () => {
  it('every ParameterStatus a client hears after login carries its own setting, never another client\'s', { timeout: 30_000 }, async () => {
    const env = envFor(true);
    const heard: Map<string, Set<string>>[] = [];
    const cfgs: Cfg[] = [
      { application_name: 'hpg-own-a', options: '-c TimeZone=Asia/Tokyo' },
      { application_name: 'hpg-own-b', options: '-c DateStyle=German' },
      { options: '-c IntervalStyle=iso_8601' },
    ];
    const clients = await Promise.all(cfgs.map(async (cfg, i) => {
      const c = await connect(env.url, cfg);
      heard[i] = new Map();
      c.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
        const s = heard[i]!.get(m.parameterName) ?? new Set<string>();
        s.add(m.parameterValue);
        heard[i]!.set(m.parameterName, s);
      });
      return c;
    }));
    for (let round = 0; round < 4; round++) {
      for (const c of clients) await env.elsewhere(c, () => c.query({ text: 'SELECT $1::int AS r', values: [round] }));
      await Promise.all(clients.map((c) => c.query('SELECT 1')));
    }
    for (const [i, c] of clients.entries()) {
      for (const [name, values] of heard[i]!) {
        const own = (await c.query(`SELECT current_setting('${name}') AS v`)).rows[0].v as string;
        expect({ client: i, name, values: [...values] }).toEqual({ client: i, name, values: [own] });
      }
    }
  });
});

describe('more edges', () => {

  it('big values and many parameters through named statements that move between connections', { timeout: 30_000 }, async () => {
    const big = 'x'.repeat(3 * 1024 * 1024) + '✓';
    const many = Array.from({ length: 3000 }, (_, i) => i);
    const manyText = `SELECT ${many.map((i) => `$${i + 1}::int`).join(' + ')} AS s`;
    const scenario = async (env: Env): Promise<unknown> => {
      const [a, b] = [await env.client(), await env.client()];
      const out: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        for (const c of [a, b]) {
          out.push(await env.elsewhere(c, async () => {
            const r1 = await c.query({ name: 'hpg_bigv', text: 'SELECT length($1::text) AS n, md5($1::text) AS h, right($1::text, 2) AS tail', values: [big] });
            const r2 = await c.query({ name: 'hpg_manyp', text: manyText, values: many });
            const r3 = await c.query({ text: 'SELECT $1::bytea = $2::bytea AS same, length($1::bytea) AS n', values: [Buffer.alloc(2 * 1024 * 1024, 7), Buffer.alloc(2 * 1024 * 1024, 7)] });
            return [r1.rows, r2.rows, r3.rows];
          }));
        }
      }
      return out;
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });

  it('notifications reach only clients that listen, also right after UNLISTEN *', { timeout: 30_000 }, async () => {
    const [l, n, ...others] = await Promise.all([1, 2, 3, 4].map(() => connect(gw.url()))) as [pg.Client, pg.Client, pg.Client, pg.Client];
    const stray: string[] = [];
    for (const o of others) o.on('notification', (m) => stray.push(`${m.channel}:${m.payload}`));
    let heard = 0;
    l.on('notification', () => heard++);
    for (let cycle = 0; cycle < 15; cycle++) {
      await l.query('LISTEN hpg_stray');
      const burst = Promise.all(Array.from({ length: 5 }, (_, i) => n.query(`NOTIFY hpg_stray, '${cycle}-${i}'`)));
      await sleep(cycle % 3);
      await l.query('UNLISTEN *');
      await burst;
      await Promise.all(others.map(async (o) => {
        await o.query('BEGIN');
        await o.query('SELECT pg_sleep(0.01)');
        await o.query('COMMIT');
      }));
    }
    await sleep(200);
    expect(stray).toEqual([]);
    expect(heard).toBeGreaterThan(0);
  });
});

describe('named statements inside transactions on a connection that lacks them', () => {
  // Compared without the error's source location: in an aborted transaction pgway's own Parse (the
  // statement is missing there) is what fails, so 25P02 comes from exec_parse_message, not exec_bind_message.
  const noSource = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (k, x: unknown) => (k === 'routine' || k === 'file' ? undefined : x)));
  it('in an aborted transaction, after ROLLBACK TO, and after ROLLBACK', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const c = await env.client();
      const n = (v: number) => settle(c.query({ name: 'hpg_intx', text: 'SELECT $1::int * 7 AS v', values: [v] }));
      const m = (v: number) => settle(c.query({ name: 'hpg_intx2', text: 'SELECT $1::text AS t', values: [`m${v}`] }));
      const out: unknown[] = [await n(1)];
      out.push(await env.elsewhere(c, async () => {
        const r: unknown[] = [];
        await c.query('BEGIN');
        r.push(await settle(c.query('SELECT 1/0')));
        r.push(await n(2)); // 25P02
        r.push(await m(2));
        r.push(await settle(c.query('ROLLBACK')));
        r.push(await n(3), await m(3));
        await c.query('BEGIN');
        await c.query('SAVEPOINT s');
        r.push(await settle(c.query('SELECT 1/0')));
        r.push(await settle(c.query('ROLLBACK TO s')));
        r.push(await n(4));
        await c.query('COMMIT');
        return r;
      }));
      out.push(await env.elsewhere(c, async () => [await n(5), await m(5)]));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(noSource(g)).toEqual(noSource(d));
  });
});
