// postgres.js (the `postgres` driver) through pgway in transaction mode, pool of 2, compared with a
// direct connection to the same PostgreSQL, for what postgres.js does that other drivers do not: deep
// pipelines (Parse/Describe/Flush for new statements, Bind/Execute/Sync for prepared ones) with errors in
// the middle, sql.begin and savepoints pipelined, statement names of several instances rotating over the
// 2 server connections, DDL in between, unsafe/simple/describe/values/raw, cursors and forEach, startup
// `connection` options, SET/set_config, cancel with work pipelined behind, and end with work in flight.
// Each scenario runs on a direct connection and through pgway; the observations must be equal.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { onAnotherConnection, waitFor, within } from './helpers/pg-helpers.js';
import { OpenedClients, type PostgresOptions } from './helpers/postgres-js-clients.js';

let gw: TestGateway;
const DIRECT = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

const TABLES = [
  'hpj_c_u', 'hpj_c_tx', 'hpj_c_ddl_d', 'hpj_c_ddl_g', 'hpj_c_ddl2_d', 'hpj_c_ddl2_g', 'hpj_c_big', 'hpj_c_t', 'hpj_c_end',
];

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
  await adminQuery(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
  await adminQuery('DROP SCHEMA IF EXISTS hpj_c_s2 CASCADE');
  await adminQuery('CREATE TABLE hpj_c_u (id int PRIMARY KEY, v text)');
  await adminQuery('CREATE TABLE hpj_c_tx (id int PRIMARY KEY, v text)');
  await adminQuery('CREATE TABLE hpj_c_end (id int, tag text)');
  for (const t of ['hpj_c_ddl_d', 'hpj_c_ddl_g', 'hpj_c_ddl2_d', 'hpj_c_ddl2_g']) {
    await adminQuery(`CREATE TABLE ${t} (a int, s text)`);
    await adminQuery(`INSERT INTO ${t} VALUES (1, 'one'), (2, 'two')`);
  }
  await adminQuery('CREATE TABLE hpj_c_big (id int, v text)');
  await adminQuery("INSERT INTO hpj_c_big SELECT g, 'r' || g FROM generate_series(1, 50000) g");
  await adminQuery('CREATE TABLE hpj_c_t (a int)');
  await adminQuery('INSERT INTO hpj_c_t VALUES (1)');
  await adminQuery('CREATE SCHEMA hpj_c_s2');
  await adminQuery('CREATE TABLE hpj_c_s2.hpj_c_t (a int)');
  await adminQuery('INSERT INTO hpj_c_s2.hpj_c_t VALUES (2)');
  await adminQuery('GRANT USAGE ON SCHEMA hpj_c_s2 TO app');
  await adminQuery('GRANT ALL ON ALL TABLES IN SCHEMA hpj_c_s2 TO app');
  await adminQuery(`GRANT ALL ON ${TABLES.join(', ')} TO app`);
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
  await adminQuery('DROP SCHEMA IF EXISTS hpj_c_s2 CASCADE');
});

/** Every postgres.js instance and pg holder a test opened; ended after each test, bounded. */
const clients = new OpenedClients();
afterEach(() => clients.endAll());

type Opts = PostgresOptions;
type Q = postgres.Sql | postgres.TransactionSql;

const open = (url: string, options: Opts = {}): postgres.Sql => clients.sql(url, options);
const pgClient = (url: string): Promise<pg.Client> => clients.pg(url);

/** Where a scenario runs, with the means to move an instance to the other server connection. */
interface Env {
  viaGateway: boolean;
  sql(options?: Opts): postgres.Sql;
  /** pgway: runs `work` while pg holders keep the server connection `sql` used last, so it runs on the other. Direct: runs it. */
  elsewhere<T>(sql: postgres.Sql, work: () => Promise<T>): Promise<T>;
}

function envFor(viaGateway: boolean): Env {
  const url = viaGateway ? gw.url() : DIRECT();
  let holders: Promise<[pg.Client, pg.Client]> | undefined;
  let turn: Promise<unknown> = Promise.resolve();
  return {
    viaGateway,
    sql: (options = {}) => open(url, options),
    elsewhere(sql, work) {
      if (!viaGateway) return work();
      const run = turn.then(async () => {
        holders ??= Promise.all([pgClient(url), pgClient(url)]);
        const [r] = await sql`SELECT pg_backend_pid() AS pid`;
        return onAnotherConnection(r!.pid as number, await holders, work);
      });
      turn = run.catch(() => undefined);
      return run;
    },
  };
}

/** What a settled promise came to, comparable across connections. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) {
    const out: Record<string, unknown> = { rows: v.map((row) => (typeof row === 'object' && row !== null && !Array.isArray(row) ? { ...row } : row)) };
    const r = v as unknown as { command?: string; count?: number; columns?: { name: string; type: number }[] };
    if (r.command !== undefined) out.command = r.command;
    if (r.count !== undefined) out.count = r.count;
    if (r.columns) out.columns = r.columns.map((c) => [c.name, c.type]);
    return out;
  }
  return v;
}

function errShape(e: unknown): unknown {
  const x = e as { code?: string; message?: string; detail?: string; position?: string; routine?: string };
  return { err: x?.code ?? 'no-code', message: x?.message?.replace(/\S+:\d+$/, 'HOST:PORT'), detail: x?.detail, position: x?.position };
}

async function settle(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: shape(await p) };
  } catch (e) {
    return errShape(e);
  }
}

const settleAll = (ps: Promise<unknown>[]): Promise<unknown[]> => Promise.all(ps.map(settle));

/** Runs `scenario` on a direct connection, then through pgway; returns both observations. */
async function compare<T>(scenario: (env: Env) => Promise<T>, ms = 15_000): Promise<{ d: T; g: T }> {
  const d = await within(ms, 'direct', scenario(envFor(false)));
  const g = await within(ms, 'gateway', scenario(envFor(true)));
  return { d, g };
}

// --- pipelining ------------------------------------------------------------------------------------

describe('pipelines with failures in the middle', () => {
  /** 120 queries: prepared and new statements, with a syntax error, 22012, 23505 and 22P02 among them. */
  const batch = (sql: Q, k: number, round: number): Promise<unknown>[] => Array.from({ length: 120 }, (_, i) => {
    const id = k * 10_000 + round * 1000 + i;
    switch (i % 12) {
      case 0: return sql`SELECT ${i}::int AS v, 'prepared' AS kind`;
      case 1: return sql.unsafe(`SELECT ${i} AS v, 'new-${round}' AS kind, $1::int AS k`, [k], { prepare: true });
      case 2: return sql`INSERT INTO hpj_c_u VALUES (${id}, ${'x'}) RETURNING id`;
      case 3: return i === 27 ? sql`SELEC ${i}::int` : sql`SELECT ${String(i)}::text || ${'-' + k} AS v`;
      case 4: return i % 24 === 4 ? sql`SELECT 1 / ${0}::int AS v` : sql`SELECT 10 / ${2}::int AS v`;
      case 5: return i === 41 ? sql`INSERT INTO hpj_c_u VALUES (${id - 3}, ${'dup'})` : sql`SELECT count(*)::int AS n FROM hpj_c_u WHERE id = ${id - 3}`;
      case 6: return i % 36 === 6 ? sql`SELECT ${'abc'}::int AS v` : sql`SELECT ${i}::int + 1 AS v`;
      case 7: return sql`SELECT * FROM generate_series(1, ${i % 5}::int) AS g`;
      case 8: return sql`SELECT ${[i, k]}::int[] AS a, ${sql.json({ i })}::jsonb AS j`;
      case 9: return sql.unsafe(`SELECT ${i} AS u, ${round} AS r`);
      case 10: return i === 58 ? sql`SELECT * FROM hpj_c_missing_${sql.unsafe(String(round))}` : sql`SELECT ${i}::bigint AS b`;
      default: return sql`SELECT ${new Date(Date.UTC(2020, 0, 1 + i))} AS d, ${null}::text AS n`;
    }
  });

  it('3 instances x 120 pipelined queries, twice, new and prepared, with failures, over 2 server connections', { timeout: 60_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      await adminQuery('TRUNCATE hpj_c_u');
      const sqls = [env.sql(), env.sql(), env.sql()];
      await Promise.all(sqls.map((s) => s`SELECT 1`));
      const out: unknown[] = [];
      for (let round = 0; round < 2; round++) out.push(await Promise.all(sqls.map((s, k) => settleAll(batch(s, k, round)))));
      out.push((await adminQuery('SELECT count(*)::int AS n FROM hpj_c_u')).rows);
      return out;
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });

  it('prepare: false, the same 120 queries', { timeout: 60_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      await adminQuery('TRUNCATE hpj_c_u');
      const sqls = [env.sql({ prepare: false }), env.sql({ prepare: false })];
      const out: unknown[] = [];
      for (let round = 0; round < 2; round++) out.push(await Promise.all(sqls.map((s, k) => settleAll(batch(s, k, round)))));
      return out;
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });
});

// --- transactions pipelined ----------------------------------------------------------------------

describe('sql.begin with Promise.all and savepoints', () => {
  it('pipelined queries in a transaction, a failing pipelined savepoint rolled back, the transaction goes on', { timeout: 40_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      await adminQuery('TRUNCATE hpj_c_tx');
      const sqls = [env.sql(), env.sql(), env.sql()];
      const results = await Promise.all(sqls.map(async (sql, k) => settle(sql.begin(async (tx) => {
        const a = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 3 === 0
          ? tx`INSERT INTO hpj_c_tx VALUES (${k * 1000 + i}, ${'a' + i}) RETURNING id`
          : tx`SELECT ${i}::int * ${k}::int AS v`)));
        const sp = await settle(tx.savepoint(async (s) => Promise.all([
          s`INSERT INTO hpj_c_tx VALUES (${k * 1000 + 500}, 'sp') RETURNING id`,
          s`SELECT set_config('hpj_c.x', 'in-sp', false)`,
          s`INSERT INTO hpj_c_tx VALUES (${k * 1000 + 3}, 'dup')`,
          s`SELECT ${'after'}::text AS t`,
        ])));
        const sp2 = await tx.savepoint((s) => [s`INSERT INTO hpj_c_tx VALUES (${k * 1000 + 600}, 'sp2') RETURNING id`, s`SELECT current_setting('hpj_c.x', true) AS x`]);
        const b = await Promise.all(Array.from({ length: 20 }, (_, i) => tx`SELECT count(*)::int AS n, ${i}::int AS i FROM hpj_c_tx WHERE id / 1000 = ${k}`));
        return [a.map(shape), sp, sp2.map(shape), b.map(shape)];
      }))));
      const after = await Promise.all(sqls.map((s) => s`SELECT current_setting('hpj_c.x', true) AS x, (SELECT count(*)::int FROM hpj_c_tx) AS n, txid_current_if_assigned() AS tx`));
      return [results, after.map(shape)];
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });

  it('a transaction whose Promise.all has failures (syntax, 22012, 23505, 22P02) rolls back; later work is clean', { timeout: 40_000 }, async () => {
    const failing = [
      (tx: Q) => tx`SELEC 1`,
      (tx: Q) => tx`SELECT 1 / ${0}::int`,
      (tx: Q) => tx`INSERT INTO hpj_c_tx VALUES (${1}, 'dup')`,
      (tx: Q) => tx`SELECT ${'zz'}::int`,
    ];
    const scenario = async (env: Env): Promise<unknown> => {
      await adminQuery('TRUNCATE hpj_c_tx');
      await adminQuery("INSERT INTO hpj_c_tx VALUES (1, 'one')");
      const sqls = [env.sql(), env.sql(), env.sql()];
      const out: unknown[] = [];
      for (const [f, fail] of failing.entries()) {
        out.push(await Promise.all(sqls.map((sql, k) => settle(sql.begin((tx) => Promise.all(Array.from({ length: 12 }, (_, i) => (i === 6
          ? fail(tx)
          : i % 2 ? tx`INSERT INTO hpj_c_tx VALUES (${100 + f * 100 + k * 20 + i}, 'x')` : tx`SELECT ${i}::int AS v`))))))));
        out.push(await Promise.all(sqls.map((s) => settle(s`SELECT count(*)::int AS n, txid_current_if_assigned() AS tx, ${f}::int AS f FROM hpj_c_tx`))));
      }
      return out;
    };
    const { d, g } = await compare(scenario, 20_000);
    expect(g).toEqual(d);
  });
});

// --- statement names rotating over server connections --------------------------------------------

describe('named statements over rotating server connections', () => {
  it('the same text with different parameter types, from several instances, each forced onto the other connection', { timeout: 40_000 }, async () => {
    const values: unknown[] = ['text', 42, 9007199254740993n, new Date(Date.UTC(2021, 1, 3)), Buffer.from([1, 2, 3]), true, [1, 2], null];
    const scenario = async (env: Env): Promise<unknown> => {
      const sqls = [env.sql(), env.sql(), env.sql({ prepare: false })];
      const out: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        for (const sql of sqls) {
          out.push(await env.elsewhere(sql, () => settleAll(values.map((v) => sql`SELECT ${v as string}::text AS v`))));
        }
      }
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('ALTER TABLE ADD COLUMN, then SELECT * again, pipelined, from instances on both connections', { timeout: 40_000 }, async () => {
    const scenario = async (env: Env, table: string): Promise<unknown> => {
      const sqls = [env.sql(), env.sql(), env.sql()];
      const q = (s: Q, i: number) => s`SELECT * FROM ${s(table)} WHERE a >= ${i % 2}::int ORDER BY a`;
      const out: unknown[] = [];
      out.push(await Promise.all(sqls.map((s) => settleAll(Array.from({ length: 10 }, (_, i) => q(s, i))))));
      await adminQuery(`ALTER TABLE ${table} ADD COLUMN b text DEFAULT 'bee'`);
      // One query alone first: a pipeline of several statements that all need postgres.js's retry
      // (0A000, RevalidateCachedQuery) hangs postgres.js 3.4.9 on a direct connection too.
      for (let round = 0; round < 2; round++) {
        if (round === 0) out.push(await Promise.all(sqls.map((s) => settle(q(s, 0)))));
        out.push(await Promise.all(sqls.map((s) => settleAll(Array.from({ length: 10 }, (_, i) => q(s, i))))));
        out.push(await env.elsewhere(sqls[0]!, () => settleAll(Array.from({ length: 5 }, (_, i) => q(sqls[0]!, i)))));
      }
      await adminQuery(`ALTER TABLE ${table} DROP COLUMN b`);
      return out;
    };
    const d = await within(15_000, 'direct', scenario(envFor(false), 'hpj_c_ddl_d'));
    const g = await within(15_000, 'gateway', scenario(envFor(true), 'hpj_c_ddl_g'));
    expect(g).toEqual(d);
  });

  it('ALTER COLUMN TYPE between runs, inside and outside transactions', { timeout: 40_000 }, async () => {
    const scenario = async (env: Env, table: string): Promise<unknown> => {
      const sqls = [env.sql(), env.sql()];
      const q = (s: Q) => s`SELECT a, s FROM ${s(table)} WHERE a > ${0}::int ORDER BY a`;
      const out: unknown[] = [];
      out.push(await Promise.all(sqls.map((s) => settle(q(s)))));
      await adminQuery(`ALTER TABLE ${table} ALTER COLUMN a TYPE bigint`);
      out.push(await Promise.all(sqls.map((s) => settle(q(s)))));
      out.push(await Promise.all(sqls.map((s) => settleAll([q(s), q(s), q(s)]))));
      await adminQuery(`ALTER TABLE ${table} ALTER COLUMN a TYPE int`);
      out.push(await Promise.all(sqls.map((s) => settle(s.begin(async (tx) => [shape(await q(tx)), shape(await q(tx))])))));
      out.push(await Promise.all(sqls.map((s) => settle(s.begin(async (tx) => [shape(await q(tx)), shape(await q(tx))])))));
      out.push(await Promise.all(sqls.map((s) => settle(q(s)))));
      return out;
    };
    const d = await within(15_000, 'direct', scenario(envFor(false), 'hpj_c_ddl2_d'));
    const g = await within(15_000, 'gateway', scenario(envFor(true), 'hpj_c_ddl2_g'));
    expect(g).toEqual(d);
  });
});

// --- unsafe, simple, describe, values, raw ---------------------------------------------------------

describe('unsafe, simple, describe, values, raw', () => {
  it('multi-statement unsafe (with and without parameters), .simple(), .describe(), .values(), .raw(), pipelined', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sqls = [env.sql(), env.sql()];
      return Promise.all(sqls.map(async (sql, k) => {
        const first = await settleAll([
          sql.unsafe(`SELECT 1 AS a; SELECT 2 AS b, ${k} AS k; SELECT 'x' AS c FROM generate_series(1, 3)`),
          sql.unsafe('SELECT $1::int AS a; SELECT 2 AS b', [k]),
          sql.unsafe("SELECT 1 AS a; SELECT 1/0; SELECT 'never' AS c"),
          sql.unsafe('SELECT $1::int + $2::int AS s', [k, 5]),
          sql.unsafe('SELECT $1::int + $2::int AS s', [k, 6], { prepare: true }),
          sql`SELECT ${k}::int AS a; SELECT 2`.simple().catch((e: Error) => { throw e; }),
          sql`SELECT 1 AS a, 'two' AS b`.simple(),
          sql`SELECT ${k}::int AS a, 'b' AS b`.values(),
          sql`SELECT ${k}::int AS a, 'b'::bytea AS b`.raw().then((r) => r.map((row) => row.map((c) => (c === null ? null : Buffer.from(c as Uint8Array).toString('hex'))))),
          sql.unsafe('SELECT 1 AS a; SELECT 2 AS b').values(),
          sql`SELECT ${k}::int AS a`,
        ]);
        // .describe() is awaited alone: pipelined with other queries it can hang postgres.js 3.4.9 on a direct connection.
        const described: unknown[] = [];
        for (const d of [
          () => sql`SELECT ${k}::int AS a, ${'t'}::text AS b, ${[1]}::int[] AS c`.describe(),
          () => sql`SELECT * FROM hpj_c_u WHERE id = ${1} AND v = ${'x'}`.describe(),
          () => sql`SELECT ${k}::int AS a`.describe(),
          () => sql`SELEC ${k}::int AS a`.describe(),
        ]) described.push(await settle(d().then((x) => ({ string: x.string, types: x.types, columns: x.columns.map((c) => [c.name, c.type]) }))));
        const second = await settleAll([
          sql`SELECT ${k}::int AS a`.values(),
          sql`SELECT ${k}::int AS a, ${'t'}::text AS b, ${[1]}::int[] AS c`,
          sql.unsafe("SET work_mem = '3MB'; SELECT current_setting('work_mem') AS wm; SELECT 1/0"),
          sql`SELECT current_setting('work_mem') AS wm`.simple(),
        ]);
        const moved = await env.elsewhere(sql, () => settleAll([sql`SELECT current_setting('work_mem') AS wm`, sql`SELECT ${k}::int AS a, ${'t'}::text AS b, ${[1]}::int[] AS c`]));
        return [first, described, second, moved];
      }));
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- cursors and forEach ---------------------------------------------------------------------------

describe('cursors and forEach', () => {
  it('three cursors open at once in a transaction, with other instances using the pool', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [sql, ...others] = [env.sql(), env.sql(), env.sql()];
      const churn = Promise.all(others.map(async (o, i) => {
        const got: unknown[] = [];
        for (let n = 0; n < 20; n++) got.push(shape(await o`SELECT ${n}::int + ${i}::int AS v`));
        return got;
      }));
      const inTx = await sql!.begin(async (tx) => {
        const read = async (size: number, upTo: number, stopAt?: number) => {
          const batches: number[] = [];
          let sum = 0;
          for await (const rows of tx`SELECT g FROM generate_series(1, ${upTo}::int) g`.cursor(size)) {
            batches.push(rows.length);
            sum += rows.reduce((s, r) => s + (r.g as number), 0);
            if (stopAt !== undefined && batches.length >= stopAt) break;
          }
          return { batches, sum };
        };
        const r = await Promise.all([read(7, 100), read(33, 1000, 5), read(50, 120)]);
        let n = 0;
        await tx`SELECT id FROM hpj_c_big WHERE id <= 1000`.cursor(100, (rows) => { n += rows.length; });
        const after = await tx`SELECT ${5}::int AS v, txid_current_if_assigned() AS tx`;
        return [r, n, shape(after)];
      });
      return [inTx, await churn];
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('.forEach streams 50k rows while pipelined queries wait behind it', { timeout: 40_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sql = env.sql();
      const other = env.sql();
      let n = 0;
      let sum = 0;
      const stream = sql`SELECT id, v FROM hpj_c_big WHERE id > ${0}::int ORDER BY id`.forEach((row) => {
        n++;
        sum += row.id as number;
      });
      const behind = settleAll(Array.from({ length: 10 }, (_, i) => sql`SELECT ${i}::int AS i`));
      const side = settleAll(Array.from({ length: 10 }, (_, i) => other`SELECT ${i}::int * 2 AS j`));
      const res = await stream;
      return { n, sum, count: res.count, command: res.command, behind: await behind, side: await side };
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });
});

// --- settings ----------------------------------------------------------------------------------------

describe('settings as postgres.js sends them', () => {
  const READ = (sql: Q) => sql`SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st,
    current_setting('search_path') AS sp, current_setting('work_mem') AS wm, current_setting('hpj_c.t', true) AS t, (SELECT a FROM hpj_c_t) AS a`;

  it('connection options (application_name, statement_timeout, search_path) with SET / set_config in and out of transactions', { timeout: 40_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sqls = [
        env.sql({ connection: { application_name: 'hpj-c-one', statement_timeout: 4000, search_path: 'hpj_c_s2, public' } }),
        env.sql({ connection: { application_name: 'hpj-c-two', work_mem: '5MB' } }),
        env.sql({ connection: { search_path: 'public' }, prepare: false }),
      ];
      const out: unknown[] = [];
      const readAll = async () => Promise.all(sqls.map((s) => env.elsewhere(s, async () => shape(await READ(s)))));
      out.push(await readAll());
      await Promise.all(sqls.map((s, k) => s`SELECT set_config('hpj_c.t', ${'t' + k}, false)`));
      out.push(await readAll());
      await Promise.all(sqls.map((s) => s`SET search_path = hpj_c_s2`));
      out.push(await readAll());
      await Promise.all(sqls.map((s) => s.begin(async (tx) => {
        await tx`SET work_mem = '7MB'`;
        await tx`SET LOCAL statement_timeout = '1s'`;
        await tx`SELECT set_config('application_name', 'in-tx', false)`;
      })));
      out.push(await readAll());
      await Promise.all(sqls.map((s) => settle(s.begin(async (tx) => {
        await tx`SET search_path = public`;
        await tx`SELECT 1 / 0`;
      }))));
      out.push(await readAll());
      await Promise.all(sqls.map((s) => s`RESET search_path`));
      out.push(await readAll());
      await Promise.all(sqls.map((s) => s`RESET ALL`));
      out.push(await readAll());
      return out;
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });

  it('search_path changed between pipelined prepared queries on tables of the same name', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sqls = [env.sql(), env.sql()];
      return Promise.all(sqls.map(async (sql) => {
        const q = () => sql`SELECT a, ${1}::int AS one FROM hpj_c_t`;
        const out: unknown[] = [await settleAll([q(), q()])];
        out.push(await settleAll([sql`SET search_path = hpj_c_s2, public`, q(), q(), sql`SELECT current_setting('search_path') AS sp`]));
        out.push(await env.elsewhere(sql, () => settleAll([q(), sql`SET search_path = public`, q()])));
        out.push(await settleAll([sql`SELECT set_config('search_path', 'hpj_c_s2', false)`, q(), sql`RESET search_path`, q()]));
        return out;
      }));
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

// --- cancel and end ----------------------------------------------------------------------------------

describe('cancel and end with pipelined work', () => {
  it('query.cancel() of a running query with prepared queries pipelined behind it', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sql = env.sql();
      await sql`SELECT ${1}::int AS i`;
      const long = sql`SELECT pg_sleep(20), ${1}::int AS hpj_c_long`;
      const longDone = settle(long);
      const behind = settleAll(Array.from({ length: 10 }, (_, i) => sql`SELECT ${i}::int AS i`));
      await waitFor('the long query to run', async () => (await adminQuery(
        "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%AS hpj_c_long' AND usename = 'app'")).rowCount === 1);
      await long.cancel();
      const r = [await longDone, await behind, await settle(sql`SELECT 2 AS two`)];
      return r;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('sql.end({ timeout }) with pipelined queries and a transaction in flight', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env, tag: string): Promise<unknown> => {
      await adminQuery('DELETE FROM hpj_c_end WHERE tag = $1', [tag]);
      const sql = env.sql({ max: 2 });
      await sql`SELECT 1`;
      const qs = Array.from({ length: 50 }, (_, i) => (i % 10 === 5
        ? sql`INSERT INTO hpj_c_end VALUES (${i}, ${tag})`
        : sql`SELECT ${i}::int AS v`));
      const tx = sql.begin((t) => Array.from({ length: 10 }, (_, i) => t`INSERT INTO hpj_c_end VALUES (${100 + i}, ${tag}) RETURNING id`));
      // end once the first answer is in: everything before it has been written
      const ended = qs[0]!.then(() => sql.end({ timeout: 10 }));
      const r = await settleAll([...qs, tx]);
      await ended;
      const after = await settle(sql`SELECT 1`);
      const rows = (await adminQuery('SELECT count(*)::int AS n FROM hpj_c_end WHERE tag = $1', [tag])).rows;
      return [r, (after as { err?: string }).err, rows];
    };
    const d = await within(15_000, 'direct', scenario(envFor(false), 'd'));
    const g = await within(15_000, 'gateway', scenario(envFor(true), 'g'));
    expect(g).toEqual(d);
  });
});

// --- batch 2 -------------------------------------------------------------------------------------------

describe('transaction control written by the client', () => {
  it('BEGIN / ROLLBACK through unsafe, pipelined with prepared statements and an error in between', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      await adminQuery('TRUNCATE hpj_c_tx');
      const sqls = [env.sql(), env.sql(), env.sql()];
      const out: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        out.push(await Promise.all(sqls.map((sql, k) => settleAll([
          sql.unsafe('BEGIN'),
          sql`INSERT INTO hpj_c_tx VALUES (${k * 100 + round}, ${'r' + round}) RETURNING id`,
          sql`SELECT ${round}::int AS r, txid_current_if_assigned() IS NOT NULL AS intx`,
          round === 1 ? sql`SELECT 1 / ${0}::int` : sql`SELECT ${k}::int AS k`,
          sql`SELECT ${round}::int AS r, txid_current_if_assigned() IS NOT NULL AS intx`,
          sql.unsafe(round === 2 ? 'ROLLBACK' : 'COMMIT'),
          sql`SELECT count(*)::int AS n FROM hpj_c_tx WHERE id / 100 = ${k}`,
        ]))));
        out.push(await Promise.all(sqls.map((sql) => env.elsewhere(sql, () => settle(sql`SELECT txid_current_if_assigned() AS tx, count(*)::int AS n FROM hpj_c_tx`)))));
      }
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('errors caught inside sql.begin, then new and prepared statements in the aborted transaction, then on the other connection', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [a, b] = [env.sql(), env.sql()];
      await b`SELECT ${1}::int AS prepared_by_b, ${'x'}::text AS t`;
      const out: unknown[] = [];
      for (let round = 0; round < 2; round++) {
        out.push(await settle(a.begin(async (tx) => {
          const r: unknown[] = [await settle(tx`SELECT 1 / ${0}::int`)];
          r.push(await settle(tx`SELECT ${1}::int AS prepared_by_b, ${'x'}::text AS t`));
          r.push(await settle(tx`SELECT ${round}::int AS brand_new_${a.unsafe(String(round))}`));
          r.push(await settle(tx`SELECT 1 / ${0}::int`));
          return r;
        })));
        out.push(await env.elsewhere(a, () => settleAll([a`SELECT ${1}::int AS prepared_by_b, ${'x'}::text AS t`, a`SELECT 1 / ${1}::int AS v`, a`SELECT ${round}::int AS brand_new_${a.unsafe(String(round))}`])));
        out.push(await settleAll([b`SELECT ${2}::int AS prepared_by_b, ${'y'}::text AS t`, b`SELECT 1 / ${1}::int AS v`]));
      }
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('sql.begin options (isolation level, read only) and savepoints with names, pipelined', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sqls = [env.sql(), env.sql()];
      return Promise.all(sqls.map(async (sql, k) => [
        await settle(sql.begin('isolation level repeatable read read only', (tx) => [
          tx`SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro`,
          tx`INSERT INTO hpj_c_tx VALUES (${9000 + k}, 'ro')`,
        ])),
        await settle(sql.begin('read write', async (tx) => {
          const s1 = await settle(tx.savepoint('first', (sp) => [sp`SELECT ${k}::int AS k`, sp`SELECT 1 / ${0}::int`]));
          const s2 = await tx.savepoint('second', (sp) => [sp`SELECT current_setting('transaction_read_only') AS ro`, sp`SELECT ${k}::int AS k`]);
          return [s1, s2.map(shape)];
        })),
        await settle(sql`SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro`),
      ]));
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

describe('cursors and streams that fail', () => {
  it('a cursor outside a transaction that hits an error after some batches, with other instances running', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [sql, ...others] = [env.sql(), env.sql(), env.sql()];
      const churn = Promise.all(others.map(async (o, i) => {
        const got: unknown[] = [];
        for (let n = 0; n < 15; n++) got.push(await settle(o`SELECT ${n}::int + ${i}::int AS v`));
        return got;
      }));
      const out: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        const batches: number[] = [];
        out.push(await settle((async () => {
          for await (const rows of sql!`SELECT 100 / (g - ${55 + round}) AS v FROM generate_series(1, 100) g`.cursor(10)) batches.push(rows.length);
          return 'done';
        })()));
        out.push(batches);
        out.push(await settleAll([sql!`SELECT ${round}::int AS r, txid_current_if_assigned() AS tx`, sql!`SELECT 2 AS two`]));
      }
      let n = 0;
      out.push(await settle(sql!`SELECT 100 / (g - 30000) AS v FROM generate_series(1, 40000) g`.forEach(() => { n++; })));
      out.push(n);
      out.push(await settle(sql!`SELECT ${'after'}::text AS t`));
      return [out, await churn];
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('a cursor in a transaction that fails, caught, then the transaction and a savepoint', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const sql = env.sql();
      const r = await settle(sql.begin(async (tx) => {
        const inner = await settle(tx.savepoint(async (sp) => {
          let seen = 0;
          await sp`SELECT 100 / (g - 25) AS v FROM generate_series(1, 50) g`.cursor(5, (rows) => { seen += rows.length; });
          return seen;
        }));
        const batches: number[] = [];
        for await (const rows of tx`SELECT g FROM generate_series(1, ${30}::int) g`.cursor(8)) batches.push(rows.length);
        return [inner, batches, shape(await tx`SELECT ${1}::int AS ok`)];
      }));
      return [r, await settle(sql`SELECT txid_current_if_assigned() AS tx`)];
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

describe('notices and ParameterStatus as postgres.js keeps them', () => {
  it('onnotice with client_min_messages set by the client, on either connection', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const notices: string[] = [];
      const sql = env.sql({ onnotice: (n) => notices.push(`${n.severity}:${n.message}`) });
      const raise = (tag: string) => sql.unsafe(`DO $$BEGIN RAISE NOTICE 'n-${tag}'; RAISE WARNING 'w-${tag}'; END$$`);
      const marks: number[] = [];
      await raise('1');
      marks.push(notices.length);
      await sql`SET client_min_messages = warning`;
      await env.elsewhere(sql, () => raise('2'));
      marks.push(notices.length);
      await sql.begin(async (tx) => { await tx`SET client_min_messages = notice`; await tx`SELECT 1/0`; }).catch(() => undefined);
      await env.elsewhere(sql, () => raise('3'));
      marks.push(notices.length);
      await sql`RESET client_min_messages`;
      await env.elsewhere(sql, () => raise('4'));
      return { notices, marks };
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });

  it('sql.parameters and onparameter after SET, and rolled-back SETs, on either connection', { timeout: 30_000 }, async () => {
    const KEYS = ['application_name', 'TimeZone', 'DateStyle', 'IntervalStyle', 'search_path', 'default_transaction_read_only', 'standard_conforming_strings', 'client_encoding'];
    const scenario = async (env: Env): Promise<unknown> => {
      const changes: string[] = [];
      const sql = env.sql({ connection: { application_name: 'hpj-c-ps', TimeZone: 'UTC' }, onparameter: (k, v) => { if (KEYS.includes(k)) changes.push(`${k}=${v}`); } });
      const snap = () => Object.fromEntries(KEYS.map((k) => [k, (sql.parameters as Record<string, string>)[k]]));
      const out: unknown[] = [];
      await sql`SELECT 1`;
      out.push(snap());
      await sql`SET application_name = 'hpj-c-two'`;
      await sql`SET TimeZone = 'Asia/Tokyo'`;
      out.push(await env.elsewhere(sql, async () => [snap(), shape(await sql`SELECT current_setting('TimeZone') AS tz, current_setting('application_name') AS app`)]));
      await sql.begin(async (tx) => { await tx`SET application_name = 'rolled-back'`; await tx`SET IntervalStyle = 'iso_8601'`; throw new Error('no'); }).catch(() => undefined);
      out.push(await env.elsewhere(sql, async () => [snap(), shape(await sql`SELECT current_setting('IntervalStyle') AS iv, current_setting('application_name') AS app`)]));
      await sql`SET application_name = 'hpj-c-ps'`;
      await sql`SET TimeZone = 'UTC'`;
      out.push(await env.elsewhere(sql, async () => [snap(), shape(await sql`SELECT current_setting('TimeZone') AS tz, current_setting('application_name') AS app`)]));
      return { out, changes };
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

describe('big messages and many parameters', () => {
  it('pipelined queries with 2 MB parameters, a 1 MB statement text and 20,000 parameters, from instances sharing the pool', { timeout: 40_000 }, async () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    const longText = `SELECT length('${'y'.repeat(1024 * 1024)}') AS n, $1::int AS k`;
    const rows = Array.from({ length: 5000 }, (_, i) => ({ id: 100_000 + i, v: `v${i}`, a: i, b: i % 7 }));
    const scenario = async (env: Env): Promise<unknown> => {
      await adminQuery('TRUNCATE hpj_c_u');
      const sqls = [env.sql(), env.sql(), env.sql()];
      return Promise.all(sqls.map(async (sql, k) => {
        const first = await settleAll([
          sql`SELECT length(${big}::text) AS n, ${k}::int AS k`,
          sql`SELECT ${k}::int AS small`,
          sql.unsafe(longText, [k], { prepare: true }),
          sql`SELECT md5(${big + k}::text) AS h`,
          sql.unsafe(longText, [k + 1], { prepare: true }),
          sql`SELECT 1 / ${0}::int`,
          sql`SELECT length(${big}::bytea) AS n`,
        ]);
        const many = k === 0
          ? await settle(sql`INSERT INTO hpj_c_u ${sql(rows.map((r) => ({ id: r.id, v: r.v })), 'id', 'v')} RETURNING id`.then((r) => r.length))
          : await settle(sql`SELECT count(*)::int AS n FROM (VALUES ${sql(rows.map((r) => [r.a, r.b, r.v, r.id]))}) AS t(a, b, v, id)`);
        return [first, many];
      }));
    };
    const { d, g } = await compare(scenario, 25_000);
    expect(g).toEqual(d);
  });
});

describe('statements forgotten by the server', () => {
  it('DEALLOCATE ALL and DISCARD ALL through unsafe, then prepared statements again (postgres.js retries 26000)', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [sql, other] = [env.sql(), env.sql()];
      const q = (s: Q, v: number) => s`SELECT ${v}::int * 2 AS v, current_setting('work_mem') AS wm`;
      const out: unknown[] = [await settleAll([q(sql, 1), q(other, 1)])];
      await sql`SET work_mem = '6MB'`;
      for (const how of ['DEALLOCATE ALL', 'DISCARD ALL']) {
        out.push(await settle(sql.unsafe(how)));
        out.push(await settle(q(sql, 2)));
        out.push(await settleAll([q(sql, 3), q(sql, 4), q(other, 5)]));
        out.push(await env.elsewhere(sql, () => settleAll([q(sql, 6), q(sql, 7)])));
        await sql`SET work_mem = '7MB'`;
      }
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

describe('connection options', () => {
  it('statement_timeout from connection, target_session_attrs, options with -c', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const out: unknown[] = [];
      const t = env.sql({ connection: { statement_timeout: 150 } });
      for (let i = 0; i < 2; i++) out.push(await env.elsewhere(t, () => settleAll([t`SELECT pg_sleep(2)`, t`SELECT current_setting('statement_timeout') AS st`])));
      for (const tsa of ['read-write', 'primary'] as const) {
        const s = env.sql({ target_session_attrs: tsa });
        out.push(await settle(s`SELECT ${tsa}::text AS tsa, pg_is_in_recovery() AS rec`));
      }
      const o = env.sql({ connection: { options: '-c work_mem=9MB -c search_path=hpj_c_s2,public' } });
      out.push(await env.elsewhere(o, () => settle(o`SELECT current_setting('work_mem') AS wm, current_setting('search_path') AS sp, (SELECT a FROM hpj_c_t) AS a`)));
      return out;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});

describe('cancel of a query still queued behind another', () => {
  it('query.cancel() of a pipelined query not yet running: postgres.js cancels it once it starts', { timeout: 30_000 }, async () => {
    const scenario = async (env: Env): Promise<unknown> => {
      const [sql, o1, o2] = [env.sql(), env.sql(), env.sql()];
      await sql`SELECT ${1}::int AS i`;
      const first = settle(sql`SELECT pg_sleep(0.5), ${1}::int AS hpj_c_first`);
      const target = sql`SELECT pg_sleep(20), ${2}::int AS hpj_c_target`;
      const targetDone = settle(target);
      const behind = settleAll(Array.from({ length: 5 }, (_, i) => sql`SELECT ${i}::int AS i`));
      const others = Promise.all([o1, o2].map((o, k) => settleAll(Array.from({ length: 5 }, (_, i) => o`SELECT ${i}::int + ${k}::int AS v`))));
      // Whether the first query or the target is running when cancel() is called, the target is the one stopped.
      await waitFor('the pipeline to run', async () => (await adminQuery(
        "SELECT 1 FROM pg_stat_activity WHERE (query LIKE '%AS hpj_c_first' OR query LIKE '%AS hpj_c_target') AND usename = 'app' AND state = 'active'")).rowCount === 1);
      const cancelled = target.cancel();
      const r = [await first, await targetDone, await behind, await others, await settle(sql`SELECT 2 AS two`)];
      await cancelled;
      return r;
    };
    const { d, g } = await compare(scenario);
    expect(g).toEqual(d);
  });
});
