// Found by review rounds 24 A and 25 A, and fixed: the session effects of named statements pgway does
// not track (max_prepared_statements 0; session mode alike), staged where a portal of them runs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { clientsOfEachTest, onAnotherConnection } from './helpers/pg-helpers.js';
import { answers, B, C, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';
import type { RawClient } from './helpers/raw-client.js';

let gw: TestGateway;
beforeEach(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, max_prepared_statements: 0, query_wait_timeout_ms: 4000 }' });
});
afterEach(async () => { await gw?.stop(); });
const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const { raw } = rawTargets();
const run = (sql: string): Buffer => cat(P('', sql), B(''), E(''));

const READ = Q("SELECT current_setting('work_mem'), pg_backend_pid()");
async function read(c: RawClient): Promise<[string, string]> {
  c.write(READ);
  const got = await answers(c);
  const row = (got.find((s) => s.startsWith('D:')) ?? `D:no row: ${got.join(' ')}`).slice(2).split(',');
  return [row[0]!, row[1]!];
}

// Review A (227b019, a Parse's COMMIT classified): with max_prepared_statements 0 (untracked), a named
// statement's effects are staged at its Parse (RequestWriter.onParse), not where it runs. A Parse of
// COMMIT now stages a COMMIT marker when it is parsed, where nothing commits: inside an open transaction,
// SessionState.settle walks that marker later as "a COMMIT of a failed transaction" against the ROLLBACK
// the server reports, and the ROLLBACK's own marker is then left unmatched, so the SETs of the rolled-back
// transaction are applied as committed. pgway lays the rolled-back value on the client's next connection.
// Second case: the marker is where the Parse was, not where the Execute is, so the fix of 227b019 (a
// COMMIT in an extended group commits the SET before it) does not reach a named COMMIT parsed earlier.
// Case 1 passes before 227b019 (a regression); case 2 fails before it too (the fix is incomplete there).
const COMMIT_CASES: Record<string, { steps: Buffer[]; want: string }> = {
  'BEGIN, a Parse of COMMIT (not run), SET, ROLLBACK': {
    steps: [Q('BEGIN'), cat(P('c', 'COMMIT'), S), Q("SET work_mem = '1234kB'"), Q('ROLLBACK')],
    want: '4MB',
  },
  'BEGIN, a Parse of COMMIT, then a group: SET, the COMMIT, an error': {
    steps: [Q('BEGIN'), cat(P('c', 'COMMIT'), S), cat(run("SET work_mem = '1234kB'"), B('c'), E(''), run('SELECT 1/0'), S)],
    want: '1234kB',
  },
};

describe('max_prepared_statements 0: a named COMMIT parsed in one request', () => {
  for (const [name, { steps, want }] of Object.entries(COMMIT_CASES)) {
    it(`${name}: the client has the value a direct connection has (${want}), on every connection`, async () => {
      const d = await raw('direct' as Target);
      for (const s of steps) {
        d.write(s);
        await answers(d);
      }
      expect((await read(d))[0]).toBe(want);

      const [h1, h2] = [await testClients.connect(gw.url('app')), await testClients.connect(gw.url('app'))];
      const x = await raw(gw);
      for (const s of steps) {
        x.write(s);
        await answers(x);
      }
      const [here, pid] = await read(x);
      const [there] = await onAnotherConnection(Number(pid), [h1, h2], () => read(x));
      expect({ here, there }).toEqual({ here: want, there: want });
    });
  }
});

// Review A (197c466, RequestWriter.noteUntracked / onBind): with max_prepared_statements 0 (untracked
// named statements) the effects of a named statement are noted by name at its Parse and staged where a
// portal of it runs. The note is made whether or not the server takes the Parse: a Parse of a name the
// connection already holds is refused (42P05), and one after an error in its group is skipped, yet the
// new text's effects replace the ones of the statement that stays. A later Bind/Execute of the name runs
// the old statement on the server while pgway stages the refused one's SET: the client is recorded with
// a value it never set, and the next connection gets it laid on.
const REUSED_NAME_CASES: Record<string, Buffer[]> = {
  'a second Parse of the same name, refused (42P05), then the name run': [
    cat(P('s', "SET work_mem = '1111kB'"), S),
    cat(P('s', "SET work_mem = '2222kB'"), S),
    cat(B('s'), E(''), S),
  ],
  'a Parse skipped behind an error in its group, then the name run': [
    cat(P('s', "SET work_mem = '1111kB'"), S),
    cat(P('', 'SELECT 1/0'), B(''), E(''), P('s', "SET work_mem = '2222kB'"), S),
    cat(B('s'), E(''), S),
  ],
  'the name closed, then made again by an SQL PREPARE (one namespace), then run': [
    cat(P('s', "SET work_mem = '2222kB'"), S),
    cat(C('S', 's'), S),
    Q("SET work_mem = '1111kB'"),
    Q('PREPARE s AS SELECT 1'),
    cat(B('s'), E(''), S),
  ],
};

describe('max_prepared_statements 0: a named Parse the server does not take', () => {
  for (const [name, steps] of Object.entries(REUSED_NAME_CASES)) {
    it(`${name}: the client has the value the statement that ran set (1111kB), on every connection`, async () => {
      const d = await raw('direct' as Target);
      const directAnswers: string[][] = [];
      for (const s of steps) {
        d.write(s);
        directAnswers.push(await answers(d));
      }
      expect((await read(d))[0]).toBe('1111kB');

      const [h1, h2] = [await testClients.connect(gw.url('app')), await testClients.connect(gw.url('app'))];
      const x = await raw(gw);
      const gwAnswers: string[][] = [];
      for (const s of steps) {
        x.write(s);
        gwAnswers.push(await answers(x));
      }
      expect(gwAnswers).toEqual(directAnswers);
      const [here, pid] = await read(x);
      const [there] = await onAnotherConnection(Number(pid), [h1, h2], () => read(x));
      expect({ here, there }).toEqual({ here: '1111kB', there: '1111kB' });
    });
  }
});

// Review A (197c466, RequestWriter.noteUntracked): with max_prepared_statements 0, the effects of
// untracked named statements are kept by name for where a portal of them runs, up to 64 names. The
// 65th forgets the 64 and stages UNFOLLOWED (the pin 'unparseable-session-statement') so that the client
// stays on the connection that holds them. That pin is one a rolled-back transaction takes back
// (Pins' UNDONE_BY_ROLLBACK): parsed inside a transaction block that rolls back (or a request that
// fails), the pin is lifted, but the statements stay prepared on the server (PostgreSQL does not roll
// back a Parse) and their effects are forgotten. Running one of them later sets work_mem on the server
// with nothing staged: the client moved, and its setting was lost. The pin now stays, whatever the
// transaction: the client keeps the connection that holds its statements.
const parses: Buffer[] = [];
for (let i = 1; i <= 64; i++) parses.push(P(`s${i}`, `SET work_mem = '${1000 + i}kB'`));
const STEPS: Buffer[] = [
  cat(...parses, S),
  Q('BEGIN'),
  cat(P('s65', "SET work_mem = '9999kB'"), S),
  Q('ROLLBACK'),
  cat(B('s1'), E(''), S),
];

describe('max_prepared_statements 0: a 65th named statement with effects parsed in a rolled-back block', () => {
  it('a statement of the first 64 run later: the client keeps its value (1001kB) on every connection', async () => {
    const d = await raw('direct' as Target);
    const directAnswers: string[][] = [];
    for (const s of STEPS) {
      d.write(s);
      directAnswers.push(await answers(d));
    }
    expect((await read(d))[0]).toBe('1001kB');

    const h1 = await testClients.connect(gw.url('app'));
    const x = await raw(gw);
    const gwAnswers: string[][] = [];
    for (const s of STEPS) {
      x.write(s);
      gwAnswers.push(await answers(x));
    }
    expect(gwAnswers).toEqual(directAnswers);
    const [here, pid] = await read(x);
    // Past 64 pgway no longer follows them: the client keeps its connection for good, rolled back or not.
    await h1.query('BEGIN'); // takes the connection x gave back, if it gave one back
    const [later, laterPid] = await read(x);
    await h1.query('COMMIT');
    expect({ here, later, same: laterPid === pid }).toEqual({ here: '1001kB', later: '1001kB', same: true });
  });
});
