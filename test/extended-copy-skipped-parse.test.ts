// Found by review round 19 (A), and fixed: an extended-protocol COPY FROM STDIN (Parse, Bind, Execute, Sync, then the
// data, as postgres.js and libpq's pipeline send it). The server ignores that first Sync (it comes
// during the COPY); the COPY fails (CopyFail, or bad data), and the server skips everything up to the
// client's NEXT Sync. An unnamed Parse the client sends between the end of its COPY and that Sync is
// skipped. pgway took the first Sync to end the group (RequestWriter.write: inGroup = false), so it
// registers no undo for that Parse (onParse: `!this.inGroup`) and takes the connection's unnamed
// statement to be this client's, where the server still holds ANOTHER client's: the client's Bind of
// the unnamed statement runs the other client's statement. PostgreSQL answers 26000.
//
// The second part, found by review round 20, and fixed: an extended-protocol COPY FROM STDIN whose data, end and a following unnamed Parse are
// sent in the SAME write as the Execute and its (ignored) Sync, before the server said the COPY began.
// The server ignores that Sync; the COPY fails (bad data / CopyFail) and the server skips up to the
// next Sync, the unnamed Parse included. pgway's writer took the first Sync as the group's end
// (server.groupOpen is read only at the start of a write, when no COPY had begun yet), so the Parse
// carried no undo: pgway took the connection's unnamed statement to be the client's, and its next
// Bind ran ANOTHER client's unnamed statement. PostgreSQL answers 26000.
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, S, copyData, copyFail, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

scratchTable('rv_a_copy');

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

let runs = 0;

/**
 * x leaves its unnamed statement on the (only) server connection; y runs a COPY begun by an Execute
 * of a NAMED statement (x's unnamed statement stays), its Sync, the COPY's failing end, an unnamed
 * Parse and the Sync the server waits for; then a Bind of the unnamed statement, which y does not
 * have (its Parse was skipped). `oneWrite`: the COPY and all after it up to that Sync in one write,
 * before the server said the COPY began (review round 20); otherwise y waits for the CopyInResponse.
 */
async function run(t: Target, end: Buffer, oneWrite = false): Promise<string[][]> {
  // A name of its own each run: with max_prepared_statements 0 a departed client's named statement stays on the connection.
  const name = `rv_copy${runs++}`;
  const out: string[][] = [];
  const x = await raw(t);
  x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
  out.push(await read(x));
  const y = await raw(t);
  const copy = cat(P(name, 'COPY rv_a_copy (a) FROM STDIN'), B(name), E(''), S);
  const rest = cat(end, P('', "SELECT 'y' AS v"), S);
  if (oneWrite) {
    y.write(cat(copy, rest));
  } else {
    y.write(copy);
    out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    y.write(rest);
  }
  out.push(await read(y));
  y.write(cat(B(''), E(''), S));
  out.push(await read(y));
  return out;
}

const FAIL = copyFail('no');
const BAD_DATA = cat(copyData('not a number\n'), COPY_DONE);

describe('an unnamed Parse skipped behind a failed extended-protocol COPY', () => {
  it('direct: the later Bind gets 26000', async () => {
    expect(await run('direct', FAIL)).toEqual([
      ['1', '2', "D:x's secret", 'C:SELECT 1', 'Z:I'],
      ['1', '2', 'G'],
      ['E:57014', 'Z:I'],
      ['E:26000', 'Z:I'],
    ]);
  });

  for (const [what, end] of [['CopyFail', FAIL], ['bad data', BAD_DATA]] as const) {
    it(`through pgway (${what}): the same, never the other client's statement`, async () => {
      expect(await run(gws[0]!, end)).toEqual(await run('direct', end));
    });
    it(`through pgway (${what}, max_prepared_statements 0): the same`, async () => {
      expect(await run(gws[1]!, end)).toEqual(await run('direct', end));
    });
  }
});

describe('the same, all sent in one write, before the server said the COPY began', () => {
  it('direct: the later Bind gets 26000', async () => {
    const d = await run('direct', BAD_DATA, true);
    expect(d[1]).toEqual(['1', '2', 'G', 'E:22P02', 'Z:I']);
    expect(d[2]).toEqual(['E:26000', 'Z:I']);
  });
  for (const [what, end] of [['CopyFail', FAIL], ['bad data', BAD_DATA]] as const) {
    for (const k of [0, 1]) {
      it(`through pgway (${what}, gateway ${k}): the same, never the other client's statement`, async () => {
        expect(await run(gws[k]!, end, true)).toEqual(await run('direct', end, true));
      });
    }
  }
});
