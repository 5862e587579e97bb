// Prepared statements across DDL in transaction mode, compared with what the same byte sequences get
// from PostgreSQL directly. A connection that prepares a shared statement afresh after DDL gets the
// new plan without an error, so pgway describes each statement it prepares and refuses a client
// whose statement returned something else when it prepared it (0A000) at each run, as PostgreSQL
// does, until the tables have the shape it was prepared with again; and it
// must not refuse where PostgreSQL would not (a statement prepared after the DDL, a temp table that
// shadows a table on one connection, utility statements), nor hang a request it holds for the
// description. `single` has one connection with room for two statements, so another client's two
// push a statement out (evict); `pair` has two connections.
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { cancelRequestPacket, RawClient } from './helpers/raw-client.js';
import { rawAfterLogin, P, B, E, C, D, S, H, Q, X, answers, copyData, COPY_DONE } from './helpers/wire-script.js';
import { sleep } from './helpers/pg-helpers.js';
import { startHoldingProxy, type HoldingProxy } from './helpers/holding-proxy.js';

let single: TestGateway; // pool of 1, max_prepared_statements: 2
let pair: TestGateway; // pool of 2

beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 2, query_wait_timeout_ms: 4000 }' });
  pair = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});

afterAll(async () => {
  await single?.stop();
  await pair?.stop();
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.race([Promise.resolve(c()).catch(() => undefined), sleep(2000)]);
});

type Target = TestGateway | 'direct';
const urlOf = (t: Target): string => (t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : t.url());
const raw = (t: Target): Promise<RawClient> => rawAfterLogin(urlOf(t), (end) => cleanups.push(end));

async function table(name: string, ddl: string): Promise<void> {
  await adminQuery(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} ${ddl}; GRANT ALL ON ${name} TO app`);
  cleanups.push(() => adminQuery(`DROP TABLE IF EXISTS ${name}`));
}

/** Fills `single`'s one connection with two other statements, so the client's next Bind needs its statement prepared again. */
async function evict(t: Target): Promise<void> {
  if (t === 'direct') return;
  const other = await raw(t);
  other.write(Buffer.concat([P('pe_e1', 'SELECT 1 AS e1'), P('pe_e2', 'SELECT 2 AS e2'), S]));
  await answers(other);
}

/**
 * Schemas `${s}_${x}` and `${s}_${y}`, each with a table t of another shape: (a int) = 1 in the
 * first, (a, b) = (2, 'x') or ('y', 'z') in the second.
 */
async function twoSchemas(s: string, x: string, y: string, second = "(a int, b text); INSERT INTO %.t VALUES (2, 'x')"): Promise<void> {
  const [sx, sy] = [`${s}_${x}`, `${s}_${y}`];
  await adminQuery(`DROP SCHEMA IF EXISTS ${sx} CASCADE; DROP SCHEMA IF EXISTS ${sy} CASCADE; CREATE SCHEMA ${sx}; CREATE SCHEMA ${sy};
    CREATE TABLE ${sx}.t (a int); INSERT INTO ${sx}.t VALUES (1); CREATE TABLE ${sy}.t ${second.replace('%', sy)};
    GRANT USAGE ON SCHEMA ${sx}, ${sy} TO app; GRANT ALL ON ${sx}.t, ${sy}.t TO app`);
  cleanups.push(() => adminQuery(`DROP SCHEMA IF EXISTS ${sx} CASCADE; DROP SCHEMA IF EXISTS ${sy} CASCADE`));
}

/** A client inside a transaction: it holds one of the pool's connections until `release`. */
async function holdOne(t: Target): Promise<RawClient> {
  const h = await raw(t);
  h.write(Q('BEGIN'));
  await answers(h);
  return h;
}

async function release(h: RawClient): Promise<void> {
  h.write(Q('COMMIT'));
  await answers(h);
}

/** Runs `run` directly and through `target`; expects the same answers, and returns them. */
async function sameAsDirect<T>(run: (t: Target, suffix: string) => Promise<T>, target: TestGateway = single): Promise<T> {
  const direct = await run('direct', 'd');
  expect(await run(target, 'p')).toEqual(direct);
  return direct;
}

// --- refused as PostgreSQL refuses it -----------------------------------------------------------

/**
 * Client a prepares `sql` (on `table`: a int, one row of 1), another client pushes it out of
 * `single`'s connection, `ddl` runs, then `next` sends a's (or another client's) next messages.
 * Returns what a's Parse and `next` got.
 */
async function preparedBeforeDdl(
  target: Target, tbl: string, sql: string, ddl: string, next: (a: RawClient) => Promise<string[]>,
): Promise<string[][]> {
  await table(tbl, `(a int); INSERT INTO ${tbl} VALUES (1)`);
  const a = await raw(target);
  a.write(Buffer.concat([P('pe_old', sql), S]));
  const got = [await answers(a)];
  await evict(target);
  await adminQuery(ddl);
  got.push(await next(a));
  return got;
}

const bindOld = async (a: RawClient): Promise<string[]> => {
  a.write(Buffer.concat([B('pe_old'), E(), S]));
  return answers(a);
};

describe('a statement prepared before DDL, on a connection that prepares it afresh after', () => {
  it('is refused with 0A000, as PostgreSQL refuses it, not answered with rows of the new shape', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_fresh_${x}`, `SELECT * FROM pe_fresh_${x}`, `ALTER TABLE pe_fresh_${x} ADD COLUMN b int DEFAULT 7`, bindOld));
    expect(direct[1]).toEqual(['E:0A000', 'Z:I']);
  });

  it('is refused when another client prepared the same SQL since, on that connection', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_again_${x}`, `SELECT * FROM pe_again_${x}`, `ALTER TABLE pe_again_${x} ADD COLUMN b int DEFAULT 7`, async (a) => {
      const other = await raw(t);
      other.write(Buffer.concat([P('pe_new', `SELECT * FROM pe_again_${x}`), B('pe_new'), E(), S]));
      return [...await answers(other), ...await bindOld(a)];
    }));
    expect(direct[1]).toEqual(['1', '2', 'D:1,7', 'C:SELECT 1', 'Z:I', 'E:0A000', 'Z:I']);
  });

  // The client's own Parse of the same SQL under a new name prepares a fresh copy; the Bind of its
  // old name behind it must wait for that copy's description.
  it('is refused behind the client\'s own Parse of the same SQL under a new name, in one pipeline', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_nn_${x}`, `SELECT * FROM pe_nn_${x}`, `ALTER TABLE pe_nn_${x} ADD COLUMN b int DEFAULT 7`, async (a) => {
      a.write(Buffer.concat([P('pe_new', `SELECT * FROM pe_nn_${x}`), B('pe_old'), E(), S]));
      return answers(a);
    }));
    expect(direct[1]).toEqual(['1', 'E:0A000', 'Z:I']);
  });

  // Both statements are prepared again, each waiting for its description: the one DDL changed is
  // refused, the others run.
  it('is refused in a pipeline where another statement prepared again with it runs', async () => {
    const run = async (t: Target, x: string): Promise<string[][]> => {
      await table(`pe_pl_${x}`, `(a int); INSERT INTO pe_pl_${x} VALUES (1)`);
      const a = await raw(t);
      a.write(Buffer.concat([P('pe_ok', 'SELECT 41 + 1 AS ok'), P('pe_old', `SELECT * FROM pe_pl_${x}`), S]));
      const got = [await answers(a)];
      await evict(t);
      await adminQuery(`ALTER TABLE pe_pl_${x} ADD COLUMN b int DEFAULT 7`);
      a.write(Buffer.concat([B('pe_ok'), E(), S, B('pe_old'), E(), S, B('pe_ok'), E(), S]));
      got.push(await answers(a, 3));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct[1]).toEqual(['2', 'D:42', 'C:SELECT 1', 'Z:I', 'E:0A000', 'Z:I', '2', 'D:42', 'C:SELECT 1', 'Z:I']);
  });

  // Each statement is prepared again where the client's message needs it, never ahead of an
  // earlier request, whose answer a failing Parse would take.
  it('a later statement whose table was dropped does not fail the request before it', async () => {
    const run = async (t: Target, x: string): Promise<string[][]> => {
      await table(`pe_rd_${x}`, `(a int); INSERT INTO pe_rd_${x} VALUES (1)`);
      const a = await raw(t);
      a.write(Buffer.concat([P('pe_ok', 'SELECT 41 + 1 AS ok'), P('pe_old', `SELECT * FROM pe_rd_${x}`), S]));
      const got = [await answers(a)];
      await evict(t);
      await adminQuery(`DROP TABLE pe_rd_${x}`);
      a.write(Buffer.concat([B('pe_ok'), E(), S, B('pe_old'), E(), S]));
      got.push(await answers(a, 2));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct[1]).toEqual(['2', 'D:42', 'C:SELECT 1', 'Z:I', 'E:42P01', 'Z:I']);
  });

  it('an INSERT ... RETURNING refused that way inserts nothing', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_ins_${x}`, `INSERT INTO pe_ins_${x} VALUES (2) RETURNING *`, `ALTER TABLE pe_ins_${x} ADD COLUMN b int DEFAULT 7`, bindOld));
    expect(direct[1]).toEqual(['E:0A000', 'Z:I']);
    expect((await adminQuery('SELECT a FROM pe_ins_p ORDER BY a')).rows).toEqual([{ a: 1 }]);
  });

  it('is refused at each run, and the client that prepares it again gets the new shape', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_after_${x}`, `SELECT * FROM pe_after_${x}`, `ALTER TABLE pe_after_${x} ADD COLUMN b int DEFAULT 7`, async (a) => {
      const refused = [...await bindOld(a), ...await bindOld(a)];
      a.write(Buffer.concat([C('S', 'pe_old'), P('pe_old', `SELECT * FROM pe_after_${x}`), B('pe_old'), E(), S]));
      return [...refused, ...await answers(a)];
    }));
    expect(direct[1]).toEqual(['E:0A000', 'Z:I', 'E:0A000', 'Z:I', '3', '1', '2', 'D:1,7', 'C:SELECT 1', 'Z:I']);
  });

  // No eviction: the first run after the DDL meets the old plan on the server, the later ones a fresh copy.
  it('an INSERT ... RETURNING the server refused is refused at each run after, and inserts nothing', async () => {
    const run = async (t: Target, x: string): Promise<string[][]> => {
      await table(`pe_rep_${x}`, '(a int)');
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('pe_ins', `INSERT INTO pe_rep_${x} VALUES ($1) RETURNING *`), B('pe_ins', ['1']), E(), S]));
      got.push(await answers(a));
      await adminQuery(`ALTER TABLE pe_rep_${x} ADD COLUMN b int DEFAULT 5`);
      for (const v of ['2', '3', '4']) {
        a.write(Buffer.concat([B('pe_ins', [v]), E(), S]));
        got.push(await answers(a));
      }
      a.write(Q(`SELECT count(*) FROM pe_rep_${x}`));
      got.push(await answers(a));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct.slice(1)).toEqual([['E:0A000', 'Z:I'], ['E:0A000', 'Z:I'], ['E:0A000', 'Z:I'], ['T', 'D:1', 'C:SELECT 1', 'Z:I']]);
  });

  // PostgreSQL compares the statement with what it returned when prepared, not with what it returned last.
  it('runs again, inside a transaction block, once DDL gives the table back the shape it was prepared with', async () => {
    const run = async (t: Target, x: string): Promise<string[][]> => {
      await table(`pe_rev_${x}`, `(a int); INSERT INTO pe_rev_${x} VALUES (1)`);
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('pe_st', `SELECT * FROM pe_rev_${x}`), B('pe_st'), E(), S]));
      got.push(await answers(a));
      await adminQuery(`ALTER TABLE pe_rev_${x} ADD COLUMN c int DEFAULT 3`);
      for (let i = 0; i < 2; i++) {
        a.write(Buffer.concat([B('pe_st'), E(), S]));
        got.push(await answers(a));
      }
      await adminQuery(`ALTER TABLE pe_rev_${x} DROP COLUMN c`);
      a.write(Buffer.concat([Q('BEGIN'), B('pe_st'), E(), S, Q('COMMIT')]));
      got.push(await answers(a, 3));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct.slice(1)).toEqual([
      ['E:0A000', 'Z:I'], ['E:0A000', 'Z:I'],
      ['C:BEGIN', 'Z:T', '2', 'D:1', 'C:SELECT 1', 'Z:T', 'C:COMMIT', 'Z:I'],
    ]);
  });

  // b's Parse is answered by pgway (the connection holds a's copy), so b's shape is taken from that
  // copy; once it has run, it is what b prepared, and b is refused at each run after the DDL too.
  it('is refused at each run for a client whose Parse pgway answered itself', async () => {
    const run = async (t: Target, x: string): Promise<string[][]> => {
      await table(`pe_syn_${x}`, `(a int); INSERT INTO pe_syn_${x} VALUES (1)`);
      const [a, b] = [await raw(t), await raw(t)];
      a.write(Buffer.concat([P('pe_a', `SELECT * FROM pe_syn_${x}`), B('pe_a'), E(), S]));
      const got = [await answers(a)];
      b.write(Buffer.concat([P('pe_b', `SELECT * FROM pe_syn_${x}`), S]));
      got.push(await answers(b));
      b.write(Buffer.concat([B('pe_b'), E(), S]));
      got.push(await answers(b));
      await adminQuery(`ALTER TABLE pe_syn_${x} ADD COLUMN c int DEFAULT 3`);
      for (let i = 0; i < 3; i++) {
        b.write(Buffer.concat([B('pe_b'), E(), S]));
        got.push(await answers(b));
      }
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct.slice(3)).toEqual([['E:0A000', 'Z:I'], ['E:0A000', 'Z:I'], ['E:0A000', 'Z:I']]);
  });

  it('a Describe of it is refused with 0A000, as PostgreSQL refuses it', async () => {
    const describe = (t: Target, x: string): Promise<string[][]> => preparedBeforeDdl(t, `pe_desc_${x}`, `SELECT * FROM pe_desc_${x}`, `ALTER TABLE pe_desc_${x} ADD COLUMN b int`, async (a) => {
      a.write(Buffer.concat([D('S', 'pe_old'), S]));
      return answers(a);
    });
    const direct = await describe('direct', 'd');
    expect(direct[1]).toEqual(['t', 'E:0A000', 'Z:I']);
    // PostgreSQL describes the parameters before it finds the plan stale; pgway refuses at once.
    expect(await describe(single, 'p')).toEqual([direct[0], ['E:0A000', 'Z:I']]);
  });

  it('whose table was dropped fails as PostgreSQL fails it, and the client goes on', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_drop_${x}`, `SELECT * FROM pe_drop_${x}`, `DROP TABLE pe_drop_${x}`, async (a) => {
      a.write(Buffer.concat([B('pe_old'), E(), S, Q('SELECT 5')]));
      return answers(a, 2);
    }));
    expect(direct[1]).toEqual(['E:42P01', 'Z:I', 'T', 'D:5', 'C:SELECT 1', 'Z:I']);
  });
});

describe('a statement prepared again on a full connection, behind an error in the same pipeline', () => {
  // The server skips everything up to the Sync: pgway must neither prepare nor evict (an eviction
  // the server skips is taken back, so evicting for a Parse it skips never ends).
  it('gets the error PostgreSQL gives, and the client goes on', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('pe_a', 'SELECT 1 AS a'), P('pe_b', 'SELECT 2 AS b'), P('pe_c', 'SELECT 3 AS c'), S]));
      got.push(await answers(a));
      a.write(Buffer.concat([P('', 'SELECT 1/0'), B(''), E(), B('pe_a'), E(), S]));
      got.push(await answers(a));
      a.write(Buffer.concat([Q('SELECT 42')]));
      got.push(await answers(a));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct[1]).toEqual(['1', 'E:22012', 'Z:I']);
  });
});

describe('no 0A000 where PostgreSQL has none', () => {
  // libpq's PQprepare (Parse, Sync) after DDL, answered by pgway itself because a connection holds
  // the statement: it is prepared after the DDL, so it takes the new shape with no error.
  it('a statement prepared after DDL, whose Parse pgway answered itself', async () => {
    const run = async (t: Target, tbl: string): Promise<string[][]> => {
      await table(tbl, '(a int); INSERT INTO ' + tbl + ' VALUES (1)');
      const got: string[][] = [];
      const h1 = await holdOne(t); // h1 holds one connection
      const a = await raw(t);
      a.write(Buffer.concat([P('pe_s', `SELECT * FROM ${tbl}`), S]));
      got.push(await answers(a)); // on the other connection, which keeps the statement
      await adminQuery(`ALTER TABLE ${tbl} ADD COLUMN b int DEFAULT 7`);
      const h2 = await holdOne(t); // h2 holds the connection that has pe_s
      await release(h1); // the connection without pe_s is free
      const b = await raw(t);
      b.write(Buffer.concat([P('pe_s2', `SELECT * FROM ${tbl}`), S]));
      got.push(await answers(b)); // prepared after the DDL
      b.write(Buffer.concat([B('pe_s2'), E(), S]));
      got.push(await answers(b));
      await release(h2);
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_loc_${x}`), pair);
    expect(direct[2]).toEqual(['2', 'D:1,7', 'C:SELECT 1', 'Z:I']);
  });

  // The client's Parse comes after the DDL but is answered by pgway from a copy described before
  // it, whose plan the server then finds stale: pgway cannot tell this client from one that
  // prepared before the DDL, so it hears that one error (README), and is not refused after it.
  it('a statement prepared after DDL, whose Parse pgway answered from a copy with the old plan', async () => {
    const run = async (t: Target, x: string): Promise<string[][]> => {
      await table(`pe_gs_${x}`, `(a int); INSERT INTO pe_gs_${x} VALUES (1)`);
      const a = await raw(t);
      a.write(Buffer.concat([P('pe_a', `SELECT * FROM pe_gs_${x}`), B('pe_a'), E(), S]));
      await answers(a);
      await adminQuery(`ALTER TABLE pe_gs_${x} ADD COLUMN c int DEFAULT 3`);
      const c = await raw(t);
      c.write(Buffer.concat([P('pe_c', `SELECT * FROM pe_gs_${x}`), S]));
      const got = [await answers(c)];
      for (let i = 0; i < 3; i++) {
        c.write(Buffer.concat([B('pe_c'), E(), S]));
        got.push(await answers(c));
      }
      return got;
    };
    const direct = await run('direct', 'd');
    expect(direct.slice(1)).toEqual(Array(3).fill(['2', 'D:1,3', 'C:SELECT 1', 'Z:I']));
    const viaGw = await run(single, 'p');
    expect(viaGw.slice(0, 2)).toEqual([direct[0], ['E:0A000', 'Z:I']]);
    expect(viaGw.slice(2)).toEqual(direct.slice(2));
  });

  // PostgreSQL keeps the parameter types a statement was prepared with; a fresh copy infers bigint.
  // A value sent as text reads the same for either.
  it('DDL that changes only the type PostgreSQL infers for a parameter, with values sent as text', async () => {
    const direct = await sameAsDirect((t, x) => preparedBeforeDdl(t, `pe_param_${x}`, `UPDATE pe_param_${x} SET a = a + 1 WHERE a >= $1`,
      `ALTER TABLE pe_param_${x} ALTER COLUMN a TYPE bigint`, async (a) => {
        a.write(Buffer.concat([B('pe_old', ['1']), E(), S, B('pe_old', ['2']), E(), S]));
        return answers(a, 2);
      }));
    expect(direct[1]).toEqual(['2', 'C:UPDATE 1', 'Z:I', '2', 'C:UPDATE 1', 'Z:I']);
  });

  // A copy on the other connection was described before the DDL: the client, which prepared after
  // it, must not be refused because of that description, nor meet the old plan.
  it('a statement prepared after DDL, run where an older copy was described before it', async () => {
    const run = async (t: Target, tbl: string): Promise<string[][]> => {
      await table(tbl, `(a int); INSERT INTO ${tbl} VALUES (1)`);
      const got: string[][] = [];
      const h1 = await holdOne(t); // h1 holds one connection
      const b = await raw(t);
      b.write(Buffer.concat([P('pe_b', `SELECT * FROM ${tbl}`), S]));
      await answers(b); // a copy on the other connection
      await adminQuery(`ALTER TABLE ${tbl} ADD COLUMN b int DEFAULT 7`);
      const h2 = await holdOne(t); // h2 holds the connection with the old copy
      await release(h1);
      const a = await raw(t);
      a.write(Buffer.concat([P('pe_a', `SELECT * FROM ${tbl}`), B('pe_a'), E(), S]));
      got.push(await answers(a)); // prepared after the DDL
      const h3 = await holdOne(t); // h3 holds the connection a prepared on
      await release(h2);
      for (let i = 0; i < 2; i++) {
        a.write(Buffer.concat([B('pe_a'), E(), S]));
        got.push(await answers(a)); // where the old copy is
      }
      await release(h3);
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_oc_${x}`), pair);
    expect(direct[1]).toEqual(['2', 'D:1,7', 'C:SELECT 1', 'Z:I']);
  });

  // node-postgres sends values as text; a fresh copy infers bigint for the parameter.
  it('a named query of node-postgres after its parameter\'s column became bigint', async () => {
    const run = async (t: Target, tbl: string): Promise<unknown[]> => {
      await table(tbl, '(a int)');
      const c = new pg.Client({ connectionString: urlOf(t) });
      await c.connect();
      cleanups.push(() => c.end());
      const q = { name: 'pe_pg_ins', text: `INSERT INTO ${tbl} (a) VALUES ($1)`, values: [5] };
      const got: unknown[] = [(await c.query(q)).rowCount];
      await evict(t);
      await adminQuery(`ALTER TABLE ${tbl} ALTER COLUMN a TYPE bigint`);
      for (let i = 0; i < 2; i++) got.push(await c.query(q).then((r) => r.rowCount, (e: { code?: string }) => e.code));
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_pgi_${x}`));
    expect(direct).toEqual([1, 1, 1]);
  });

  // A temp table shadows a permanent one of the same name on the pinned client's connection; the
  // same SQL from another client on the other connection describes the permanent table. Neither is DDL.
  it('a temp table shadowing a permanent one: two clients, same SQL, different shapes', async () => {
    const run = async (t: Target, tbl: string): Promise<string[][]> => {
      await table(tbl, '(a int); INSERT INTO ' + tbl + ' VALUES (1)');
      const got: string[][] = [];
      const x = await raw(t);
      x.write(Q(`CREATE TEMP TABLE ${tbl} (a text); INSERT INTO ${tbl} VALUES ('t')`));
      got.push(await answers(x));
      x.write(Buffer.concat([P('pe_sh', `SELECT * FROM ${tbl}`), B('pe_sh'), E(), S]));
      got.push(await answers(x));
      const y = await raw(t);
      y.write(Buffer.concat([P('pe_sh', `SELECT * FROM ${tbl}`), B('pe_sh'), E(), S]));
      got.push(await answers(y));
      x.write(Buffer.concat([B('pe_sh'), E(), S]));
      got.push(await answers(x));
      y.write(Buffer.concat([B('pe_sh'), E(), S]));
      got.push(await answers(y));
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_shadow_${x}`), pair);
    expect(direct[3]).toEqual(['2', 'D:t', 'C:SELECT 1', 'Z:I']);
  });

  // A prepared FETCH describes whatever cursor of that name exists when described. PostgreSQL does
  // not check utility statements again, so a direct connection runs it against the new cursor.
  it('a prepared FETCH of a cursor redeclared with another row type', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const got: string[][] = [];
      const a = await raw(t);
      a.write(Q('BEGIN; DECLARE pe_cur CURSOR FOR SELECT 1 AS x'));
      got.push(await answers(a));
      a.write(Buffer.concat([P('pe_fetch', 'FETCH ALL FROM pe_cur'), B('pe_fetch'), E(), S]));
      got.push(await answers(a));
      a.write(Q('COMMIT'));
      got.push(await answers(a));
      await evict(t);
      a.write(Q("BEGIN; DECLARE pe_cur CURSOR FOR SELECT 'x'::text AS y"));
      got.push(await answers(a));
      a.write(Buffer.concat([B('pe_fetch'), E(), S]));
      got.push(await answers(a));
      a.write(Q('COMMIT'));
      got.push(await answers(a));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct[4]).toEqual(['2', 'D:x', 'C:FETCH 1', 'Z:T']);
  });
});

describe('a statement run again after the client changed its search_path', () => {
  // PostgreSQL analyses it again under the new path, and refuses it when it then returns something else.
  it('is refused when the table it now names has another shape', async () => {
    const run = async (t: Target, s: string): Promise<string[][]> => {
      await twoSchemas(s, 'x', 'y', "(a text, b text); INSERT INTO %.t VALUES ('y', 'z')");
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Q(`SET search_path = ${s}_x`));
      got.push(await answers(a));
      a.write(Buffer.concat([P('pe_sp', 'SELECT * FROM t'), B('pe_sp'), E(), S]));
      got.push(await answers(a));
      a.write(Q(`SET search_path = ${s}_y`));
      got.push(await answers(a));
      a.write(Buffer.concat([B('pe_sp'), E(), S]));
      got.push(await answers(a));
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_sp${x}`));
    expect(direct[3]).toEqual(['E:0A000', 'Z:I']);
  });
  it('is refused under the other path each time, and runs again back under its own', async () => {
    const run = async (t: Target, s: string): Promise<string[]> => {
      await twoSchemas(s, 'a', 'b');
      const a = await raw(t);
      a.write(Q(`SET search_path = ${s}_a`));
      await answers(a);
      a.write(Buffer.concat([P('pe_bf', 'SELECT * FROM t'), B('pe_bf'), E(), S]));
      const got = await answers(a);
      for (const path of ['b', 'a', 'b', 'a']) {
        a.write(Q(`SET search_path = ${s}_${path}`));
        await answers(a);
        a.write(Buffer.concat([B('pe_bf'), E(), S]));
        got.push('|', ...await answers(a));
      }
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_bf${x}`));
    expect(direct.join(' ')).toBe('1 2 D:1 C:SELECT 1 Z:I | E:0A000 Z:I | 2 D:1 C:SELECT 1 Z:I | E:0A000 Z:I | 2 D:1 C:SELECT 1 Z:I');
  });
  // The SET runs on the server before the Bind behind it: the statement must be prepared under the
  // new path, and shared under that path's name, not the old one's.
  const setThenBind = {
    query: (path: string): Buffer => Q(`SET search_path = ${path}`),
    extended: (path: string): Buffer => Buffer.concat([P('', `SET search_path = ${path}`), B(''), E(), S]),
  };
  it.each(Object.keys(setThenBind) as (keyof typeof setThenBind)[])('behind a SET search_path in the same pipeline (%s protocol), is prepared under the new path', async (how) => {
    const run = async (t: Target, s: string): Promise<string[][]> => {
      await twoSchemas(s, 'a', 'b');
      const a = await raw(t);
      a.write(Q(`SET search_path = ${s}_a`));
      await answers(a);
      a.write(Buffer.concat([P('pe_t', 'SELECT * FROM t'), B('pe_t'), E(), S]));
      const got = [await answers(a)];
      await evict(t);
      a.write(Buffer.concat([setThenBind[how](`${s}_b`), B('pe_t'), E(), S]));
      got.push(await answers(a, 2));
      // A client under the first path gets its own table's rows.
      const c = await raw(t);
      c.write(Q(`SET search_path = ${s}_a`));
      await answers(c);
      c.write(Buffer.concat([P('pe_c', 'SELECT * FROM t'), B('pe_c'), E(), S]));
      got.push(await answers(c));
      return got;
    };
    const direct = await sameAsDirect((t, x) => run(t, `pe_sq${how[0]}${x}`));
    expect(direct[1]!.slice(-2)).toEqual(['E:0A000', 'Z:I']);
    expect(direct[2]).toEqual(['1', '2', 'D:1', 'C:SELECT 1', 'Z:I']);
  });
});

describe('a Bind held for the description goes on', () => {
  it('Flush without Sync, then Sync later', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('pe_f', 'SELECT 5 AS f'), S]));
      got.push(await answers(a));
      await evict(t);
      a.write(Buffer.concat([Q('BEGIN'), B('pe_f'), E(), H]));
      got.push(await answers(a));
      const { message, before } = await a.readUntil('C');
      got.push([...before.map((m) => m.type), message.type]);
      a.write(Buffer.concat([S]));
      got.push(await answers(a));
      a.write(Q('COMMIT'));
      got.push(await answers(a));
      return got;
    };
    await sameAsDirect(run);
  });

  it('Terminate right behind the held request', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const a = await raw(t);
      a.write(Buffer.concat([P('pe_t', 'SELECT 5 AS f'), S]));
      await answers(a);
      await evict(t);
      a.write(Buffer.concat([B('pe_t'), E(), S, X]));
      const msgs = await a.readToClose(5000);
      return msgs.map((m) => m.type);
    };
    await sameAsDirect(run);
  });

  it('COPY in the same write before a held Bind', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      await table('pe_cp', '(a int)');
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('pe_cpb', 'SELECT count(*) FROM pe_cp'), S]));
      got.push(await answers(a));
      await evict(t);
      a.write(Buffer.concat([Q('COPY pe_cp FROM STDIN'), copyData('1\n'), copyData('2\n'), COPY_DONE, B('pe_cpb'), E(), S]));
      got.push(await answers(a, 2));
      return got;
    };
    await sameAsDirect(run);
  });

  it('three lazy prepares in one pipeline, each evicting the one before last', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('q1', 'SELECT 1 AS q'), P('q2', 'SELECT 2 AS q'), P('q3', 'SELECT 3 AS q'), S]));
      got.push(await answers(a));
      await evict(t);
      a.write(Buffer.concat([B('q1', [], 'p1'), B('q2', [], 'p2'), B('q3', [], 'p3'), E('p1'), E('p2'), E('p3'), D('S', 'q1'), S]));
      got.push(await answers(a));
      return got;
    };
    await sameAsDirect(run);
  });

  it('aborted transaction block, held Bind', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const got: string[][] = [];
      a.write(Buffer.concat([P('ab1', 'SELECT 1 AS q'), P('ab2', 'SELECT 2 AS q'), S]));
      got.push(await answers(a));
      await evict(t);
      a.write(Buffer.concat([Q('BEGIN'), Q('SELECT 1/0'), B('ab1'), E(), S, B('ab2'), E(), S, Q('ROLLBACK'), B('ab1'), E(), S]));
      got.push(await answers(a, 6));
      return got;
    };
    await sameAsDirect(run);
  });
});

describe('a protocol-level statement that EXECUTEs a SQL-level one', () => {
  // The client's own PREPARE goes on the connection before its statement is prepared there again;
  // and EXECUTE, a utility statement, is not checked for its shape, as PostgreSQL does not check it.
  it('Parse "EXECUTE pe_foo" while another client redefined its own pe_foo on the connection', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const got: string[][] = [];
      const x = await raw(t);
      x.write(Q('PREPARE pe_foo AS SELECT 1 AS v'));
      got.push(await answers(x));
      x.write(Buffer.concat([P('pe_ex', 'EXECUTE pe_foo'), B('pe_ex'), E(), S]));
      got.push(await answers(x));
      if (t !== 'direct') {
        const y = await raw(t);
        y.write(Q("PREPARE pe_foo AS SELECT 'a'::text AS w"));
        await answers(y);
      }
      await evict(t);
      x.write(Buffer.concat([B('pe_ex'), E(), S]));
      got.push(await answers(x));
      return got;
    };
    const direct = await sameAsDirect(run);
    expect(direct[2]).toEqual(['2', 'D:1', 'C:SELECT 1', 'Z:I']);
  });
});

describe('a client refused on a fresh copy, then the server refuses another client on an old one', () => {
  // Two connections with room for two statements each. b is refused where a fresh copy shows the
  // new shape; a's Bind, already on its way to the connection with the old plan, then gets the
  // server's own 0A000, which makes every copy be prepared afresh. Both keep being refused at each
  // run, as PostgreSQL refuses each of them, and a client that prepares the statement now gets rows.
  it('both are refused at each run, a client that prepares it now is not', async () => {
    const gw = await startGateway({ pool: '{ mode: transaction, size: 2, max_prepared_statements: 2, query_wait_timeout_ms: 4000 }' });
    cleanups.push(() => gw.stop());
    await table('pe_twice', '(a int); INSERT INTO pe_twice VALUES (1)');
    const sql = 'SELECT * FROM pe_twice';
    const [a, b, e] = [await raw(gw), await raw(gw), await raw(gw)];
    // a and b each prepare it on their own connection, in overlapping transactions.
    a.write(Q('BEGIN'));
    b.write(Q('BEGIN'));
    await Promise.all([answers(a), answers(b)]);
    a.write(Buffer.concat([P('pe_s', sql), B('pe_s'), E(), S]));
    b.write(Buffer.concat([P('pe_s', sql), B('pe_s'), E(), S]));
    expect(await Promise.all([answers(a), answers(b)])).toEqual([['1', '2', 'D:1', 'C:SELECT 1', 'Z:T'], ['1', '2', 'D:1', 'C:SELECT 1', 'Z:T']]);
    a.write(Q('COMMIT'));
    b.write(Q('COMMIT'));
    await Promise.all([answers(a), answers(b)]);
    await adminQuery('ALTER TABLE pe_twice ADD COLUMN b int DEFAULT 7');
    // a takes one connection; e, on the other, pushes the statement out and prepares it afresh there.
    a.write(Q('BEGIN'));
    e.write(Q('BEGIN'));
    await Promise.all([answers(a), answers(e)]);
    e.write(Buffer.concat([P('pe_e1', 'SELECT 1 AS e1'), P('pe_e2', 'SELECT 2 AS e2'), P('pe_new', sql), B('pe_new'), E(), S]));
    expect(await answers(e)).toEqual(['1', '1', '1', '2', 'D:1,7', 'C:SELECT 1', 'Z:T']);
    // a's Bind waits behind a sleep on the connection that has the old plan.
    a.write(Buffer.concat([Q('SELECT pg_sleep(0.5)'), B('pe_s'), E(), S]));
    e.write(Q('COMMIT'));
    await answers(e);
    b.write(Buffer.concat([B('pe_s'), E(), S]));
    expect(await answers(b)).toEqual(['E:0A000', 'Z:I']);
    expect(await answers(a, 2)).toEqual(['T', 'D:', 'C:SELECT 1', 'Z:T', 'E:0A000', 'Z:E']);
    a.write(Q('ROLLBACK'));
    await answers(a);
    for (const c of [b, a, b, a]) {
      c.write(Buffer.concat([B('pe_s'), E(), S]));
      expect(await answers(c)).toEqual(['E:0A000', 'Z:I']);
    }
    e.write(Buffer.concat([B('pe_new'), E(), S]));
    expect(await answers(e)).toEqual(['2', 'D:1,7', 'C:SELECT 1', 'Z:I']);
  });
});


/** A raw client and its backend key data (as the gateway gave it). */
async function rawWithKey(url: string): Promise<{ r: RawClient; pid: number; secret: number }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const socket = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
  socket.removeAllListeners('data');
  cleanups.push(() => socket.destroy());
  const Ctor = RawClient as unknown as new (s: net.Socket) => RawClient;
  return { r: new Ctor(socket), pid: processID, secret: secretKey };
}

describe('the server or the client acts while a Bind is held for the description', () => {
  let proxy: HoldingProxy;
  let gw: TestGateway;
  beforeAll(async () => {
    proxy = await startHoldingProxy();
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 2, query_wait_timeout_ms: 4000 }', primary: { host: '127.0.0.1', port: proxy.port } });
  });
  afterAll(async () => { await gw?.stop(); proxy?.close(); });

  it('a CancelRequest that arrives while the description is awaited cancels the statement', async () => {
    const { r: a, pid, secret } = await rawWithKey(gw.url());
    a.write(Buffer.concat([P('pe_sl', 'SELECT pg_sleep(3)'), S]));
    await answers(a);
    await evict(gw);
    proxy.frozen = true;
    a.write(Buffer.concat([B('pe_sl'), E(), S]));
    await sleep(200); // held: Parse+Describe sent, the answers held back by the proxy
    const c = net.connect(gw.port, gw.host);
    c.on('error', () => undefined);
    await new Promise((res) => c.once('connect', res));
    c.end(cancelRequestPacket(pid, secret));
    await sleep(200);
    proxy.release();
    const got = await answers(a, 1, 8000);
    // The cancel lands in the Bind or in the Execute, as it may on a direct connection.
    expect(got.filter((m) => m !== '2')).toEqual(['E:57014', 'Z:I']);
  });

  it('a CancelRequest that arrives while the description is awaited behind the client\'s Query cancels the held statement', async () => {
    const { r: a, pid, secret } = await rawWithKey(gw.url());
    a.write(Buffer.concat([P('pe_sl3', 'SELECT pg_sleep(3.1)'), S]));
    await answers(a);
    await evict(gw);
    proxy.frozen = true;
    a.write(Buffer.concat([Q('SELECT 1'), B('pe_sl3'), E(), S]));
    await sleep(200);
    const c = net.connect(gw.port, gw.host);
    c.on('error', () => undefined);
    await new Promise((res) => c.once('connect', res));
    c.end(cancelRequestPacket(pid, secret));
    await sleep(200);
    proxy.release();
    const got = await answers(a, 2, 8000);
    expect(got.filter((m) => m !== '2')).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I', 'E:57014', 'Z:I']);
  });

  it('control: a CancelRequest 200 ms into a lazily prepared pg_sleep (no freeze)', async () => {
    const { r: a, pid, secret } = await rawWithKey(gw.url());
    a.write(Buffer.concat([P('pe_sl2', 'SELECT pg_sleep(3)'), S]));
    await answers(a);
    await evict(gw);
    a.write(Buffer.concat([B('pe_sl2'), E(), S]));
    await sleep(200);
    const c = net.connect(gw.port, gw.host);
    c.on('error', () => undefined);
    await new Promise((res) => c.once('connect', res));
    c.end(cancelRequestPacket(pid, secret));
    const got = await answers(a, 1, 8000);
    // The cancel lands in the Bind or in the Execute, as it may on a direct connection.
    expect(got.filter((m) => m !== '2')).toEqual(['E:57014', 'Z:I']);
  });

  it('the server connection dies while the description is awaited: the client hears of it', async () => {
    const a = await raw(gw);
    a.write(Buffer.concat([P('pe_die', 'SELECT 1'), S]));
    await answers(a);
    await evict(gw);
    proxy.frozen = true;
    a.write(Buffer.concat([B('pe_die'), E(), S]));
    await sleep(200);
    proxy.killAll();
    proxy.frozen = false;
    const msgs = await a.readToClose(5000);
    expect(msgs.map((m) => m.type)).toContain('E');
    // and the pool works again
    const b = await raw(gw);
    b.write(Q('SELECT 7'));
    expect(await answers(b)).toEqual(['T', 'D:7', 'C:SELECT 1', 'Z:I']);
  });

  it('the client disconnects while the description is awaited: the pool works again', async () => {
    const a = await raw(gw);
    a.write(Buffer.concat([P('pe_gone', 'SELECT 1'), S]));
    await answers(a);
    await evict(gw);
    proxy.frozen = true;
    a.write(Buffer.concat([B('pe_gone'), E(), S]));
    await sleep(200);
    a.destroy();
    await sleep(100);
    proxy.release();
    const b = await raw(gw);
    b.write(Q('SELECT 8'));
    expect(await answers(b)).toEqual(['T', 'D:8', 'C:SELECT 1', 'Z:I']);
  });
});

