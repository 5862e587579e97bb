// Found by review round 20, and fixed: an extended-protocol COPY FROM STDIN whose data, end and a following unnamed Parse are
// sent in the SAME write as the Execute and its (ignored) Sync, before the server said the COPY began.
// The server ignores that Sync; the COPY fails (bad data / CopyFail) and the server skips up to the
// next Sync, the unnamed Parse included. pgway's writer took the first Sync as the group's end
// (server.groupOpen is read only at the start of a write, when no COPY had begun yet), so the Parse
// carried no undo: pgway took the connection's unnamed statement to be the client's, and its next
// Bind ran ANOTHER client's unnamed statement. PostgreSQL answers 26000.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, copyData, copyFail, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

scratchTable('rvc_copy1');

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

async function run(t: Target, end: Buffer): Promise<string[][]> {
  const name = `rvc_copy${runs++}`;
  const out: string[][] = [];
  const x = await raw(t);
  x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
  out.push(await read(x));
  const y = await raw(t);
  // All in one write: the COPY (a named statement), its ignored Sync, its failing data, an unnamed Parse, the Sync.
  y.write(cat(P(name, 'COPY rvc_copy1 (a) FROM STDIN'), B(name), E(''), S, end, P('', "SELECT 'y' AS v"), S));
  out.push(await read(y));
  y.write(cat(B(''), E(''), S));
  out.push(await read(y));
  return out;
}

const FAIL = copyFail('no');
const BAD_DATA = cat(copyData('not a number\n'), COPY_DONE);

describe('an unnamed Parse skipped behind a failed extended COPY, all sent in one write', () => {
  it('direct: the later Bind gets 26000', async () => {
    const d = await run('direct', BAD_DATA);
    expect(d[1]).toEqual(['1', '2', 'G', 'E:22P02', 'Z:I']);
    expect(d[2]).toEqual(['E:26000', 'Z:I']);
  });
  for (const [what, end] of [['CopyFail', FAIL], ['bad data', BAD_DATA]] as const) {
    for (const k of [0, 1]) {
      it(`through pgway (${what}, gateway ${k}): the same, never the other client's statement`, async () => {
        expect(await run(gws[k]!, end)).toEqual(await run('direct', end));
      });
    }
  }
});
