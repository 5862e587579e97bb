// Found by review round 27 A, and fixed: a Sync read inside a COPY (ignored) before a bad row, then the client, having read
// the COPY's error, ends its request as extended-protocol clients do: CopyDone (ignored) and Sync.
// pgway takes the ReadyForQuery answering that later Sync for the answer to the Sync sent during
// the COPY (Slot.CopySync), and waits for one more that never comes: the connection stays busy for
// good, off by one ReadyForQuery, while the client goes on; another client of the pool is not served.
//   y: Parse/Bind/Execute COPY t FROM STDIN, Flush -> 1, 2, G
//   y: CopyData '1\n', Sync, CopyData 'x\n'        -> E:22P02 (the Sync was read inside the COPY)
//   y: CopyDone, Sync                              -> Z:I
//   y: Query SELECT 5                              -> T, D:5, C, Z:I
//   x (y still there): SHOW statement_timeout      -> T, D:0, C, Z:I
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, S, H, Q, cat, copyData, COPY_DONE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const TABLE = 'r27a_sync_after_error';
scratchTable(TABLE);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);
const until = (c: Awaited<ReturnType<typeof raw>>, type: string) => upTo(c, type, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

describe('a Sync ignored inside a COPY that then fails; the client syncs after the error', () => {
  const run = async (t: Target, then: Buffer): Promise<string[][]> => {
    const y = await raw(t);
    const out: string[][] = [];
    y.write(cat(P('', `COPY ${TABLE} (a) FROM STDIN`), B(''), E(''), H));
    out.push(await until(y, 'G'));
    y.write(cat(copyData('1\n'), S, copyData('x\n')));
    out.push(await until(y, 'E'));
    y.write(then);
    out.push(await read(y));
    y.write(Q('SELECT 5 AS v'));
    out.push(await read(y));
    const x = await raw(t);
    x.write(Q('SHOW statement_timeout'));
    out.push(await read(x, 1, 6000));
    x.destroy();
    y.destroy();
    return out;
  };
  for (const [name, then] of [['CopyDone, Sync', cat(COPY_DONE, S)], ['Sync', S]] as const) {
    it(`${name}: another client is served while y stays`, async () => {
      const direct = await run('direct', then);
      expect(direct.flat().some((m) => m.startsWith('timeout'))).toBe(false);
      for (const gw of gws) expect(await run(gw, then)).toEqual(direct);
    }, 30000);
  }
});
