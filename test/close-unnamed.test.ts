// Found by review round 16, and fixed; what went wrong:
// Review round 16 (p): a Close of the unnamed statement ('C', 'S', '') from a client that has none on
// the connection is forwarded as it is: it closes the unnamed statement another client parsed there,
// whose later Bind (on that same connection, where README says it lives) then gets 26000. PostgreSQL
// closes only the client's own (none: a no-op). pgway answers a Close of a named statement the client
// does not hold itself (CloseComplete), leaving other clients' statements alone; not the unnamed one.
import { describe, expect, it } from 'vitest';
import { rawTargets, type Target, P, B, E, C, S, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { scenario } = rawTargets();
const gws = oneConnectionGateways();

const run = (t: Target): Promise<string[][]> => scenario(t, [
  ['x', cat(P('', 'SELECT 7'), S)],
  // y has no unnamed statement: its Close of one does nothing.
  ['y', cat(C('S', ''), S)],
  ['x', cat(B(''), E(''), S)],
]);

describe("a Close of the unnamed statement by a client that has none", () => {
  it("direct: the other client's statement is untouched", async () => {
    expect(await run('direct')).toEqual([['1', 'Z:I'], ['3', 'Z:I'], ['2', 'D:7', 'C:SELECT 1', 'Z:I']]);
  });

  it('through pgway: the same', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });

  it('through pgway (max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!)).toEqual(await run('direct'));
  });
});
