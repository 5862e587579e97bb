// Found by review round 18, and fixed; what went wrong:
// Review s: a Bind (or Describe) of the unnamed statement in a group pipelined behind a group whose
// Query the server skips (an error earlier in that group). pgway decides at write time that the
// Query dropped the client's unnamed statement (RequestWriter.queries counted it) and answers the
// Bind 26000 itself; PostgreSQL skipped the Query, so the statement is still there and runs.
import { describe, expect, it } from 'vitest';
import { rawTargets, answers, upTo, type Target, P, B, E, S, Q, C, D, H, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

const read = (c: Awaited<ReturnType<typeof raw>>, n: number) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

async function bindAfter(t: Target): Promise<string[][]> {
  const c = await raw(t);
  c.write(cat(P('', 'SELECT 6'), S));
  const a = await read(c, 1);
  // Fails at its Bind (1/0 folded at planning): the Query behind it is skipped.
  c.write(cat(P('', 'SELECT 1/0'), B(''), E(''), Q('SELECT 7'), S, P('', 'SELECT 6'), S));
  const b = await read(c, 2);
  // Unnamed Parse of its own, then a group with a named failure and a skipped Query, then Bind.
  c.write(cat(P('zz_b1', 'SELECT 1/0'), B('zz_b1'), E(''), Q('SELECT 7'), S, B(''), E(''), S));
  const d = await read(c, 2);
  return [a, b, d];
}

async function describeAfter(t: Target): Promise<string[][]> {
  const c = await raw(t);
  c.write(cat(P('', 'SELECT 6 AS six'), S));
  const a = await read(c, 1);
  c.write(cat(P('', 'SELECT 1/0'), B(''), E(''), Q('SELECT 7'), S, P('', 'SELECT 6 AS six'), S));
  const b = await read(c, 2);
  c.write(cat(B('', ['x']), E(''), Q('SELECT 7'), S, D('S', ''), B(''), E(''), S));
  const d = await read(c, 2);
  return [a, b, d];
}

describe('Bind of the unnamed statement behind a group whose Query the server skips', () => {
  it('direct: the statement survives the skipped Query and runs', async () => {
    expect(await bindAfter('direct')).toEqual([
      ['1', 'Z:I'],
      ['1', 'E:22012', 'Z:I', '1', 'Z:I'],
      ['1', 'E:22012', 'Z:I', '2', 'D:6', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway (transaction): the same', async () => {
    expect(await bindAfter(gws[0]!)).toEqual(await bindAfter('direct'));
  });
  it('through pgway (transaction, max_prepared_statements 0): the same', async () => {
    expect(await bindAfter(gws[1]!)).toEqual(await bindAfter('direct'));
  });
  it('Describe too (a Bind with a wrong parameter count fails the group): the same as direct', async () => {
    const direct = await describeAfter('direct');
    expect(direct[2]!.slice(-4)).toEqual(['2', 'D:6', 'C:SELECT 1', 'Z:I']);
    expect(await describeAfter(gws[0]!)).toEqual(direct);
    expect(await describeAfter(gws[1]!)).toEqual(direct);
  });
});

// The first version of the fix waited whenever anything was owed: behind only an answer pgway gives itself
// (a Close of the client's named statement) in a group left open by a Flush, nothing ever came, and the
// client hung.
describe('a Bind of the unnamed statement dropped by a Query, behind only a Close pgway answers', () => {
  it('gets 26000 at once, as on a direct connection', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const c = await raw(t);
      const out: string[][] = [];
      c.write(cat(P('', 'SELECT 1'), S));
      out.push(await answers(c, 1, 3000));
      c.write(Q('SELECT 2'));
      out.push(await answers(c, 1, 3000));
      c.write(cat(P('rvs_named', 'SELECT 5'), S));
      out.push(await answers(c, 1, 3000));
      c.write(cat(P('rvs_w', 'SELECT 8'), H));
      out.push(await upTo(c, '1', 3000));
      c.write(cat(C('S', 'rvs_named'), B(''), E(''), S));
      out.push(await answers(c, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct.at(-1)).toEqual(['3', 'E:26000', 'Z:I']);
    expect(await run(gws[0]!)).toEqual(direct);
  });
});
