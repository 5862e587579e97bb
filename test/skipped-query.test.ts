// Found by review round 15 in changes of the same day, and fixed; what went wrong:
// A simple Query that PostgreSQL skips (it comes after an error inside an extended-protocol group
// the client has not synced yet: everything up to the Sync is ignored) does not drop the unnamed
// statement. pgway counts every Query the client sends (RequestWriter.queries), so a client that
// keeps its connection (a pin: LISTEN) and binds its unnamed statement afterwards gets 26000.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, type Target, P, B, E, S, Q, cat } from './helpers/wire-script.js';

let gw: TestGateway;
const { script } = rawTargets();

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

const steps = (): Buffer[] => [
  Q('LISTEN rv_skipped'),
  // The Bind fails (22012, the planner folds 10 / 0): the Query behind it is skipped by the server, as is everything up to the Sync.
  cat(P('', 'SELECT 10 / $1::int'), B('', ['0']), E(''), Q('SELECT 2'), S),
  // The unnamed statement is still there.
  cat(B('', ['5']), E(''), S),
];

async function run(t: Target): Promise<string[][]> {
  return script(t, steps());
}

describe('a Query the server skips after an error in an open group', () => {
  it('direct: the unnamed statement survives the skipped Query', async () => {
    expect(await run('direct')).toEqual([
      ['C:LISTEN', 'Z:I'],
      ['1', 'E:22012', 'Z:I'],
      ['2', 'D:2', 'C:SELECT 1', 'Z:I'],
    ]);
  });

  it('through pgway (pinned client, same connection): the same', async () => {
    expect(await run(gw)).toEqual(await run('direct'));
  });
});
