// Found by review round 19 (A), and fixed: a client pipelines, in one write, an extended-protocol COPY FROM STDIN
// (Parse, Bind, Execute, Sync), its data and CopyDone, then a simple Query and a Sync. The server
// ignores the first Sync (it comes during the COPY), so the Query runs INSIDE the extended group the
// COPY began, not synced yet, which leaves a PostgreSQL 18 session broken (the next statement fails
// with XX000 "StartTransactionCommand: unexpected state STARTED"). pgway closes a connection where a
// Query ran inside a group (ServerConnection.queryInsideGroup), but counts one there only if the
// connection is unsynced when the Query is written (noteClientFrame: `else if (this.unsynced)`): here
// pgway had seen the Sync and the CopyInResponse had not arrived yet (beginCopyIn finds the CopyDone
// and a Sync after it, so it does not set unsynced either). The connection goes back to the pool
// broken, and the NEXT client's first Query fails with XX000. On a direct connection the other
// client has its own session and is unaffected.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, Q, F, copyData, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

scratchTable('rv_a_copy3');

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

/** y's pipelined COPY and Query; then x, another client, on the pool's only server connection. */
async function run(t: Target, inside: Buffer = Q('SELECT 7')): Promise<{ y: string[]; x: string[] }> {
  const name = `rv_cq${runs++}`;
  const y = await raw(t);
  y.write(cat(P(name, 'COPY rv_a_copy3 (a) FROM STDIN'), B(name), E(''), S, copyData('1\n'), COPY_DONE, inside, S));
  const ya = await read(y, 2);
  const x = await raw(t);
  x.write(Q('SELECT 42'));
  return { y: ya, x: await read(x) };
}

describe('a Query pipelined behind an extended COPY, before the Sync that ends its group', () => {
  it('direct: the other client is unaffected', async () => {
    expect(await run('direct')).toEqual({
      y: ['1', '2', 'G', 'C:COPY 1', 'T', 'D:7', 'C:SELECT 1', 'Z:T', 'Z:I'],
      x: ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    });
  });
  it('through pgway (transaction): the next client does not get XX000', async () => {
    expect((await run(gws[0]!)).x).toEqual((await run('direct')).x);
  });
  it('through pgway (transaction, max_prepared_statements 0): the same', async () => {
    expect((await run(gws[1]!)).x).toEqual((await run('direct')).x);
  });

  // A FunctionCall there too (abs(-5)): PostgreSQL 18 breaks the session the same way.
  it('through pgway, a FunctionCall there: the next client does not get XX000', async () => {
    const fn = F(1397, [Buffer.from('-5')], 0, 0);
    const direct = await run('direct', fn);
    expect(direct.x).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
    expect((await run(gws[0]!, fn)).x).toEqual(direct.x);
  });
});
