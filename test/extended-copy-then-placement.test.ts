// Found by review round 21, and fixed ((a) and (b); (c) is README's 0A000): SQL-level statements named by messages behind an extended COPY's CopyDone, all in ONE
// write. bd817c5 keeps the writer's group open at a CopyDone written after an Execute, whatever the
// Execute did. GroupPlacement.placeForGroup, run at the first message of the write's group, scans
// only up to the first Sync, so it never lays on what the messages after the CopyDone name; and the
// writer (inGroup) skips placeForGroup for them, so placeWithinGroup refuses them with 0A000
// "in the middle of an extended-protocol request ... Send the messages that name it in one write, or
// after a Sync", though the client did both.
// (a) The COPY's Execute fails before the COPY begins (a missing table): PostgreSQL heeds the Sync,
//     the messages after the CopyDone are a new group, and they run.
// (b) A stray CopyDone after a plain SELECT's Execute (PostgreSQL ignores it): the same.
// (c) The COPY runs (the ignored Sync): the messages after it are in the COPY's group, and run there.
// The connection holds another client's statement of the name, so pgway has to lay the client's on.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, Q, copyData, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

scratchTable('rvd_copy1');

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

async function run(t: Target, first: (name: string) => Buffer, n = 2): Promise<string[]> {
  const name = `rvd_c${runs++}`;
  const y = await raw(t);
  y.write(Q("PREPARE rvd_p AS SELECT 'y' AS v"));
  await read(y);
  // Another client's statement of the same name on the (only) connection.
  const x = await raw(t);
  x.write(Q("PREPARE rvd_p AS SELECT 'x' AS v"));
  await read(x);
  y.write(cat(first(name), COPY_DONE, P('', 'EXECUTE rvd_p'), B(''), E(''), S));
  return read(y, n);
}

const MISSING = (n: string) => cat(P(n, 'COPY rvd_missing (a) FROM STDIN'), B(n), E(''), S, copyData('1\n'));
const SELECT = (n: string) => cat(P(n, 'SELECT 1'), B(n), E(''), S);
const COPY = (n: string) => cat(P(n, 'COPY rvd_copy1 (a) FROM STDIN'), B(n), E(''), S, copyData('1\n'));

describe('an extended EXECUTE of a SQL-level statement behind an Execute and a CopyDone, one write', () => {
  it('direct: (a) a COPY failing at its Execute: 42P01, then the EXECUTE runs', async () => {
    expect(await run('direct', MISSING)).toEqual(['1', '2', 'E:42P01', 'Z:I', '1', '2', 'D:y', 'C:SELECT 1', 'Z:I']);
  });
  it('through pgway: (a) the same', async () => {
    expect(await run(gws[0]!, MISSING)).toEqual(await run('direct', MISSING));
  });
  it('direct: (b) a stray CopyDone after a SELECT: ignored, the EXECUTE runs', async () => {
    expect(await run('direct', SELECT)).toEqual(['1', '2', 'D:1', 'C:SELECT 1', 'Z:I', '1', '2', 'D:y', 'C:SELECT 1', 'Z:I']);
  });
  it('through pgway: (b) the same', async () => {
    expect(await run(gws[0]!, SELECT)).toEqual(await run('direct', SELECT));
  });
  it('direct: (c) a COPY that runs: the EXECUTE runs in its group', async () => {
    expect(await run('direct', COPY, 1)).toEqual(['1', '2', 'G', 'C:COPY 1', '1', '2', 'D:y', 'C:SELECT 1', 'Z:I']);
  });
  it('through pgway: (c) the COPY runs, and the EXECUTE, which needs its statement laid on inside the group, is refused (README: 0A000)', async () => {
    const out = await run(gws[0]!, COPY, 1);
    expect(out.slice(0, 4)).toEqual(['1', '2', 'G', 'C:COPY 1']);
    expect(out.slice(4)).toEqual(['E:0A000', 'Z:I']);
  });
});
