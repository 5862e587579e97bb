// Found by review round 25 A, and fixed:
// Review A (197c466, RequestWriter.noteUntracked / onBind): with max_prepared_statements 0 (untracked
// named statements) the effects of a named statement are noted by name at its Parse and staged where a
// portal of it runs. The note is made whether or not the server takes the Parse: a Parse of a name the
// connection already holds is refused (42P05), and one after an error in its group is skipped, yet the
// new text's effects replace the ones of the statement that stays. A later Bind/Execute of the name runs
// the old statement on the server while pgway stages the refused one's SET: the client is recorded with
// a value it never set, and the next connection gets it laid on.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { clientsOfEachTest, onAnotherConnection } from './helpers/pg-helpers.js';
import { answers, B, C, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';
import type { RawClient } from './helpers/raw-client.js';

let gw: TestGateway;
// A gateway per test: each test counts on a pool of two idle connections.
beforeEach(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, max_prepared_statements: 0, query_wait_timeout_ms: 4000 }' });
});
afterEach(async () => { await gw?.stop(); });
const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const { raw } = rawTargets();

const READ = Q("SELECT current_setting('work_mem'), pg_backend_pid()");
async function read(c: RawClient): Promise<[string, string]> {
  c.write(READ);
  const got = await answers(c);
  const row = (got.find((s) => s.startsWith('D:')) ?? `D:no row: ${got.join(' ')}`).slice(2).split(',');
  return [row[0]!, row[1]!];
}

const CASES: Record<string, Buffer[]> = {
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
  for (const [name, steps] of Object.entries(CASES)) {
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
