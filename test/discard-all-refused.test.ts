// DISCARD ALL cannot run in a transaction block. A query string of several statements is one
// (implicitly): such a string fails there (25001), nothing after it runs and what ran before it is
// rolled back. A LISTEN in it, before or after, leaves the session listening to nothing, and pins
// nobody: with a pool of 1, in statement and transaction mode, another client gets the one server
// connection at once. In an explicit block a refused DISCARD ALL aborts it, and a second one gets
// 25P02 there like any other statement.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, Q, rawTargets, type Target } from './helpers/wire-script.js';

const gws: Record<string, TestGateway> = {};
const { raw, script } = rawTargets();
beforeAll(async () => {
  gws.statement = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
  gws.transaction = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { for (const g of Object.values(gws)) await g.stop(); });

async function run(t: Target, first: string): Promise<string[][]> {
  const a = await raw(t); const b = await raw(t);
  a.write(Q(first));
  const ra = await answers(a, 1, 2000).catch((e: Error) => [`timeout ${e.message}`]);
  a.write(Q('SELECT count(*) AS n FROM pg_listening_channels()'));
  const ra2 = await answers(a, 1, 2000).catch((e: Error) => [`timeout ${e.message}`]);
  b.write(Q('SELECT 1 AS one'));
  const rb = await answers(b, 1, 2000).catch((e: Error) => [`timeout ${e.message}`]);
  return [ra, ra2, rb];
}
const want = (first: string): string[][] =>
  [[...(first.startsWith('LISTEN') ? ['C:LISTEN'] : []), 'E:25001', 'Z:I'], ['T', 'D:0', 'C:SELECT 1', 'Z:I'], ['T', 'D:1', 'C:SELECT 1', 'Z:I']];

for (const first of ['DISCARD ALL; LISTEN dq_chan', 'LISTEN dq_chan; DISCARD ALL']) {
  describe(first, () => {
    it('direct: the session listens to nothing; another session answers', async () => {
      expect(await run('direct', first)).toEqual(want(first));
    });
    for (const mode of ['statement', 'transaction']) {
      it(`pgway ${mode} mode, pool 1: the other client gets the connection`, async () => {
        expect(await run(gws[mode]!, first)).toEqual(want(first));
      });
    }
  });
}

describe('DISCARD ALL twice in a transaction block', () => {
  const steps = [Q('BEGIN'), Q('DISCARD ALL'), Q('DISCARD ALL'), Q('ROLLBACK'), Q('SELECT 1 AS one')];
  const expected = [['C:BEGIN', 'Z:T'], ['E:25001', 'Z:E'], ['E:25P02', 'Z:E'], ['C:ROLLBACK', 'Z:I'], ['T', 'D:1', 'C:SELECT 1', 'Z:I']];
  it('direct: the second gets 25P02 in the aborted block', async () => {
    expect(await script('direct', steps)).toEqual(expected);
  });
  it('pgway transaction mode, pool 1: the same', async () => {
    expect(await script(gws.transaction!, steps)).toEqual(expected);
  });
});
