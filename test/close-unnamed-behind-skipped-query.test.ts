// Found by review round 24 B, and fixed:
// Review B (c9ebccc area: the Query count and a Close of the unnamed statement). A Close of the
// unnamed statement written while a Query of the client's is still owed its answer: pgway decides
// here() on the guess that the Query ran (it counts it, so the statement seems dropped), answers the
// Close itself (CloseComplete) and never sends it. The server then skips the Query (an error earlier
// in its group): queryNotRun takes it off the count, and the statement is the client's again, though
// PostgreSQL's Close dropped it. A later Bind runs it where PostgreSQL answers 26000.
//   a: Parse '' SELECT 'y1', Sync                                 -> 1, Z
//   a (one write): Execute of a portal that does not exist, Query SELECT 1, Sync   -> E:34000, Z
//                  Close statement '', Sync                       -> 3, Z
//                  Bind '', Execute, Sync                         -> E:26000, Z   (pgway: 2, D:y1, C, Z)
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, C, E, Q, S, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(P('', "SELECT 'y1' AS v"), S));
  const out = [await read(y)];
  y.write(cat(
    E('nope'), Q('SELECT 1'), S,
    C('S', ''), S,
    B(''), E(''), S,
  ));
  out.push(await read(y, 3));
  return out;
}

describe('a Close of the unnamed statement behind a Query the server then skips', () => {
  it('direct: the Close drops the statement, the Bind gets 26000', async () => {
    expect(await run('direct')).toEqual([['1', 'Z:I'], ['E:34000', 'Z:I', '3', 'Z:I', 'E:26000', 'Z:I']]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
});
