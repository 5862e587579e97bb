// Savepoints and transaction control among a client's staged session effects, transaction mode, pool of 2.
// Each case compares a client's settings through pgway (on the connection that ran the statements
// and on the other one) with a direct PostgreSQL connection, and checks that a fresh client on the
// same connection reads the defaults (no leak).
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { queryMessage, rawTrustLogin, readCycle, type RawClient } from './helpers/raw-client.js';
import { clientsOfEachTest, errorOf, onAnotherConnection, onConnection, pidOf, sleep, sqlstate } from './helpers/pg-helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (user = 'app'): Promise<pg.Client> => testClients.connect(gw.url(user));
const direct = (): Promise<pg.Client> => testClients.connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));

const raws: RawClient[] = [];
afterEach(() => { // before the clients above are ended (hooks run last registered first)
  for (const r of raws.splice(0)) r.destroy();
});

async function rawLogin(): Promise<RawClient> {
  const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', client_encoding: 'UTF8' });
  raws.push(client);
  return client;
}


const GUCS = ['statement_timeout', 'lock_timeout', 'work_mem', 'hsp.x'];
const READ_SQL = `SELECT ${GUCS.map((g) => `current_setting('${g}', true)`).join(', ')}, pg_backend_pid()`;

async function read(c: pg.Client): Promise<{ values: (string | null)[]; pid: number }> {
  const row = (await c.query<unknown[]>({ text: READ_SQL, rowMode: 'array' })).rows[0]!;
  return { values: normalize(row.slice(0, GUCS.length) as (string | null)[]), pid: row[GUCS.length] as number };
}

/**
 * A custom placeholder (hsp.x) once made stays on a PostgreSQL connection for good (no RESET removes
 * it), so a pooled connection may read '' where a fresh direct one reads NULL: not a pgway bug.
 */
function normalize(values: (string | null)[]): (string | null)[] {
  return values.map((v) => v ?? '');
}

async function run(c: pg.Client, steps: readonly string[]): Promise<string[]> {
  const codes: string[] = [];
  for (const sql of steps) codes.push(sqlstate(await errorOf(c.query(sql))) ?? 'ok');
  return codes;
}

/** Runs `steps` (one Query each) directly and through pgway; compares codes, settings here/there, and a fresh client. */
async function compare(steps: readonly string[]): Promise<void> {
  const a = await connect();
  const [h1, h2] = [await connect(), await connect()];
  const d = await direct();
  const defaults = (await read(await direct())).values;
  const [directCodes, pgwayCodes] = [await run(d, steps), await run(a, steps)];
  const expected = (await read(d)).values;
  const first = await read(a);
  const second = await onAnotherConnection(first.pid, [h1, h2], () => read(a));
  const fresh = await connect();
  const freshThere = await onConnection(first.pid, [h1, h2], () => read(fresh));
  expect(pgwayCodes).toEqual(directCodes);
  expect({ first: first.values, second: second.values, freshOnSameConnection: freshThere.values })
    .toEqual({ first: expected, second: expected, freshOnSameConnection: defaults });
  expect(second.pid).not.toBe(first.pid);
  expect(freshThere.pid).toBe(first.pid);
}

const P = 'hsp_' + 'p'.repeat(59); // 63 bytes: PostgreSQL truncates longer names to this

describe('SETs around savepoints (simple protocol, one Query per step)', () => {
  const cases: [string, string[]][] = [
    ['ROLLBACK; SET in one query outside a transaction keeps the SET', [
      "ROLLBACK; SET statement_timeout = '13s'"]],
    ['SAVEPOINT; ROLLBACK TO; SET in one query (nothing staged before) keeps the SET', [
      'BEGIN', "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; SET statement_timeout = '14s'", 'COMMIT']],
    ['ROLLBACK TO s; SET in one query after an error keeps the SET', [
      'BEGIN', 'SAVEPOINT s', 'SELECT 1/0', "ROLLBACK TO s; SET statement_timeout = '15s'", 'COMMIT']],
    ['RELEASE of a savepoint made before the first SET also releases the savepoints inside it', [
      'BEGIN', 'SAVEPOINT n', 'SAVEPOINT a', "SET statement_timeout = '16s'", 'SAVEPOINT n', 'RELEASE a', 'ROLLBACK TO n', 'COMMIT']],
    ['RELEASE of an unstaged outer savepoint, then a SET and ROLLBACK TO an older same-named savepoint', [
      'BEGIN', 'SAVEPOINT n', 'SAVEPOINT a', "SET statement_timeout = '116s'", 'SAVEPOINT n', "SET lock_timeout = '117s'",
      'RELEASE a', "SET work_mem = '1180kB'", 'ROLLBACK TO n', 'COMMIT']],
    ['long savepoint names are truncated as PostgreSQL does', [
      'BEGIN', "SET statement_timeout = '17s'", `SAVEPOINT ${P}aaa`, "SET lock_timeout = '18s'", `ROLLBACK TO ${P}bbb`, 'COMMIT']],
    ['quoted savepoint names are case-sensitive', [
      'BEGIN', "SET statement_timeout = '19s'", 'SAVEPOINT "S"', "SET lock_timeout = '20s'", 'SAVEPOINT s',
      "SET work_mem = '2100kB'", 'ROLLBACK TO "S"', 'COMMIT']],
    ['unquoted S folds to s', [
      'BEGIN', "SET statement_timeout = '19s'", 'SAVEPOINT "S"', "SET lock_timeout = '20s'", 'SAVEPOINT s',
      "SET work_mem = '2100kB'", 'ROLLBACK TO S', 'COMMIT']],
    ['a SET in a released savepoint goes with the ROLLBACK of the outer transaction', [
      'BEGIN', "SET statement_timeout = '22s'", 'SAVEPOINT s', "SET lock_timeout = '23s'", 'RELEASE s', 'ROLLBACK']],
    ['RELEASE of an inner savepoint, then ROLLBACK TO the outer', [
      'BEGIN', "SET statement_timeout = '24s'", 'SAVEPOINT a', 'SAVEPOINT b', "SET lock_timeout = '25s'", 'RELEASE b',
      'ROLLBACK TO a', 'COMMIT']],
    ['RESET ALL inside a savepoint rolled back to', [
      "SET statement_timeout = '26s'", 'BEGIN', "SET lock_timeout = '27s'", 'SAVEPOINT s', 'RESET ALL', 'ROLLBACK TO s', 'COMMIT']],
    ['RESET ALL inside a released savepoint', [
      "SET statement_timeout = '28s'", "SET hsp.x = 'one'", 'BEGIN', 'SAVEPOINT s', "SET lock_timeout = '29s'", 'RESET ALL',
      'RELEASE s', "SET work_mem = '3000kB'", 'COMMIT']],
    ['RESET of one setting in a savepoint, error, ROLLBACK TO', [
      "SET statement_timeout = '31s'", 'BEGIN', "SET lock_timeout = '1s'", 'SAVEPOINT s', 'RESET statement_timeout',
      'SELECT 1/0', 'ROLLBACK TO s', 'COMMIT']],
    ['RESET of a custom setting in a savepoint that is released', [
      "SET hsp.x = 'two'", 'BEGIN', "SET lock_timeout = '2s'", 'SAVEPOINT s', 'RESET hsp.x', 'RELEASE s', 'COMMIT']],
    ['COMMIT AND CHAIN ends the savepoints; the chained transaction rolls back', [
      'BEGIN', "SET statement_timeout = '32s'", 'SAVEPOINT s', "SET lock_timeout = '33s'", 'COMMIT AND CHAIN',
      "SET work_mem = '3400kB'", 'ROLLBACK TO s', 'ROLLBACK']],
    ['COMMIT AND CHAIN inside one text with savepoints around it', [
      'BEGIN', "SET statement_timeout = '35s'; SAVEPOINT s; SET lock_timeout = '36s'; COMMIT AND CHAIN; SET work_mem = '3700kB'; SAVEPOINT t; SET statement_timeout = '38s'",
      'ROLLBACK TO t', 'COMMIT']],
    ['ROLLBACK AND CHAIN then a savepoint recovered after an error', [
      'BEGIN', "SET statement_timeout = '39s'", 'SAVEPOINT s', 'ROLLBACK AND CHAIN', "SET lock_timeout = '40s'", 'SAVEPOINT s',
      'SELECT 1/0', 'ROLLBACK TO s', 'COMMIT']],
    ['ROLLBACK TO a savepoint that does not exist, then to one that does', [
      'BEGIN', "SET statement_timeout = '41s'", 'SAVEPOINT s', "SET lock_timeout = '42s'", 'ROLLBACK TO nope', 'ROLLBACK TO s',
      'COMMIT']],
    ['an error in the middle of a text with SAVEPOINT and RELEASE', [
      'BEGIN', "SET statement_timeout = '43s'; SAVEPOINT s; SET lock_timeout = '44s'; SELECT 1/0; RELEASE s", 'ROLLBACK TO s',
      'COMMIT']],
    ['a RELEASE then an error in one text: the savepoint is gone', [
      'BEGIN', "SET statement_timeout = '45s'; SAVEPOINT s; SET lock_timeout = '46s'; RELEASE s; SELECT 1/0", 'ROLLBACK TO s',
      'COMMIT']],
    ['a COMMIT in the middle of a text, then savepoints and an error', [
      "BEGIN; SET statement_timeout = '47s'; COMMIT; BEGIN; SAVEPOINT s; SET lock_timeout = '48s'; ROLLBACK TO s; SET work_mem = '4900kB'; SELECT 1/0", 'ROLLBACK']],
    ['a failed transaction ended with ABORT', [
      'BEGIN', "SET statement_timeout = '50s'", 'SAVEPOINT s', "SET lock_timeout = '51s'", 'SELECT 1/0', 'ABORT']],
    ['a recovered then failed transaction ended with END', [
      'BEGIN', "SET statement_timeout = '52s'", 'SAVEPOINT s', 'SELECT 1/0', 'ROLLBACK TO s', "SET lock_timeout = '53s'",
      'SELECT 1/0', 'END']],
    ['COMMIT AND CHAIN of a failed transaction', [
      'BEGIN', "SET statement_timeout = '54s'", 'SAVEPOINT s', 'SELECT 1/0', 'COMMIT AND CHAIN', "SET lock_timeout = '55s'", 'COMMIT']],
    ['ROLLBACK TO, RELEASE of the same savepoint, then an error', [
      'BEGIN', "SET statement_timeout = '56s'", 'SAVEPOINT a', "SET lock_timeout = '57s'", 'SAVEPOINT b', 'ROLLBACK TO a',
      'RELEASE a', "SET work_mem = '5800kB'", 'SELECT 1/0', 'ROLLBACK']],
    ['ROLLBACK TO the same savepoint twice', [
      'BEGIN', "SET statement_timeout = '59s'", 'SAVEPOINT s', "SET lock_timeout = '60s'", 'ROLLBACK TO s', "SET work_mem = '6100kB'",
      'ROLLBACK TO s', 'COMMIT']],
    ['set_config inside a savepoint', [
      'BEGIN', "SELECT set_config('statement_timeout', '62s', false)", 'SAVEPOINT s', "SELECT set_config('lock_timeout', '63s', false)",
      'ROLLBACK TO s', 'COMMIT']],
    ['SET LOCAL inside a released savepoint', [
      'BEGIN', "SET statement_timeout = '64s'", 'SAVEPOINT s', "SET LOCAL lock_timeout = '65s'", 'RELEASE s', 'COMMIT']],
    ['a SAVEPOINT in an implicit transaction (multi-statement text) fails', [
      "SET statement_timeout = '68s'; SAVEPOINT s; SET lock_timeout = '1s'"]],
    ['a whole transaction with savepoints in one text', [
      "BEGIN; SET statement_timeout = '69s'; SAVEPOINT s; SET lock_timeout = '70s'; ROLLBACK TO s; COMMIT"]],
    ['a reused name: RELEASE the latest, ROLLBACK TO the first', [
      'BEGIN', "SET statement_timeout = '71s'", 'SAVEPOINT s', "SET lock_timeout = '72s'", 'SAVEPOINT s', "SET work_mem = '7300kB'",
      'RELEASE s', 'ROLLBACK TO s', 'COMMIT']],
    ['ROLLBACK; SET in one query in a failed transaction', [
      'BEGIN', "SET statement_timeout = '76s'", 'SELECT 1/0', "ROLLBACK; SET lock_timeout = '77s'"]],
    ['COMMIT; SET in one query in a failed transaction', [
      'BEGIN', 'SELECT 1/0', "COMMIT; SET lock_timeout = '78s'"]],
    ['ROLLBACK TO; SET; COMMIT in one query after an error with nothing staged', [
      'BEGIN', 'SAVEPOINT s', 'SELECT 1/0', "ROLLBACK TO s; SET statement_timeout = '79s'; COMMIT"]],
    ['BEGIN; SAVEPOINT; SET; RELEASE; COMMIT with an earlier savepoint rolled back in one text', [
      "BEGIN; SAVEPOINT a; ROLLBACK TO a; SET statement_timeout = '80s'; COMMIT"]],
    ['a text whose first SAVEPOINT is skipped and whose error stops a second one of the same name', [
      'BEGIN', "SAVEPOINT b; SET statement_timeout = '171s'; SELECT 1/0; SAVEPOINT b", 'ROLLBACK TO b', 'COMMIT']],
    ['DISCARD ALL after a transaction with savepoints', [
      "SET statement_timeout = '81s'", 'BEGIN', 'SAVEPOINT s', "SET lock_timeout = '82s'", 'RELEASE s', 'COMMIT', 'DISCARD ALL',
      "SET work_mem = '8300kB'"]],
    ['psql ON_ERROR_ROLLBACK style with RESET', [
      "SET statement_timeout = '84s'", 'BEGIN', 'SAVEPOINT p', 'RESET statement_timeout', 'RELEASE p', 'SAVEPOINT p', 'SELECT 1/0',
      'ROLLBACK TO p', 'SAVEPOINT p', "SET lock_timeout = '85s'", 'RELEASE p', 'COMMIT']],
  ];
  for (const [name, steps] of cases) it(name, () => compare(steps), 30_000);
});

describe('pipelined Query messages (one write)', () => {
  // Each element is one Query message; all are written at once.
  const cases: [string, string[]][] = [
    ['BEGIN / SET / SAVEPOINT / SET / error / ROLLBACK TO / SET / COMMIT', [
      'BEGIN', "SET statement_timeout = '91s'", 'SAVEPOINT s', "SET lock_timeout = '92s'", 'SELECT 1/0', 'ROLLBACK TO s',
      "SET work_mem = '9300kB'", 'COMMIT']],
    ['autocommit SET first, then a transaction with a rolled back savepoint', [
      "SET statement_timeout = '94s'", 'BEGIN', 'SAVEPOINT s', "SET lock_timeout = '95s'", 'ROLLBACK TO s', 'COMMIT']],
    ['ROLLBACK TO s; SET in one message after an error, pipelined', [
      'BEGIN', 'SAVEPOINT s', 'SELECT 1/0', "ROLLBACK TO s; SET statement_timeout = '96s'", 'COMMIT']],
    ['stale savepoint after RELEASE of an unstaged outer one, pipelined', [
      'BEGIN', 'SAVEPOINT n', 'SAVEPOINT a', "SET statement_timeout = '97s'", 'SAVEPOINT n', 'RELEASE a', 'ROLLBACK TO n', 'COMMIT']],
    ['a SET in a released savepoint, error, COMMIT', [
      "SET statement_timeout = '98s'", 'BEGIN', 'SAVEPOINT s', "SET lock_timeout = '99s'", 'RELEASE s', 'SELECT 1/0', 'COMMIT']],
  ];
  for (const [name, steps] of cases) {
    it(name, async () => {
      const d = await direct();
      await run(d, steps);
      const expected = (await read(d)).values;
      const a = await rawLogin();
      const [h1, h2] = [await connect('trustuser'), await connect('trustuser')];
      a.write(Buffer.concat(steps.map((s) => queryMessage(s))));
      for (let i = 0; i < steps.length; i++) await readCycle(a);
      const readRaw = async (): Promise<{ values: (string | null)[]; pid: number }> => {
        a.write(queryMessage(READ_SQL));
        const row = (await readCycle(a)).rows[0]!;
        return { values: normalize(row.slice(0, GUCS.length)), pid: Number(row[GUCS.length]) };
      };
      const first = await readRaw();
      const second = await onAnotherConnection(first.pid, [h1, h2], readRaw);
      expect({ first: first.values, second: second.values }).toEqual({ first: expected, second: expected });
      expect(second.pid).not.toBe(first.pid);
    }, 30_000);
  }
});

describe('extended protocol', () => {
  type Steps = (q: (cfg: pg.QueryConfig) => Promise<string>, round: number) => Promise<string[]>;

  /** Runs `steps` twice (the second run binds statements already prepared), directly and through pgway. */
  async function twiceLikeDirect(steps: Steps): Promise<void> {
    const run = (c: pg.Client, round: number): Promise<string[]> =>
      steps((cfg) => errorOf(c.query(cfg)).then((e) => sqlstate(e) ?? 'ok'), round);
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const d = await direct();
    for (let round = 1; round <= 2; round++) {
      expect(await run(a, round)).toEqual(await run(d, round));
      const expected = (await read(d)).values;
      const first = await read(a);
      const second = await onAnotherConnection(first.pid, [h1, h2], () => read(a));
      expect({ round, first: first.values, second: second.values }).toEqual({ round, first: expected, second: expected });
    }
  }

  it('named SAVEPOINT / ROLLBACK TO / RELEASE / SET statements (extended protocol), run twice', () =>
    twiceLikeDirect(async (q, round) => [
      await q({ text: 'BEGIN' }),
      await q({ name: `hsp_set1_${round}`, text: `SET statement_timeout = '${100 + round}s'` }),
      await q({ name: 'hsp_sp', text: 'SAVEPOINT s' }),
      await q({ name: `hsp_set2_${round}`, text: `SET lock_timeout = '${110 + round}s'` }),
      await q({ name: 'hsp_div', text: 'SELECT 1/$1::int', values: [0] }),
      await q({ name: 'hsp_rt', text: 'ROLLBACK TO SAVEPOINT s' }),
      await q({ name: `hsp_set3_${round}`, text: `SET work_mem = '${1200 + round}kB'` }),
      await q({ name: 'hsp_rel', text: 'RELEASE s' }),
      await q({ text: 'COMMIT' }),
    ]), 30_000);

  it('named ROLLBACK TO statement after a SET with nothing staged before it (second run skips Parse)', () =>
    twiceLikeDirect(async (q, round) => [
      await q({ text: 'BEGIN' }),
      await q({ name: 'hsp_sp2', text: 'SAVEPOINT s' }),
      await q({ text: `SET statement_timeout = '${130 + round}s'` }),
      await q({ name: 'hsp_rt2', text: 'ROLLBACK TO SAVEPOINT s' }),
      await q({ text: `SET lock_timeout = '${140 + round}s'` }),
      await q({ text: 'COMMIT' }),
    ]), 30_000);
});

describe('temp tables and savepoints', () => {
  /** After `steps`, the client's temp table must still be usable wherever pgway sends it. */
  async function tableStaysUsable(table: string, steps: string[]): Promise<void> {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    await a.query(`CREATE TEMP TABLE ${table} (x int)`);
    await a.query(`INSERT INTO ${table} VALUES (1)`);
    const codes = await run(a, steps);
    const d = await direct();
    await d.query(`CREATE TEMP TABLE ${table} (x int)`);
    await d.query(`INSERT INTO ${table} VALUES (1)`);
    expect(codes).toEqual(await run(d, steps));
    const directExists = (await d.query(`SELECT to_regclass('pg_temp.${table}') IS NOT NULL AS e`)).rows[0].e as boolean;
    expect(directExists).toBe(true);
    const pid = await pidOf(a);
    // Pinned, `a` holds its connection: of two other clients only one gets a connection. Not pinned,
    // both do; the one on `a`'s connection stays, so `a` runs on the other one.
    const code = (p: Promise<unknown>): Promise<string> => errorOf(p).then((e) => sqlstate(e) ?? 'ok');
    await h1.query('BEGIN');
    const p1 = await pidOf(h1);
    const h2Begin = h2.query('BEGIN');
    const bothGot = await Promise.race([h2Begin.then(() => true), sleep(1000).then(() => false)]);
    let onOther: string;
    if (bothGot) {
      const p2 = await pidOf(h2);
      const [stay, go] = p1 === pid ? [h1, h2] : [h2, h1];
      expect([p1, p2]).toContain(pid);
      await go.query('COMMIT');
      onOther = await code(a.query(`SELECT count(*) FROM ${table}`));
      await stay.query('COMMIT');
    } else {
      onOther = await code(a.query(`SELECT count(*) FROM ${table}`));
      await h1.query('COMMIT');
      await h2Begin;
      await h2.query('COMMIT');
    }
    const after = await code(a.query(`SELECT count(*) FROM ${table}`));
    expect({ pinned: !bothGot, query: onOther, after }).toEqual({ pinned: true, query: 'ok', after: 'ok' });
  }

  it('DROP of a temp table undone by ROLLBACK TO after RELEASE of an unstaged outer savepoint keeps the pin', () =>
    tableStaysUsable('hsp_t1', ['BEGIN', 'SAVEPOINT n', 'SAVEPOINT a', 'DROP TABLE hsp_t1', 'SAVEPOINT n', 'RELEASE a', 'ROLLBACK TO n', 'COMMIT']), 30_000);

  it('DROP of a temp table inside a savepoint rolled back to keeps the pin', () =>
    tableStaysUsable('hsp_t2', ['BEGIN', "SET statement_timeout = '5s'", 'SAVEPOINT s', 'DROP TABLE hsp_t2', 'ROLLBACK TO s', 'COMMIT']), 30_000);

  it('DROP of a temp table in a released savepoint, outer ROLLBACK, keeps the pin', () =>
    tableStaysUsable('hsp_t3', ['BEGIN', 'SAVEPOINT s', 'DROP TABLE hsp_t3', 'RELEASE s', 'ROLLBACK']), 30_000);

  it('DROP of a temp table, error, ROLLBACK TO an earlier savepoint keeps the pin', () =>
    tableStaysUsable('hsp_t4', ['BEGIN', "SET lock_timeout = '5s'", 'SAVEPOINT s', "DROP TABLE hsp_t4; SELECT 1/0", 'ROLLBACK TO s', 'COMMIT']), 30_000);

  it('DISCARD TEMP in a savepoint rolled back to keeps the pin', () =>
    tableStaysUsable('hsp_t5', ['BEGIN', "SET lock_timeout = '5s'", 'SAVEPOINT s', 'DISCARD TEMP', 'ROLLBACK TO s', 'COMMIT']), 30_000);

  it('DROP between SAVEPOINT and ROLLBACK TO in one text, after an error, keeps the pin', () =>
    tableStaysUsable('hsp_t6', ['BEGIN', 'SAVEPOINT s', 'SELECT 1/0', 'ROLLBACK TO s; SAVEPOINT t; DROP TABLE hsp_t6; ROLLBACK TO t', 'COMMIT']), 30_000);
});

describe("what a connection holds, as other clients find it", () => {
  it('a SET made after an error and ROLLBACK TO, in one query, never reaches a fresh client', async () => {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const steps = ['BEGIN', 'SAVEPOINT s', 'SELECT 1/0', "ROLLBACK TO s; SET statement_timeout = '151s'", 'UNLISTEN *', 'COMMIT'];
    const d = await direct();
    expect(await run(a, steps)).toEqual(await run(d, steps));
    const pid = (await read(a)).pid;
    const fresh = await connect();
    const freshThere = await onConnection(pid, [h1, h2], () => read(fresh));
    expect(freshThere.pid).toBe(pid);
    // A fresh client has the defaults, as on any direct connection.
    expect(freshThere.values[0]).toBe('0');
  }, 30_000);

  it('a client with the same settings finds its own SET on a connection where a RELEASE and ROLLBACK TO undid another client\'s', async () => {
    // Holders and b all run with statement_timeout = 161s, so none of them makes pgway resync a connection.
    const [h1, h2, b] = [await connect(), await connect(), await connect()];
    for (const c of [h1, h2, b]) await c.query("SET statement_timeout = '161s'");
    const a = await connect();
    await run(a, ['BEGIN', 'SAVEPOINT n', 'SAVEPOINT a', "SET statement_timeout = '161s'", 'SAVEPOINT n', 'RELEASE a', 'ROLLBACK TO n', 'COMMIT']);
    const aHere = await read(a);
    // On a direct connection the SET was rolled back: a reads 0 everywhere; b set 161s itself.
    const bThere = await onConnection(aHere.pid, [h1, h2], () => read(b));
    const aElsewhere = await onAnotherConnection(aHere.pid, [h1, h2], () => read(a));
    expect(bThere.pid).toBe(aHere.pid);
    expect({ aHere: aHere.values[0], b: bThere.values[0], aElsewhere: aElsewhere.values[0] }).toEqual({ aHere: '0', b: '161s', aElsewhere: '0' });
  }, 30_000);
});
