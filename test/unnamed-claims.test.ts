// Found by review round 15 in changes of the same day, and fixed; what went wrong:
// Two unnamed Parses in one extended-protocol group, behind an error: the server skips both, so the
// connection's unnamed statement is still the one another client parsed there. pgway registers an
// undo only for the first (the second replaces the client's own claim: RequestWriter.onParse returns
// early) and that undo yields to the later claim (UnnamedOwnerChange.undo: unnamedClaims moved on),
// so pgway believes the connection holds this client's statement: the client's Bind of the unnamed
// statement runs the other client's statement, where PostgreSQL answers 26000.
// (Found by pool-modes-fuzz seed 844, tx0.)
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, D, S, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw, scenario } = rawTargets();
const gws = oneConnectionGateways();

const steps = (): [string, Buffer][] => [
  // x leaves its unnamed statement on the (only) server connection.
  ['x', cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S)],
  // y: an error first (no such portal), then two unnamed Parses, both skipped by the server.
  ['y', cat(D('P', 'rv_nosuch'), P('', 'SELECT 1'), P('', 'SELECT 2'), S)],
  // y has no unnamed statement.
  ['y', cat(B(''), E(''), S)],
];

const run = (t: Target): Promise<string[][]> => scenario(t, steps());

describe('two unnamed Parses skipped behind an error in one group', () => {
  it('direct: the Bind gets 26000', async () => {
    expect(await run('direct')).toEqual([
      ['1', '2', 'D:x\'s secret', 'C:SELECT 1', 'Z:I'],
      ['E:34000', 'Z:I'],
      ['E:26000', 'Z:I'],
    ]);
  });

  it('through pgway (transaction mode, pool of 1): the same, never the other client\'s statement', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });

  it('through pgway (max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!)).toEqual(await run('direct'));
  });
});

describe('an unnamed Parse skipped behind an error, and another first in the next group of the same write', () => {
  it('the next group binds its own statement, as on a direct connection', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const x = await raw(t);
      x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
      await answers(x, 1, 3000);
      const y = await raw(t);
      // The first group fails before its Parse; the second group's Parse is its own.
      y.write(cat(D('P', 'rv_nosuch'), P('', 'SELECT 1 AS one'), S, P('', 'SELECT 2 AS two'), B(''), E(''), S));
      return answers(y, 2, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['E:34000', 'Z:I', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I']);
    // pgway gave the connection's statement back to x when the first Parse was skipped, over the second: 26000.
    expect(await run(gws[0]!)).toEqual(direct);
  });
});
