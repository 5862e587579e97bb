// Found by review round 26 (a lead), and fixed: each Query, Sync and FunctionCall a client writes
// numbers a request, and its ReadyForQuery ends it; what pgway staged for a request (a SET) is settled when
// that request's answer comes. A Sync the server never answers (sent before a COPY FROM STDIN
// began, read inside it; one sent during it, which pgway now keeps back; a Query skipped behind an
// error in a group) still took a number, so
// the later requests written before the connection went idle were settled a request late, against
// the next one's outcome: a committed SET followed by a failing statement was taken to have
// failed. The connection was then taken to hold no SET: the next client found the SET there, and
// the client lost it on its next connection.
//   y: Parse '' COPY t FROM STDIN, Bind, Execute, Sync            -> 1, 2, G (that Sync is read inside the COPY)
//   y: CopyData '1\n', CopyDone, Sync, Query SET statement_timeout = '7s', Query SELECT 1/0
//                                                                 -> C:COPY 1, Z, C:SET, Z, E:22012, Z
//   x: SHOW statement_timeout -> 0;  y: SHOW statement_timeout -> 7s
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, Q, S, H, cat, copyData, COPY_DONE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const TABLE = 'copy_request_count';
scratchTable(TABLE);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);
const SHOW = Q('SHOW statement_timeout');

/** After the first write, each write, with the ReadyForQuery messages it gets directly. */
type Writes = [Buffer, number][];

/** `first` is answered up to a message of type `until` (a COPY's CopyInResponse, an error). */
async function run(t: Target, first: Buffer, writes: Writes, until = 'G'): Promise<string[][]> {
  const y = await raw(t);
  y.write(first);
  const out = [await upTo(y, until, 3000).catch((e: Error) => [`timeout: ${e.message}`])];
  for (const [data, readies] of writes) {
    y.write(data);
    out.push(await read(y, readies));
  }
  const x = await raw(t);
  x.write(SHOW);
  out.push(await read(x, 1, 6000));
  x.destroy();
  y.write(SHOW);
  out.push(await read(y));
  y.destroy();
  return out;
}

const AFTER = cat(Q("SET statement_timeout = '7s'"), Q('SELECT 1/0'));
const cases: [string, Buffer, Writes, string?][] = [
  ['a Sync sent before the COPY began', cat(P('', `COPY ${TABLE} (a) FROM STDIN`), B(''), E(''), S), [[cat(copyData('1\n'), COPY_DONE, S, AFTER), 3]]],
  ['a Sync sent during the COPY', Q(`COPY ${TABLE} (a) FROM STDIN`), [[cat(copyData('1\n'), S, COPY_DONE, AFTER), 3]]],
  // No COPY: a Query inside a group, skipped behind its error (the COPY only begins each case).
  ['a Query skipped behind an error in a group', Q(`COPY ${TABLE} (a) FROM STDIN`), [
    [cat(copyData('1\n'), COPY_DONE), 1],
    [cat(P('', 'SELECT 1/0'), B(''), E(''), Q('SELECT 2'), S, AFTER), 3],
  ]],
  // Found by review round 27 A, and fixed: the same skip behind an error answered up to a Flush (no
  // Sync queued), where pgway counted the Query written but never answered.
  ['a Query skipped behind an error answered up to a Flush', cat(P('', 'SELEC 1'), H), [[cat(Q('SELECT 1'), S, AFTER), 3]], 'E'],
];

describe('requests the server never answers, then a SET and a failing statement', () => {
  for (const [name, first, writes, until] of cases) {
    it(`${name}: the SET stays the client's, and only the client's`, async () => {
      const direct = await run('direct', first, writes, until);
      expect(direct.at(-1)).toContain('D:7s');
      for (const gw of gws) expect(await run(gw, first, writes, until)).toEqual(direct);
    }, 30000);
  }
});
