// (Regression test; the failure below is fixed.) a response pgway synthesizes (the CloseComplete of a client's Close of a statement) that
// is the last thing owed once a ReadyForQuery arrives is emitted while the server's chunk is being
// read (ServerConnection.onFrameEnd -> flushSynthesized with inPush set). Neither onIdle nor the
// sink's onServerReady / onAwaitingClient runs then, so the flow never hears that everything is
// answered: a Bind held for pgway's own Describe is never written (the client hangs), and a
// connection that is free again is never given back (the next client waits until 57P05).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, type Target, answers, upTo, cat, P, B, E, S, H, Q, C } from './helpers/wire-script.js';

let gw: TestGateway; // one server connection, one prepared statement per connection: which copy exists is certain
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 1, query_wait_timeout_ms: 2000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const { raw } = rawTargets();
const safe = (p: Promise<string[]>): Promise<string[]> => p.catch((e: Error) => [`no answer: ${e.message}`]);

describe('a synthesized CloseComplete that is the last response owed after a ReadyForQuery', () => {
  it('a Bind held for the description behind it is written and answered (no hang)', { timeout: 15_000 }, async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const out: string[][] = [];
      a.write(cat(P('st_s1', 'SELECT 1 AS v'), B('st_s1'), E(), S)); // pgway learns what st_s1 returns
      out.push(await safe(answers(a)));
      a.write(cat(P('st_t', 'SELECT 2'), S)); // evicts st_s1's copy from the one connection
      out.push(await safe(answers(a)));
      // One write: the same SQL under a second name (prepared and described again on the connection),
      // Sync; then a Close of st_t (answered by pgway) and a Bind of st_s1, which waits for that description.
      a.write(cat(P('st_s2', 'SELECT 1 AS v'), S, C('S', 'st_t'), B('st_s1'), E(), S));
      out.push(await safe(answers(a, 1, 3000)));
      out.push(await safe(answers(a, 1, 3000)));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual([['1', '2', 'D:1', 'C:SELECT 1', 'Z:I'], ['1', 'Z:I'], ['1', 'Z:I'], ['3', '2', 'D:1', 'C:SELECT 1', 'Z:I']]);
    // pgway: the fourth answer never comes: [..., ['1', 'Z:I'], ['no answer: ...']]
    expect(await run(gw)).toEqual(direct);
  });

  it('a Close and Flush behind a synced request: the connection goes back to the pool', { timeout: 15_000 }, async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const out: string[][] = [];
      a.write(cat(P('st_k1', 'SELECT 1 AS v'), S));
      out.push(await safe(answers(a)));
      a.write(cat(B('st_k1'), E(), S, C('S', 'st_k1'), H));
      out.push(await safe(answers(a)));
      out.push(await safe(upTo(a, '3', 2000)));
      // Client a sits idle (outside any transaction); another client asks for the one connection.
      const b = await raw(t);
      b.write(Q('SELECT 5'));
      out.push(await safe(answers(b, 1, 4000)));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual([['1', 'Z:I'], ['2', 'D:1', 'C:SELECT 1', 'Z:I'], ['3'], ['T', 'D:5', 'C:SELECT 1', 'Z:I']]);
    // pgway: client b waits for the connection client a never gives back, and fails with 57P05.
    expect(await run(gw)).toEqual(direct);
  });
});
