// Found by review round 25 A, and fixed:
// Review A (197c466, RequestWriter.noteUntracked): with max_prepared_statements 0, the effects of
// untracked named statements are kept by name for where a portal of them runs, up to 64 names. The
// 65th forgets the 64 and stages UNFOLLOWED (the pin 'unparseable-session-statement') so that the client
// stays on the connection that holds them. That pin is one a rolled-back transaction takes back
// (Pins' UNDONE_BY_ROLLBACK): parsed inside a transaction block that rolls back (or a request that
// fails), the pin is lifted, but the statements stay prepared on the server (PostgreSQL does not roll
// back a Parse) and their effects are forgotten. Running one of them later sets work_mem on the server
// with nothing staged: the client moved, and its setting was lost. The pin now stays, whatever the
// transaction: the client keeps the connection that holds its statements.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';
import type { RawClient } from './helpers/raw-client.js';

let gw: TestGateway;
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
