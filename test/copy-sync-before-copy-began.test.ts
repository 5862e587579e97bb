// Found by review round 27 A, and fixed: a Sync sent before the server said a COPY began (pipelined with the COPY's Query and a
// bad row). The COPY fails at the bad row, before the server reads the Sync, so PostgreSQL answers
// the Sync. pgway's beginCopyIn takes every Sync sent before CopyInResponse to be ignored, so it
// takes that Sync's ReadyForQuery for the next Query's: the connection is given back while that
// Query still runs, and its answer goes to the next client.
//   y: Query COPY t FROM STDIN, CopyData 'x\n', Sync, Query SELECT pg_sleep(0.5), 2   (one write)
//      direct: G, E:22P02, Z:I, Z:I, T, D, C, Z:I
//   x (meanwhile): SHOW statement_timeout -> T, D:0, C, Z:I
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, S, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const TABLE = 'r27a_sync_before_copy';
scratchTable(TABLE);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

describe('a Sync pipelined before a COPY began, the COPY failing on a row before it', () => {
  const run = async (t: Target): Promise<string[][]> => {
    const y = await raw(t);
    const out: string[][] = [];
    y.write(cat(Q(`COPY ${TABLE} (a) FROM STDIN`), copyData('x\n'), S, Q("SELECT pg_sleep(0.5)::text AS s, 'y' AS v")));
    out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    out.push(await read(y, 2));
    const x = await raw(t);
    x.write(Q('SHOW statement_timeout'));
    out.push(await read(x, 1, 6000));
    out.push(await read(y));
    x.destroy();
    y.destroy();
    return out;
  };
  it('the Query behind it is answered to y, and x gets its own answer', async () => {
    const direct = await run('direct');
    expect(direct.flat().some((m) => m.startsWith('timeout'))).toBe(false);
    for (const gw of gws) expect(await run(gw)).toEqual(direct);
  }, 30000);
});
