// The second part (two failing Parses) checks the chain of undos (UnnamedOwnerChange.next).
// Found by review round 21, and fixed: an unnamed Parse that fails before PostgreSQL drops the old unnamed statement (its text
// invalid in the client encoding: 22021), FIRST in its group, with the client's next group (Bind,
// Execute, Sync of the unnamed statement) sent in the SAME write. 8745579 gives the Parse an undo
// that leaves the record naming nobody when it fails, but the undo runs only when the error arrives:
// the Bind of the next group was already written on the record as it was at write time (the
// client's), as UnnamedStatement.parsed sets a claim (mustWait) only for a Parse after other
// messages of its group. The server still holds ANOTHER client's unnamed statement, and runs it.
// PostgreSQL answers 26000.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

// An unnamed Parse whose text has a byte sequence invalid in UTF8 (fails in pq_getmsgstring, 22021).

async function run(t: Target, failing = 1): Promise<string[][]> {
  const out: string[][] = [];
  const x = await raw(t);
  x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
  out.push(await read(x));
  const y = await raw(t);
  // In one write: the failing Parse and its Sync (once or twice), then a Bind/Execute/Sync of the unnamed statement.
  const fails = Array.from({ length: failing }, () => cat(BAD_PARSE, S));
  y.write(cat(...fails, B(''), E(''), S));
  out.push(await read(y, failing + 1));
  return out;
}

describe('a failing unnamed Parse first in its group, the next group pipelined behind it', () => {
  it('direct: 22021, then 26000 (the client has no unnamed statement)', async () => {
    expect(await run('direct')).toEqual([
      ['1', '2', "D:x's secret", 'C:SELECT 1', 'Z:I'],
      ['E:22021', 'Z:I', 'E:26000', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, never the other client's statement`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
});

// The second Parse is written before the first is answered (it begins its group: it does not wait),
// on the record the first left. When the first fails, the second's record of what came before it
// must say nobody's: undone in turn, it would otherwise give the client back a statement it never had.
describe('two failing unnamed Parses, each first in its group, and a Bind, pipelined', () => {
  it('direct: 22021 twice, then 26000', async () => {
    expect((await run('direct', 2))[1]).toEqual(['E:22021', 'Z:I', 'E:22021', 'Z:I', 'E:26000', 'Z:I']);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, never the other client's statement`, async () => {
      expect(await run(gws[k]!, 2)).toEqual(await run('direct', 2));
    });
  }
});
