// What an extended-protocol message the server refuses or skips leaves behind: nothing, as on a
// direct connection. A SET in a group that fails (on the server's error or on one pgway answers
// itself, a Bind or Describe of a name the client never prepared) is rolled back; a set_config whose
// value pgway cannot read (a binary parameter) or that never runs (a Bind with too few values) does
// not keep its client on the server connection; a Close skipped after an error does not bring back
// a statement whose Parse failed; in a failed transaction block a refused Parse of a shared statement
// leaves the client's other names of it alone, a Describe of a statement the serving connection
// would have to prepare is answered as PostgreSQL answers it there, so are Binds pipelined behind
// pgway's refused Parse of one, and a Parse that ends the block is accepted. Each case runs the same steps
// against PostgreSQL directly (the expectation) and through pgway in transaction mode, pool of 1 or 2.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { cstring, typedMessage } from './helpers/raw-client.js';
import { answers, B, C, cat, D, E, i16, i32, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

let one: TestGateway; // pool of 1
let two: TestGateway; // pool of 2
beforeAll(async () => {
  one = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
  two = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  await adminQuery('DROP TABLE IF EXISTS rge_ins; CREATE TABLE rge_ins (id int); GRANT ALL ON rge_ins TO app');
});
afterAll(async () => {
  await one?.stop();
  await two?.stop();
  await adminQuery('DROP TABLE IF EXISTS rge_ins');
});
const { raw } = rawTargets();

/** Runs [client, write, ReadyForQuery count] steps in order, each client its own raw connection. */
async function steps(t: Target, list: [string, Buffer, number][], ms = 6000): Promise<string[][]> {
  const clients = new Map<string, Awaited<ReturnType<typeof raw>>>();
  const out: string[][] = [];
  for (const [who, bytes, z] of list) {
    let c = clients.get(who);
    if (!c) {
      c = await raw(t);
      clients.set(who, c);
    }
    c.write(bytes);
    out.push(await answers(c, z, ms).catch((e: Error) => [`<${e.message}>`]));
  }
  return out;
}

/** A Bind of `stmt` sending `value` as its one parameter, in binary format. */
const bindBinary = (stmt: string, value: string): Buffer =>
  typedMessage('B', cat(cstring(''), cstring(stmt), i16(1), i16(1), i16(1), i32(Buffer.byteLength(value)), Buffer.from(value), i16(0)));

const SET_CONFIG = "SELECT set_config('work_mem', $1, false) AS s";

describe('a Close skipped after an error leaves a name whose Parse failed free', () => {
  // One write: a named Parse the server refuses, Sync, then a group whose first message fails
  // (Execute of a portal that does not exist: 34000) so the server skips the Close behind it.
  const failedParse = cat(P('a', 'SELECT * FROM rge_no_such_table'), S, E('p1'), C('S', 'a'), S);
  const failedFirst = [['E:42P01', 'Z:I', 'E:34000', 'Z:I']];
  const reuse = [failedParse, cat(P('a', 'SELECT 1 AS one'), S), cat(B('a'), E(), S)];
  const reused = [...failedFirst, ['1', 'Z:I'], ['2', 'D:1', 'C:SELECT 1', 'Z:I']];
  const run = (t: Target, writes: Buffer[]): Promise<string[][]> => steps(t, writes.map((w): [string, Buffer, number] => [
    'A', w, w === writes[0] ? 2 : 1]));
  for (const t of ['direct', 'pgway'] as const) {
    it(`${t}: the name can be prepared again`, async () => {
      expect(await run(t === 'direct' ? t : one, reuse)).toEqual(reused);
    });
    it(`${t}: a Bind of the name gets 26000`, async () => {
      expect(await run(t === 'direct' ? t : two, [failedParse, cat(B('a'), E(), S)])).toEqual([...failedFirst, ['E:26000', 'Z:I']]);
    });
    it(`${t}: the same in a failed transaction block (the Parse refused with 25P02)`, async () => {
      const list: [string, Buffer, number][] = [
        ['A', Q('BEGIN; SELECT 1/0'), 1],
        ['A', cat(P('a', 'SELECT 1 AS one'), S, E('p1'), C('S', 'a'), S), 2],
        ['A', Q('ROLLBACK'), 1],
        ['A', cat(B('a'), E(), S), 1],
      ];
      expect(await steps(t === 'direct' ? t : one, list)).toEqual([
        ['C:BEGIN', 'E:22012', 'Z:E'], ['E:25P02', 'Z:E', 'E:34000', 'Z:E'], ['C:ROLLBACK', 'Z:I'], ['E:26000', 'Z:I'],
      ]);
    });
  }
});

describe('a SET in a group that fails is rolled back, whoever answers the failing message', () => {
  // A's group: SET work_mem (runs), then a message that fails, so the implicit transaction rolls the
  // SET back. B then holds one connection of the pool of 2, so A's next request runs on the other
  // one, where pgway lays A's settings on.
  const script = (bad: Buffer, error: string[]): [[string, Buffer, number][], string[][]] => [[
    ['A', cat(P('', "SET work_mem = '5MB'"), B(''), E(), bad, S), 1],
    ['B', Q('BEGIN'), 1],
    ['A', Q('SHOW work_mem'), 1],
    ['B', Q('COMMIT'), 1],
  ], [['1', '2', 'C:SET', ...error, 'Z:I'], ['C:BEGIN', 'Z:T'], ['T', 'D:4MB', 'C:SHOW', 'Z:I'], ['C:COMMIT', 'Z:I']]];
  const cases: [string, Buffer, string[]][] = [
    ['a Bind of a name the client never prepared (pgway answers 26000)', cat(B('nosuch'), E()), ['E:26000']],
    ['a Describe of a name the client never prepared (pgway answers 26000)', D('S', 'nosuch'), ['E:26000']],
    ['the server\'s own error', cat(P('', 'SELECT 1/0'), B(''), E()), ['1', 'E:22012']],
  ];
  for (const [what, bad, error] of cases) {
    for (const t of ['direct', 'pgway'] as const) {
      it(`${t}: ${what}`, async () => {
        const [list, expected] = script(bad, error);
        expect(await steps(t === 'direct' ? t : two, list)).toEqual(expected);
      });
    }
  }
});

describe('a set_config that did not take effect does not keep the server connection from other clients', () => {
  // With a pool of 1, a client pinned to the only connection would make B wait until its
  // query_wait_timeout and be closed.
  const cases: [string, [string, Buffer, number][], string[][]][] = [
    ['bound with no value: the server refuses the Bind (08P01)', [
      ['A', cat(P('a', SET_CONFIG), B('a'), E(), S), 1],
    ], [['1', 'E:08P01', 'Z:I']]],
    ['bound with a binary value, in a group that then fails on the server\'s error', [
      ['A', cat(P('a', SET_CONFIG), S), 1],
      ['A', cat(bindBinary('a', '7MB'), E(), P('', 'SELECT 1/0'), B(''), E(), S), 1],
    ], [['1', 'Z:I'], ['2', 'D:7MB', 'C:SELECT 1', '1', 'E:22012', 'Z:I']]],
    ['bound with a binary value, in a group that then fails on a Bind pgway refuses', [
      ['A', cat(P('a', SET_CONFIG), S), 1],
      ['A', cat(bindBinary('a', '7MB'), E(), B('nosuch'), E(), S), 1],
    ], [['1', 'Z:I'], ['2', 'D:7MB', 'C:SELECT 1', 'E:26000', 'Z:I']]],
  ];
  for (const [what, first, firstAnswers] of cases) {
    const list: [string, Buffer, number][] = [...first, ['B', Q('SELECT 1 AS one'), 1], ['A', Q('SHOW work_mem'), 1]];
    const expected = [...firstAnswers, ['T', 'D:1', 'C:SELECT 1', 'Z:I'], ['T', 'D:4MB', 'C:SHOW', 'Z:I']];
    for (const t of ['direct', 'pgway'] as const) {
      it(`${t}: ${what}`, { timeout: 15_000 }, async () => {
        expect(await steps(t === 'direct' ? t : one, list)).toEqual(expected);
      });
    }
  }
});

describe('in a failed transaction block', () => {
  // a is prepared (SELECT 2, which the pool has already prepared for another client). In a failed
  // block, one write: Parse b with the same text (refused, 25P02), Sync, then Bind a: a still
  // exists, so the Bind too gets 25P02, and a runs after the ROLLBACK.
  const sameText: [string, Buffer, number][] = [
    ['B', cat(P('x', 'SELECT 2'), S), 1],
    ['A', cat(P('a', 'SELECT 2'), S), 1],
    ['A', cat(Q('BEGIN'), P('', 'SELECT 1/0'), B(''), E(), S), 2],
    ['A', cat(P('b', 'SELECT 2'), S, B('a'), S), 2],
    ['A', Q('ROLLBACK'), 1],
    ['A', cat(B('a'), E(), S), 1],
  ];
  const sameTextAnswers = [['1', 'Z:I'], ['1', 'Z:I'], ['C:BEGIN', 'Z:T', '1', 'E:22012', 'Z:E'], ['E:25P02', 'Z:E', 'E:25P02', 'Z:E'],
    ['C:ROLLBACK', 'Z:I'], ['2', 'D:2', 'C:SELECT 1', 'Z:I']];

  // A prepares s (on connection X). B holds X, so A's transaction runs on Y, which has to prepare
  // s: PostgreSQL describes an existing statement in a failed block (its parameters and NoData),
  // unless it returns rows (25P02).
  const describeOnOther = (sql: string, described: string[]): [[string, Buffer, number][], string[][]] => [[
    ['A', cat(P('s', sql), S), 1],
    ['B', Q('BEGIN'), 1],
    ['A', Q('BEGIN; SELECT 1/0'), 1],
    ['A', cat(D('S', 's'), S), 1],
    ['A', Q('ROLLBACK'), 1],
    ['B', Q('COMMIT'), 1],
  ], [['1', 'Z:I'], ['C:BEGIN', 'Z:T'], ['C:BEGIN', 'E:22012', 'Z:E'], [...described, 'Z:E'], ['C:ROLLBACK', 'Z:I'], ['C:COMMIT', 'Z:I']]];

  for (const t of ['direct', 'pgway'] as const) {
    it(`${t}: a refused Parse of the text of the client's statement a leaves a in place`, async () => {
      expect(await steps(t === 'direct' ? t : one, sameText)).toEqual(sameTextAnswers);
    });
    it(`${t}: the name of a refused Parse of that text is not defined`, async () => {
      const list: [string, Buffer, number][] = [...sameText.slice(0, 3), ['A', cat(P('b', 'SELECT 2'), S, B('b'), S), 2], ['A', Q('ROLLBACK'), 1]];
      expect(await steps(t === 'direct' ? t : one, list)).toEqual([...sameTextAnswers.slice(0, 3), ['E:25P02', 'Z:E', 'E:26000', 'Z:E'], ['C:ROLLBACK', 'Z:I']]);
    });
    it(`${t}: a Describe of a statement without result rows: its parameters, then NoData`, async () => {
      const [list, expected] = describeOnOther('INSERT INTO rge_ins VALUES ($1::int)', ['t', 'n']);
      expect(await steps(t === 'direct' ? t : two, list)).toEqual(expected);
    });
    it(`${t}: a Describe of a statement that returns rows: 25P02`, async () => {
      const [list, expected] = describeOnOther('SELECT id FROM rge_ins WHERE id = $1::int', ['E:25P02']);
      expect(await steps(t === 'direct' ? t : two, list)).toEqual(expected);
    });
  }

  // As describeOnOther, A's statement s is missing on the connection that serves its failed block,
  // where pgway's Parse of it is refused: s is still A's, and each later Bind gets 25P02 too, not
  // 26000 from a connection pgway took to hold s. (SHOW: pgway does not describe it first.)
  const bindsOnOther = (tail: [string, Buffer, number][], answers: string[][]): [[string, Buffer, number][], string[][]] => [[
    ['A', cat(P('s', 'SHOW work_mem'), S), 1],
    ['B', Q('BEGIN'), 1],
    ...tail,
    ['A', Q('ROLLBACK'), 1],
    ['B', Q('COMMIT'), 1],
  ], [['1', 'Z:I'], ['C:BEGIN', 'Z:T'], ...answers, ['C:ROLLBACK', 'Z:I'], ['C:COMMIT', 'Z:I']]];
  const binds: [string, [string, Buffer, number][], string[][]][] = [
    ['two groups in one write', [['A', Q('BEGIN; SELECT 1/0'), 1], ['A', cat(B('s'), S, B('s'), S), 2]],
      [['C:BEGIN', 'E:22012', 'Z:E'], ['E:25P02', 'Z:E', 'E:25P02', 'Z:E']]],
    ['behind the Query that fails the block, in one write', [['A', cat(Q('BEGIN; SELECT 1/0'), B('s'), S, B('s'), S), 3]],
      [['C:BEGIN', 'E:22012', 'Z:E', 'E:25P02', 'Z:E', 'E:25P02', 'Z:E']]],
    ['then after the ROLLBACK, all in one write', [['A', cat(Q('BEGIN; SELECT 1/0'), B('s'), E(), S, Q('ROLLBACK'), B('s'), E(), S, Q('BEGIN')), 5]],
      [['C:BEGIN', 'E:22012', 'Z:E', 'E:25P02', 'Z:E', 'C:ROLLBACK', 'Z:I', '2', 'D:4MB', 'C:SHOW', 'Z:I', 'C:BEGIN', 'Z:T']]],
  ];
  for (const [what, tail, answers] of binds) {
    for (const t of ['direct', 'pgway'] as const) {
      it(`${t}: Binds of a statement the connection lacks, ${what}: 25P02 in the block, never 26000`, async () => {
        const [list, expected] = bindsOnOther(tail, answers);
        expect(await steps(t === 'direct' ? t : two, list)).toEqual(expected);
      });
    }
  }

  // B leaves the statement on the pool's one connection; A, in a failed block, parses the same text
  // under its own name. PostgreSQL refuses a Parse there, except of a statement that ends the block
  // or of an empty text: those it prepares, and the name is A's.
  const endsBlock = (sql: string, begin: string, ran: string[]): [[string, Buffer, number][], string[][]] => [[
    ['B', cat(P('x', sql), S), 1],
    ['A', Q(`${begin}; SELECT 1/0`), 1],
    ['A', cat(P('a', sql), S), 1],
    ['A', cat(B('a'), E(), S), 1],
    ['A', Q('ROLLBACK'), 1],
  ], [['1', 'Z:I'], [...begin.split('; ').map((c) => `C:${c.split(' ')[0]}`), 'E:22012', 'Z:E'], ['1', 'Z:E'], ran, ['C:ROLLBACK', 'Z:I']]];
  const ending: [string, string, string, string[]][] = [
    ['COMMIT', 'COMMIT', 'BEGIN', ['2', 'C:ROLLBACK', 'Z:I']],
    ['ROLLBACK TO', 'ROLLBACK TO sp', 'BEGIN; SAVEPOINT sp', ['2', 'C:ROLLBACK', 'Z:T']],
    ['an empty text', '', 'BEGIN', ['E:25P02', 'Z:E']],
  ];
  for (const [what, sql, begin, ran] of ending) {
    for (const t of ['direct', 'pgway'] as const) {
      it(`${t}: a Parse of ${what}, which the connection already holds, is accepted and defines the name`, async () => {
        const [list, expected] = endsBlock(sql, begin, ran);
        expect(await steps(t === 'direct' ? t : one, list)).toEqual(expected);
      });
    }
  }
});
