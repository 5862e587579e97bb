// Found by review round 22 (E), and fixed: the chain of undos (UnnamedOwnerChange.next) mends only the NEXT change. A client
// pipelines, in one write:
//   group 1: a failing unnamed Parse (22021: text invalid in UTF8, fails before PostgreSQL drops the
//            old unnamed statement) and a second unnamed Parse (skipped by the server), Sync;
//   group 2: another such failing Parse, Sync;
//   group 3: Bind, Execute, Sync of the unnamed statement.
// Another client's unnamed statement is on the (only) server connection. The skipped Parse's undo
// moves group 2's "before" to the state the first Parse left (the client's own), then the first
// Parse's failure mends only the skipped Parse's record (nobody), not group 2's. Group 2's failure
// then gives the record back to the client, and its Bind runs the OTHER client's statement.
// PostgreSQL answers 26000.
// The second part needs no failing Parse in group 1: an error of any other message first in it (an
// Execute of a portal that does not exist, 34000) makes the server skip two unnamed Parses behind it.
// Undone last first, the second's undo moves group 2's "before" to the first's outcome (the client's
// statement 1), and the first's undo then mends only the second (already undone), not group 2's.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, D, S, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const out: string[][] = [];
  const x = await raw(t);
  x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
  out.push(await read(x));
  const y = await raw(t);
  y.write(cat(BAD_PARSE, P('', "SELECT 'y' AS v"), S, BAD_PARSE, S, B(''), E(''), S));
  out.push(await read(y, 3));
  return out;
}

describe('failing Parse + skipped Parse, then another failing Parse, then a Bind, pipelined', () => {
  it('direct: 22021, 22021, then 26000', async () => {
    expect((await run('direct'))[1]).toEqual(['E:22021', 'Z:I', 'E:22021', 'Z:I', 'E:26000', 'Z:I']);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, never the other client's statement`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
});

async function runSkips(t: Target, use: Buffer): Promise<string[][]> {
  const out: string[][] = [];
  const x = await raw(t);
  x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
  out.push(await read(x));
  const y = await raw(t);
  y.write(cat(E('nope'), P('', "SELECT 'y1' AS v"), P('', "SELECT 'y2' AS v"), S, BAD_PARSE, S, use, S));
  out.push(await read(y, 3));
  return out;
}

describe('an error, then two skipped Parses; a failing Parse; then a Bind or Describe, pipelined', () => {
  it('direct: 34000, 22021, then 26000', async () => {
    expect((await runSkips('direct', cat(B(''), E(''))))[1]).toEqual(['E:34000', 'Z:I', 'E:22021', 'Z:I', 'E:26000', 'Z:I']);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): Bind, never the other client's statement`, async () => {
      expect(await runSkips(gws[k]!, cat(B(''), E('')))).toEqual(await runSkips('direct', cat(B(''), E(''))));
    });
    it(`through pgway (gateway ${k}): Describe, never the other client's statement`, async () => {
      expect(await runSkips(gws[k]!, D('S', ''))).toEqual(await runSkips('direct', D('S', '')));
    });
  }
});
