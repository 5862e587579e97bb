// Statement pooling mode never lets a transaction block span statements, whether the client waits for
// each answer or pipelines its requests: pgway writes a client's requests one at a time (each once the
// one before it is answered), so a request that leaves a transaction open is refused with FATAL 08P01 (PgBouncer's code and text) at
// its ReadyForQuery, and what the client pipelined behind it never runs. Pipelines of statements that
// open no transaction get the same answers as on a direct connection, COPY data included.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { answers, B, cat, COPY_DONE, copyData, E, H, P, Q, rawTargets, S, shown, summary, type Target, X } from './helpers/wire-script.js';

let st: TestGateway;
const { raw } = rawTargets();

beforeAll(async () => {
  st = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 3000 }' });
  await adminQuery('DROP TABLE IF EXISTS stmt_mode_rows; CREATE TABLE stmt_mode_rows (tag text); GRANT ALL ON stmt_mode_rows TO app');
});

afterAll(async () => {
  await st?.stop();
  await adminQuery('DROP TABLE IF EXISTS stmt_mode_rows');
});

/** Everything the client hears until pgway closes it (at most `ms`): as summary(), '<closed>' last. */
async function heardUntilClosed(r: RawClient, ms = 3000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    let m;
    try {
      m = await r.readMessage(Math.max(1, deadline - Date.now()));
    } catch {
      return [...out, '<still open>'];
    }
    if (!m) return [...out, '<closed>'];
    if (shown(m)) out.push(summary(m));
  }
}

const committed = async (tag: string): Promise<number> => (await adminQuery('SELECT 1 FROM stmt_mode_rows WHERE tag = $1', [tag])).rowCount ?? 0;
const run = (sql: string): Buffer => cat(P('', sql), B(''), E(), S);

describe('statement mode refuses transaction blocks', () => {
  it('one request at a time: BEGIN is refused with 08P01', async () => {
    const r = await raw(st);
    r.write(Q('BEGIN'));
    expect(await heardUntilClosed(r)).toEqual(['C:BEGIN', 'Z:T', 'E:08P01', '<closed>']);
  });

  it('BEGIN / INSERT / COMMIT pipelined as three Queries: refused after BEGIN, nothing behind it runs', async () => {
    const r = await raw(st);
    r.write(cat(Q('BEGIN'), Q("INSERT INTO stmt_mode_rows VALUES ('simple-pipelined')"), Q('COMMIT')));
    expect(await heardUntilClosed(r)).toEqual(['C:BEGIN', 'Z:T', 'E:08P01', '<closed>']);
    expect(await committed('simple-pipelined')).toBe(0);
  });

  it('BEGIN / INSERT / COMMIT pipelined as three extended-protocol Syncs: refused after BEGIN', async () => {
    const r = await raw(st);
    r.write(cat(run('BEGIN'), run("INSERT INTO stmt_mode_rows VALUES ('extended-pipelined')"), run('COMMIT')));
    expect(await heardUntilClosed(r)).toEqual(['1', '2', 'C:BEGIN', 'Z:T', 'E:08P01', '<closed>']);
    expect(await committed('extended-pipelined')).toBe(0);
  });

  it('a group split by a Flush is one request: its BEGIN and INSERT are rolled back, the COMMIT behind never runs', async () => {
    const r = await raw(st);
    r.write(cat(
      P('', 'BEGIN'), B(''), E(), H,
      P('', "INSERT INTO stmt_mode_rows VALUES ('flush-split')"), B(''), E(), S,
      run('COMMIT'),
    ));
    expect(await heardUntilClosed(r)).toEqual(['1', '2', 'C:BEGIN', '1', '2', 'C:INSERT 0 1', 'Z:T', 'E:08P01', '<closed>']);
    expect(await committed('flush-split')).toBe(0);
    // The pool has one server connection: the next client gets it rolled back, not inside the transaction.
    const next = await raw(st);
    next.write(Q("SELECT count(*) FROM stmt_mode_rows WHERE tag = 'flush-split'"));
    expect(await answers(next)).toEqual(['T', 'D:0', 'C:SELECT 1', 'Z:I']);
  });

  it('requests sent in separate writes while an earlier one runs wait for its answer, and are refused the same', async () => {
    const r = await raw(st);
    r.write(Q('SELECT pg_sleep(0.2)'));
    r.write(Q('BEGIN'));
    r.write(Q("INSERT INTO stmt_mode_rows VALUES ('separate-writes')"));
    r.write(Q('COMMIT'));
    expect(await heardUntilClosed(r)).toEqual(['T', 'D:', 'C:SELECT 1', 'Z:I', 'C:BEGIN', 'Z:T', 'E:08P01', '<closed>']);
    expect(await committed('separate-writes')).toBe(0);
  });
});

describe('statement mode answers pipelines of single statements as PostgreSQL does', () => {
  /** Simple and extended requests and a COPY from the client, all in one write; every answer up to the last ReadyForQuery. */
  const pipeline = async (t: Target): Promise<string[]> => {
    const r = await raw(t);
    r.write(cat(
      Q('SELECT 1 AS a'),
      run('SELECT 2 AS b'),
      Q('COPY stmt_mode_rows FROM STDIN'), copyData('copied-1\n'), copyData('copied-2\n'), COPY_DONE,
      run('SELECT 3 AS c'),
      Q("SELECT 'last' AS d"),
    ));
    return answers(r, 5);
  };

  it('simple, extended and COPY requests in one write', async () => {
    const direct = await pipeline('direct');
    expect(await pipeline(st)).toEqual(direct);
    expect(direct).toContain('C:COPY 2');
  });

  it('a Terminate behind pipelined requests: each is answered, then the connection closes', async () => {
    const ending = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      r.write(cat(Q('SELECT 1 AS a'), run('SELECT 2 AS b'), X));
      return heardUntilClosed(r);
    };
    const direct = await ending('direct');
    expect(await ending(st)).toEqual(direct);
    expect(direct.at(-1)).toBe('<closed>');
  });

  it('postgres.js pipelining many queries over one connection', async () => {
    const sql = postgres(st.url(), { max: 1, onnotice: () => undefined, fetch_types: false });
    try {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sql<{ v: number }[]>`SELECT ${i}::int AS v`));
      expect(results.map((rows) => rows[0]!.v)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      await sql.end();
    }
  });
});
