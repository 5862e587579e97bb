// Found by review round 23 A, and fixed: a client's skipped Query is taken off its Query count (queryNotRun), and the
// connection's record moves back with it, but the "before" state an UnnamedOwnerChange captured for a
// later unnamed Parse still carries the old count. Pipelined in one write:
//   group 1: an Execute of a portal that does not exist (34000), then a Query (skipped), Sync;
//   group 2: an unnamed Parse (runs: the client's statement, counted after that Query), Sync;
//   group 3: an unnamed Parse that fails while the server reads it (22021: PostgreSQL keeps the
//            statement of group 2), Sync;
//   group 4: Bind, Execute, Sync of the unnamed statement.
// PostgreSQL runs group 2's statement in group 4. pgway: the Query's skip moves the record (group 3's
// Parse) back one Query, but group 3's undo then restores group 2's record as captured, with the
// count that still included the skipped Query: here() is false, and the Bind gets pgway's 26000.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, Q, S, cat, i16 } from './helpers/wire-script.js';
import { typedMessage, cstring } from './helpers/raw-client.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
// An unnamed Parse whose text is not valid UTF-8: fails as it is read (22021), the old statement kept.
const BAD_PARSE = typedMessage('P', cat(cstring(''), Buffer.from([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0x27, 0xc3, 0x28, 0x27, 0x00]), i16(0)));

async function run(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(
    E('nope'), Q('SELECT 1'), S,
    P('', "SELECT 'y2' AS v"), S,
    BAD_PARSE, S,
    B(''), E(''), S,
  ));
  return [await read(y, 4)];
}

describe('a skipped Query, an unnamed Parse, a failing unnamed Parse, then a Bind, pipelined', () => {
  it('direct: the Bind runs the statement of group 2', async () => {
    expect(await run('direct')).toEqual([['E:34000', 'Z:I', '1', 'Z:I', 'E:22021', 'Z:I', '2', 'D:y2', 'C:SELECT 1', 'Z:I']]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
});
