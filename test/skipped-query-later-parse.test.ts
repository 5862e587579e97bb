// Found by review round 17, and fixed; what went wrong:
// Review q: a Query skipped behind an error is taken back from the client's Query count when the
// error arrives (queryNotRun), but an unnamed Parse of a later group, written before that error came
// back, recorded the count before the take-back (unnamedAfterQueries): the client's own unnamed
// statement is then refused 26000 in its next request, where PostgreSQL runs it.
import { describe, expect, it } from 'vitest';
import { rawTargets, answers, type Target, P, B, E, Q, S, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

const run = async (t: Target): Promise<string[][]> => {
  const c = await raw(t);
  const out: string[][] = [];
  // Group 1 fails at its Bind (1/0 folded at planning): the Query behind it is skipped.
  c.write(cat(P('', 'SELECT 1/0'), B(''), E(''), Q('SELECT 2'), S, P('', 'SELECT 3'), S));
  out.push(await answers(c, 2, 4000).catch((e: Error) => [`timeout: ${e.message}`]));
  c.write(cat(B(''), E(''), S));
  out.push(await answers(c, 1, 4000).catch((e: Error) => [`timeout: ${e.message}`]));
  return out;
};

describe('an unnamed Parse pipelined after a group whose Query the server skipped', () => {
  it('direct: the statement parsed after it runs in the next request', async () => {
    expect(await run('direct')).toEqual([['1', 'E:22012', 'Z:I', '1', 'Z:I'], ['2', 'D:3', 'C:SELECT 1', 'Z:I']]);
  });
  it('through pgway: the same', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });
  it('through pgway (max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!)).toEqual(await run('direct'));
  });
});
