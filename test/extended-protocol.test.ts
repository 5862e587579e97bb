// The extended query protocol and named prepared statements in transaction mode, compared with what
// the same byte sequences get from PostgreSQL directly: the error rule (what the server skips after
// an error must not count), names PostgreSQL refuses, statements shared across search_paths, the
// session effects of statements executed again by name, COPY in one write, and DDL-stale statements
// inside a transaction. `single` (a pool of 1) makes which connection serves whom certain.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { RawClient } from './helpers/raw-client.js';
import { rawAfterLogin, P, B, E, D, C, S, H, Q, copyData, COPY_DONE, answers, upTo } from './helpers/wire-script.js';
import { bothConnectionsUsable, onAnotherConnection, sleep } from './helpers/pg-helpers.js';

let gw: TestGateway; // pool of 2
let single: TestGateway; // pool of 1, max_prepared_statements: 2: which connection serves whom is certain

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  single = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 2, query_wait_timeout_ms: 4000 }' });
  await adminQuery('DROP SCHEMA IF EXISTS pe_t1, pe_t2 CASCADE');
  await adminQuery('DROP TABLE IF EXISTS pe_copy, pe_rows');
  await adminQuery('CREATE SCHEMA pe_t1; CREATE SCHEMA pe_t2');
  await adminQuery("CREATE TABLE pe_t1.pe_items (id int, name text); INSERT INTO pe_t1.pe_items VALUES (1, 'one')");
  await adminQuery('CREATE TABLE pe_t2.pe_items (id int, price numeric, qty int); INSERT INTO pe_t2.pe_items VALUES (2, 9.5, 3)');
  await adminQuery('CREATE TABLE pe_copy (a int); CREATE TABLE pe_rows (a int)');
  await adminQuery('GRANT USAGE ON SCHEMA pe_t1, pe_t2 TO app; GRANT ALL ON ALL TABLES IN SCHEMA pe_t1, pe_t2 TO app; GRANT ALL ON pe_copy, pe_rows TO app');
});

afterAll(async () => {
  await gw?.stop();
  await single?.stop();
  await adminQuery('DROP SCHEMA IF EXISTS pe_t1, pe_t2 CASCADE');
  await adminQuery('DROP TABLE IF EXISTS pe_copy, pe_rows');
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.race([Promise.resolve(c()).catch(() => undefined), sleep(2000)]);
});

// --- raw protocol over a logged-in pg connection --------------------------------------------------

type Target = TestGateway | 'direct';

function urlOf(target: Target): string {
  return target === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : target.url();
}

async function pgClient(target: Target, config: Omit<pg.ClientConfig, 'connectionString'> = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlOf(target), ...config });
  client.on('error', () => undefined);
  cleanups.push(() => client.end());
  await client.connect();
  return client;
}

/** Logs in with pg (SCRAM), then takes its socket over for hand-made messages. */
const raw = (target: Target): Promise<RawClient> => rawAfterLogin(urlOf(target), (end) => cleanups.push(end));

/** Runs `steps` (each: bytes to send, ReadyForQuery count to read) and returns what each got. */
async function script(target: Target, steps: [Buffer, number][]): Promise<string[][]> {
  const r = await raw(target);
  const out: string[][] = [];
  for (const [bytes, n] of steps) {
    r.write(bytes);
    out.push(await answers(r, n));
  }
  return out;
}

/** Runs the same steps directly and through `target`; returns both. */
async function compare(target: TestGateway, steps: [Buffer, number][]): Promise<{ direct: string[][]; pgway: string[][] }> {
  const direct = await script('direct', steps);
  const pgway = await script(target, steps);
  return { direct, pgway };
}

// --- error rule: what the server skipped after an error must not count --------------------------

describe('messages PostgreSQL skips after an error in a pipeline', () => {
  it('messages sent after an error and before the Sync are skipped, a Query too, as postgres.js sends them', async () => {
    // postgres.js: Parse, Describe, Flush; on ParameterDescription, Bind, Execute, Sync. Here the Describe fails.
    const run = async (target: Target): Promise<string[][]> => {
      const r = await raw(target);
      r.write(Buffer.concat([P('pe_skip', 'SELECT * FROM pe_no_such_table WHERE 1 = $1'), D('S', 'pe_skip'), H]));
      const failed = await upTo(r, 'E');
      r.write(Buffer.concat([B('pe_skip', ['1']), E(), Q('SELECT 2'), S]));
      const skipped = await answers(r);
      r.write(Buffer.concat([P('', 'SELECT 3'), B(''), E(), S]));
      return [failed, skipped, await answers(r)];
    };
    const direct = await run('direct');
    expect(direct).toEqual([['E:42P01'], ['Z:I'], ['1', '2', 'D:3', 'C:SELECT 1', 'Z:I']]);
    expect(await run(gw)).toEqual(direct);
    await bothConnectionsUsable(await pgClient(gw), await pgClient(gw));
  });

  it('a Close of a named statement after an error is skipped, so the statement still works', async () => {
    const steps: [Buffer, number][] = [
      [Buffer.concat([P('pe_close_skip', 'SELECT 1 AS v'), S]), 1],
      [Buffer.concat([P('', 'SELECT 1/0'), B(''), E(), C('S', 'pe_close_skip'), S]), 1],
      [Buffer.concat([B('pe_close_skip'), E(), S]), 1],
    ];
    const { direct, pgway } = await compare(gw, steps);
    expect(direct[1]).toEqual(['1', 'E:22012', 'Z:I']);
    expect(direct[2]).toEqual(['2', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(pgway).toEqual(direct);
  });

  it('an LRU eviction skipped after an error does not leave the server connection unable to prepare that statement', async () => {
    // single: one server connection, at most 2 statements on it.
    const a = await raw(single);
    a.write(Buffer.concat([P('x', 'SELECT 1 AS pe_evict_x'), P('y', 'SELECT 2 AS pe_evict_y'), S]));
    expect(await answers(a)).toEqual(['1', '1', 'Z:I']);
    // A third statement evicts pe_evict_x (Close + Parse), but the error before it makes the server skip both.
    a.write(Buffer.concat([P('', 'SELECT 1/0'), B(''), E(), P('z', 'SELECT 3 AS pe_evict_z'), S]));
    expect(await answers(a)).toEqual(['1', 'E:22012', 'Z:I']); // 1/0 is folded, so Bind fails

    // Another client's statement with pe_evict_x's text, on the same server connection.
    // (pgway: 42P05 "prepared statement pgw_... already exists", on every try, for every client.)
    const b = await pgClient(single);
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      seen.push(await b.query<{ pe_evict_x: number }>({ name: `bx${i}`, text: 'SELECT 1 AS pe_evict_x' })
        .then((r) => r.rows[0]!.pe_evict_x, (err: { code?: string }) => err.code));
    }
    expect(seen).toEqual([1, 1, 1]);
  });
});

// --- Parse that fails or clashes ------------------------------------------------------------------

describe('a named Parse that PostgreSQL refuses', () => {
  it('re-Parse of an existing name without Close is refused (42P05) and the pipeline does not run', async () => {
    const steps: [Buffer, number][] = [
      [Buffer.concat([P('pe_dup', 'SELECT 1 AS v'), S]), 1],
      [Buffer.concat([P('pe_dup', 'SELECT 2 AS v'), B('pe_dup'), E(), S]), 1],
      [Buffer.concat([B('pe_dup'), E(), S]), 1],
    ];
    const { direct, pgway } = await compare(gw, steps);
    expect(direct[1]).toEqual(['E:42P05', 'Z:I']);
    expect(direct[2]).toEqual(['2', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(pgway).toEqual(direct);
  });

  it('a name whose Parse failed is free for a later group of the same write, also as that group\'s second Parse', async () => {
    const steps: [Buffer, number][] = [
      [Buffer.concat([P('pe_free', 'SELEC 1'), S, P('pe_free_y', 'SELECT 1'), P('pe_free', 'SELECT 2 AS v'), B('pe_free'), E(), S]), 2],
    ];
    const { direct, pgway } = await compare(gw, steps);
    expect(direct).toEqual([['E:42601', 'Z:I', '1', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I']]);
    expect(pgway).toEqual(direct);
  });

  it('a Parse with a syntax error defines nothing: Bind of that name then fails with 26000', async () => {
    const steps: [Buffer, number][] = [
      [Buffer.concat([P('pe_bad', 'SELEC 1'), S]), 1],
      [Buffer.concat([B('pe_bad'), E(), S]), 1],
    ];
    const { direct, pgway } = await compare(gw, steps);
    expect(direct).toEqual([['E:42601', 'Z:I'], ['E:26000', 'Z:I']]);
    expect(pgway).toEqual(direct);
  });
});

// --- statement text whose meaning depends on the session --------------------------------------------

describe('the same statement text from clients with different search_path', () => {
  it('each client gets its own schema\'s rows, with no "cached plan must not change result type"', async () => {
    // single: both clients share its one server connection.
    const t1 = await pgClient(single);
    const t2 = await pgClient(single);
    await t1.query('SET search_path = pe_t1, public');
    await t2.query('SET search_path = pe_t2, public');
    const stmt = { name: 'pe_items', text: 'SELECT * FROM pe_items' };
    const seen: unknown[] = [];
    for (let round = 0; round < 3; round++) {
      for (const c of [t1, t2]) {
        try {
          seen.push((await c.query(stmt)).rows);
        } catch (err) {
          seen.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
        }
      }
    }
    const want = [[{ id: 1, name: 'one' }], [{ id: 2, price: '9.5', qty: 3 }]];
    expect(seen).toEqual([...want, ...want, ...want]);
  });
});

// --- session effects of statements run by name ----------------------------------------------------

describe('session effects of statements executed again by name (postgres.js prepares by default)', () => {
  it('a session advisory lock taken by a re-executed prepared statement pins the client to its connection', async () => {
    const KEY = 771_234;
    const sql = postgres(gw.url(), { max: 1, onnotice: () => undefined });
    cleanups.push(() => sql.end({ timeout: 1 }));
    const others = [await pgClient(gw), await pgClient(gw)];
    // First run of each text: Parse + Bind + Execute. The second lock is Bind + Execute only.
    await sql`SELECT pg_advisory_lock(${KEY}::bigint)`;
    await sql`SELECT pg_advisory_unlock_all()`;
    await sql`SELECT pg_advisory_lock(${KEY}::bigint)`;
    const mine: boolean[] = [];
    const stolen: boolean[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        // Other clients use the pool meanwhile; none of them may get the lock (or its backend).
        await Promise.all(others.map(async (o) => {
          await o.query('BEGIN');
          stolen.push((await o.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS got', [KEY])).rows[0]!.got);
          await o.query('COMMIT');
        }));
        const [row] = await sql<{ mine: boolean }[]>`
          SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = ${KEY} AND granted AND pid = pg_backend_pid()) AS mine`;
        mine.push(row!.mine);
      }
    } finally {
      await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = $1 AND objid = $2', ['advisory', KEY]);
    }
    expect({ mine, stolen }).toEqual({ mine: [true, true, true, true], stolen: Array(8).fill(false) });
  });

  it('a SET run again by name is the setting the client has afterwards, on every connection', async () => {
    const sql = postgres(gw.url(), { max: 1, onnotice: () => undefined });
    cleanups.push(() => sql.end({ timeout: 1 }));
    const holders = [await pgClient(gw), await pgClient(gw)] as [pg.Client, pg.Client];
    await sql`SET application_name TO 'pe_one'`;
    await sql`SET application_name TO 'pe_two'`;
    await sql`SET application_name TO 'pe_one'`; // Bind + Execute only
    const read = async (): Promise<{ app: string; pid: number }> =>
      [...await sql<{ app: string; pid: number }[]>`SELECT current_setting('application_name') AS app, pg_backend_pid() AS pid`][0]!;
    const here = await read();
    // Whichever connection comes next, the setting is the last one run.
    const other = await onAnotherConnection(here.pid, holders, read);
    expect(other.pid).not.toBe(here.pid);
    expect([here.app, other.app]).toEqual(['pe_one', 'pe_one']);
  });

  it('a SET synced ahead of a failing request in the same pipeline stays set, as on a direct connection', async () => {
    const seen: Record<string, string[]> = {};
    for (const target of ['direct', single] as const) {
      const a = await raw(target);
      a.write(Buffer.concat([P('', "SET application_name = 'pe_piped'"), B(''), E(), S, P('', 'SELECT 1/0'), B(''), E(), S]));
      const got = await answers(a, 2);
      // Another client with its own settings uses the one connection in between.
      if (target !== 'direct') await (await pgClient(single, { application_name: 'pe_other' })).query('SELECT 1');
      a.write(Q("SELECT current_setting('application_name')"));
      seen[target === 'direct' ? 'direct' : 'pgway'] = [...got, ...await answers(a)];
    }
    expect(seen.direct).toContain('D:pe_piped');
    expect(seen.pgway).toEqual(seen.direct);
  });

  it('a Parse of a SET that is never executed changes nothing', async () => {
    const a = await raw(single);
    a.write(Buffer.concat([P('', "SET application_name = 'pe_parsed_only'"), S]));
    expect(await answers(a)).toEqual(['1', 'Z:I']);
    // Another client with its own settings uses the one connection in between.
    const b = await pgClient(single, { application_name: 'pe_other' });
    await b.query('SELECT 1');
    a.write(Q("SELECT current_setting('application_name')"));
    expect(await answers(a)).toEqual(['T', 'D:', 'C:SELECT 1', 'Z:I']);
  });
});

// --- COPY through the extended protocol -------------------------------------------------------------

describe('COPY FROM STDIN via the extended protocol', () => {
  it('sent in one write with its data, gives the server connection back once answered', async () => {
    const steps: [Buffer, number][] = [
      [Buffer.concat([P('', 'COPY pe_copy FROM STDIN'), B(''), E(), S, copyData('1\n2\n'), COPY_DONE, S]), 1],
    ];
    const { direct, pgway } = await compare(gw, steps);
    expect(direct).toEqual([['1', '2', 'G', 'C:COPY 2', 'Z:I']]);
    expect(pgway).toEqual(direct);
    // Both server connections must be free again: two transactions at once.
    await bothConnectionsUsable(await pgClient(gw), await pgClient(gw));
  });
});

// --- portals, Flush without Sync -----------------------------------------------------------------

describe('portals fetched in steps with Flush, no Sync in between', () => {
  it('serves row-limited Executes of a named portal while other clients rotate over the pool', async () => {
    const run = async (target: Target): Promise<string[]> => {
      const r = await raw(target);
      const out: string[] = [];
      r.write(Buffer.concat([P('pe_cur', 'SELECT g FROM generate_series(1, 5) g'), B('pe_cur', [], 'p1'), D('P', 'p1'), E('p1', 2), H]));
      out.push(...await upTo(r, 's'));
      await sleep(50);
      r.write(Buffer.concat([E('p1', 2), H]));
      out.push(...await upTo(r, 's'));
      r.write(Buffer.concat([E('p1', 0), C('P', 'p1'), S]));
      out.push(...await answers(r));
      r.write(Buffer.concat([E('p1', 1), S]));
      out.push(...await answers(r));
      return out;
    };
    const direct = await run('direct');
    const others = await Promise.all([pgClient(gw), pgClient(gw)]);
    let churning = true;
    const churn = Promise.all(others.map(async (c) => {
      while (churning) await c.query('SELECT pg_sleep(0.005)');
    }));
    try {
      expect(await run(gw)).toEqual(direct);
    } finally {
      churning = false;
      await churn;
    }
  });
});

describe('a portal whose statement pgway evicts (max_prepared_statements: 2)', () => {
  it('keeps the suspended portal usable inside the transaction', async () => {
    const steps: [Buffer, number][] = [
      [Q('BEGIN'), 1],
      [Buffer.concat([
        P('pe_s1', 'SELECT g FROM generate_series(1, 5) g'), B('pe_s1', [], 'pe_p'), E('pe_p', 2),
        P('pe_s2', 'SELECT 2 AS pe_portal_s2'), P('pe_s3', 'SELECT 3 AS pe_portal_s3'), E('pe_p', 2), S,
      ]), 1],
      [Q('COMMIT'), 1],
    ];
    const { direct, pgway } = await compare(single, steps);
    expect(direct[1]).toEqual(['1', '2', 'D:1', 'D:2', 's', '1', '1', 'D:3', 'D:4', 's', 'Z:T']);
    expect(pgway).toEqual(direct);
  });
});

describe("a prepared statement made stale by DDL, executed inside a transaction", () => {
  it('aborts the transaction as PostgreSQL does: COMMIT rolls back', async () => {
    await adminQuery('DROP TABLE IF EXISTS pe_ddl; CREATE TABLE pe_ddl (a int); GRANT ALL ON pe_ddl TO app');
    cleanups.push(() => adminQuery('DROP TABLE IF EXISTS pe_ddl'));
    const [a, b] = [await pgClient(gw), await pgClient(gw)];
    const stmt = { name: 'pe_ddl', text: 'SELECT * FROM pe_ddl' };
    // Prepared on both server connections.
    await a.query('BEGIN');
    await b.query('BEGIN');
    await a.query(stmt);
    await b.query(stmt);
    await Promise.all([a.query('COMMIT'), b.query('COMMIT')]);
    await adminQuery('ALTER TABLE pe_ddl ADD COLUMN b int');
    await expect(b.query(stmt)).rejects.toMatchObject({ code: '0A000' });

    await a.query('BEGIN');
    await a.query('INSERT INTO pe_rows VALUES (4242)');
    await expect(a.query(stmt)).rejects.toMatchObject({ code: '0A000' });
    const commit = await a.query('COMMIT');
    expect(commit.command).toBe('ROLLBACK');
    expect((await adminQuery('SELECT 1 FROM pe_rows WHERE a = 4242')).rowCount).toBe(0);
  });
});

describe('8 postgres.js clients over a pool of 2, pipelines with failing statements', () => {
  it('gives every query its own result or its own error', async () => {
    const sqls = Array.from({ length: 8 }, () => postgres(gw.url(), { max: 1, onnotice: () => undefined, connect_timeout: 10 }));
    cleanups.push(() => Promise.all(sqls.map((s) => s.end({ timeout: 1 }))));
    const wrong: string[] = [];
    await Promise.all(sqls.map(async (sql, i) => {
      for (let batch = 0; batch < 4; batch++) {
        await Promise.all(Array.from({ length: 12 }, async (_, k) => {
          const n = batch * 12 + k;
          const tag = `${i}/${n}`;
          try {
            switch (n % 4) {
              case 0: {
                const [r] = await sql<{ v: number }[]>`SELECT ${n}::int * 10 + ${i}::int AS v`;
                if (r!.v !== n * 10 + i) wrong.push(`${tag}: ${r!.v}`);
                return;
              }
              case 1: {
                await sql`SELECT 1 / ${0}::int AS v`;
                wrong.push(`${tag}: no error`);
                return;
              }
              case 2: {
                const [r] = await sql<{ v: string }[]>`SELECT ${`c${i}`}::text || ${n}::text AS v`;
                if (r!.v !== `c${i}${n}`) wrong.push(`${tag}: ${r!.v}`);
                return;
              }
              default: {
                const out = await sql.begin(async (tx) => {
                  const [r] = await tx<{ v: number }[]>`SELECT ${n}::int + ${i}::int AS v`;
                  await tx`SELECT 1 / ${0}::int`;
                  return r;
                }).catch((err: { code?: string }) => err.code);
                if (out !== '22012') wrong.push(`${tag}: tx ${JSON.stringify(out)}`);
              }
            }
          } catch (err) {
            if (n % 4 !== 1 || (err as { code?: string }).code !== '22012') wrong.push(`${tag}: ${String(err)}`);
          }
        }));
      }
    }));
    expect(wrong).toEqual([]);
  }, 60_000);
});

describe('a client that leaves in the middle of a pipeline', () => {
  it('has its executed-but-unsynced work aborted, and the pool keeps both connections', async () => {
    const r = await raw(gw);
    r.write(Buffer.concat([P('', 'INSERT INTO pe_rows VALUES (777)'), B(''), E(), H]));
    expect(await upTo(r, 'C')).toEqual(['1', '2', 'C:INSERT 0 1']);
    r.destroy();
    await sleep(300);
    expect((await adminQuery('SELECT 1 FROM pe_rows WHERE a = 777')).rowCount).toBe(0);
    await bothConnectionsUsable(await pgClient(gw), await pgClient(gw));
  });
});

describe('one statement name, different SQL', () => {
  it('two clients use the same name for different SQL, and a client re-Parses a name after Close, while rotating', async () => {
    const [a, b] = [await raw(gw), await raw(gw)];
    const others = await Promise.all([pgClient(gw), pgClient(gw)]);
    let churning = true;
    const churn = Promise.all(others.map(async (c) => {
      while (churning) await c.query('SELECT pg_sleep(0.003)');
    }));
    const got: string[][] = [];
    try {
      a.write(Buffer.concat([P('pe_same', 'SELECT $1::int + 1'), S]));
      b.write(Buffer.concat([P('pe_same', 'SELECT $1::text || \'!\''), S]));
      got.push(await answers(a), await answers(b));
      for (let i = 0; i < 4; i++) {
        a.write(Buffer.concat([B('pe_same', [String(i)]), E(), S]));
        b.write(Buffer.concat([B('pe_same', [String(i)]), E(), S]));
        got.push(await answers(a), await answers(b));
      }
      a.write(Buffer.concat([C('S', 'pe_same'), P('pe_same', 'SELECT $1::int * 100'), B('pe_same', ['3']), E(), S]));
      got.push(await answers(a));
      b.write(Buffer.concat([B('pe_same', ['z']), E(), S]));
      got.push(await answers(b));
    } finally {
      churning = false;
      await churn;
    }
    const run = (v: string): string[] => ['2', `D:${v}`, 'C:SELECT 1', 'Z:I'];
    expect(got).toEqual([
      ['1', 'Z:I'], ['1', 'Z:I'],
      ...[0, 1, 2, 3].flatMap((i) => [run(String(i + 1)), run(`${i}!`)]),
      ['3', '1', '2', 'D:300', 'C:SELECT 1', 'Z:I'],
      run('z!'),
    ]);
  });
});

