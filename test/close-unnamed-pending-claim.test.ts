// Found by review round 17, and fixed; what went wrong:
// Review q: a Close of the unnamed statement in a later group than the client's own unnamed Parse,
// which is still unanswered (a pending claim), is forwarded as if the client held the statement. The
// Parse is skipped behind an error in its group, so the server's unnamed statement is still another
// client's, and the forwarded Close drops it: that client's Bind on the same connection gets 26000.
// (A Describe or Bind there waits for the claim: UnnamedStatement.mustWait; a Close does not.)
import { describe, expect, it } from 'vitest';
import { rawTargets, type Target, P, B, E, C, S, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { scenario } = rawTargets();
const gws = oneConnectionGateways();

const run = (t: Target): Promise<string[][]> => scenario(t, [
  ['x', cat(P('', 'SELECT 7'), S)],
  // y's first group fails at its first message: its unnamed Parse is skipped, y has no unnamed statement.
  ['y', cat(P('n', 'SELEC 1'), P('', 'SELECT 8'), S, C('S', ''), S)],
  ['x', cat(B(''), E(''), S)],
]);

describe("a Close of the unnamed statement behind the client's own unnamed Parse still unanswered", () => {
  it("direct: the other client's statement is untouched", async () => {
    expect(await run('direct')).toEqual([['1', 'Z:I'], ['E:42601', 'Z:I'], ['2', 'D:7', 'C:SELECT 1', 'Z:I']]);
  });
  it('through pgway: the same', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });
  it('through pgway (max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!)).toEqual(await run('direct'));
  });
});
