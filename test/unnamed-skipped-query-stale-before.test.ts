// Found by review rounds 23 A and 24 B, and fixed: a client's skipped Query is taken off its Query count (queryNotRun), and the
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
import { answers, rawTargets, type Target, P, B, E, Q, S, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
// An unnamed Parse whose text is not valid UTF-8: fails as it is read (22021), the old statement kept.

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

// Review round 24 B, of the fix of this file's first case (c9ebccc): UnnamedStatement.queryNotRun mends the records that counted the skipped Query
// only where they equal the client's Query count *now* (`afterQueries === queries`), and
// UnnamedOwnerChange.queryNotRun likewise. When the client has written another Query since (here a
// second one, also skipped later), a record that counted the first skipped Query but not the second
// is left one too high; the second skip no longer reaches it when it rides in the undo of a Parse
// dropped in the same failHead as that second Query (forEachExtra only sees slots still queued).
// Pipelined in one write:
//   group 1: Execute of a portal that does not exist (34000), Query SELECT 1 (skipped), Sync;
//   group 2: unnamed Parse 'y2' (runs: the client's statement), Sync;
//   group 3: unnamed Parse that fails while read (22021: PostgreSQL keeps 'y2'),
//            Query SELECT 2 (skipped behind it), Sync;
//   group 4: Bind '', Execute, Sync.
// PostgreSQL runs 'y2' in group 4. pgway: group 3's undo gives back y2's record counting one Query,
// the client's count is 0 after both skips: here() is false and the Bind gets pgway's 26000.
async function runTwoSkipped(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(
    E('nope'), Q('SELECT 1'), S,
    P('', "SELECT 'y2' AS v"), S,
    BAD_PARSE, Q('SELECT 2'), S,
    B(''), E(''), S,
  ));
  return [await read(y, 4)];
}

describe('two skipped Queries around an unnamed Parse, the second behind a failing Parse, then a Bind', () => {
  it('direct: the Bind runs the statement of group 2', async () => {
    expect(await runTwoSkipped('direct')).toEqual([['E:34000', 'Z:I', '1', 'Z:I', 'E:22021', 'Z:I', '2', 'D:y2', 'C:SELECT 1', 'Z:I']]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await runTwoSkipped(gws[k]!)).toEqual(await runTwoSkipped('direct'));
    });
  }
});
