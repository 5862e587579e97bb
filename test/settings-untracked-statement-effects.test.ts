// Found by review round 24 A, and fixed:
// Review A (227b019, a Parse's COMMIT classified): with max_prepared_statements 0 (untracked), a named
// statement's effects are staged at its Parse (RequestWriter.onParse), not where it runs. A Parse of
// COMMIT now stages a COMMIT marker when it is parsed, where nothing commits: inside an open transaction,
// SessionState.settle walks that marker later as "a COMMIT of a failed transaction" against the ROLLBACK
// the server reports, and the ROLLBACK's own marker is then left unmatched, so the SETs of the rolled-back
// transaction are applied as committed. pgway lays the rolled-back value on the client's next connection.
// Second case: the marker is where the Parse was, not where the Execute is, so the fix of 227b019 (a
// COMMIT in an extended group commits the SET before it) does not reach a named COMMIT parsed earlier.
// Case 1 passes before 227b019 (a regression); case 2 fails before it too (the fix is incomplete there).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { clientsOfEachTest, onAnotherConnection } from './helpers/pg-helpers.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';
import type { RawClient } from './helpers/raw-client.js';

let gw: TestGateway;
// A gateway per test: each test counts on a pool of two idle connections.
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

const CASES: Record<string, { steps: Buffer[]; want: string }> = {
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
  for (const [name, { steps, want }] of Object.entries(CASES)) {
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
