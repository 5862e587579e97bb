// Found by review round 25 B, and fixed: Syncs a client sends during a COPY FROM STDIN. PostgreSQL
// ignores one it reads inside the COPY, but answers one it reads after the COPY failed, and a COPY
// fails on a bad row as soon as it reads the CopyData ending it. So a client that sends a bad row,
// a Sync and more in one write gets the Sync answered and the rest run. pgway took every such Sync
// to be ignored: it forwarded the answers right, but took the connection to be still owed a Sync,
// and never gave it back while the client stayed (another client of a pool of one got 57P05).
// Now such a Sync owes a ReadyForQuery unless the COPY succeeds (Slot.CopySync), and one that
// goes unanswered shows when the server answers a later message instead.
//   y: COPY (extended or simple) -> G; its data and Syncs, then more, in one write -> as direct
//   x (another client, y still there): SELECT 42                                   -> T, D:42, C, Z
// A frame of y's other than the COPY's, sent during it, goes unseen by pgway (see RequestWriter);
// if it runs, pgway does not know what it left (a SET), so y keeps its connection: y's next
// transaction finds the SET, and x, on the pool's other connection (`two`), does not.
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, Q, S, H, X, cat, copyData, COPY_DONE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const twoConnections = oneConnectionGateways(2);
const TABLE = 'copy_sync_inside';
scratchTable(TABLE);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

const EXTENDED = cat(P('', `COPY ${TABLE} (a) FROM STDIN`), B(''), E(''), H);
const SIMPLE = Q(`COPY ${TABLE} (a) FROM STDIN`);
const GROUP = cat(P('', "SELECT 'g' AS v"), B(''), E(''), S);

interface Case {
  name: string;
  copy: Buffer;
  /** Sent in one write once the COPY began. */
  rest: Buffer;
  /** ReadyForQuery messages `rest` gets directly. */
  readies: number;
  /** Queries y sends after, one at a time. */
  then?: string[];
  /** What y sends after `rest` was answered, answered by one ReadyForQuery. */
  thenRaw?: Buffer;
  /** Whether x is served while y stays (else once y left). */
  xWhileYStays?: boolean;
  /** Through gateways with two server connections. */
  two?: boolean;
}

const cases: Case[] = [
  { name: 'extended: a bad row, a Sync, another group', copy: EXTENDED, rest: cat(copyData('x\n'), S, GROUP), readies: 2, xWhileYStays: true, two: true },
  { name: 'extended: a bad row, two Syncs, another group', copy: EXTENDED, rest: cat(copyData('x\n'), S, S, GROUP), readies: 3, xWhileYStays: true, two: true },
  { name: 'extended: a good row, a Sync (ignored), a bad row, a Sync, another group', copy: EXTENDED, rest: cat(copyData('1\n'), S, copyData('x\n'), S, GROUP), readies: 2, xWhileYStays: true, two: true },
  { name: 'extended: a bad row, a Sync, a Query', copy: EXTENDED, rest: cat(copyData('x\n'), S, Q('SELECT 2 AS v')), readies: 2, xWhileYStays: true, two: true },
  { name: 'extended: good rows, a Sync, CopyDone, a Sync', copy: EXTENDED, rest: cat(copyData('1\n'), S, copyData('2\n'), COPY_DONE, S), readies: 1, xWhileYStays: true },
  { name: 'simple: a bad row, a Sync, a Query', copy: SIMPLE, rest: cat(copyData('x\n'), S, Q('SELECT 2 AS v')), readies: 3, xWhileYStays: true, two: true },
  { name: 'simple: a bad row, two Syncs', copy: SIMPLE, rest: cat(copyData('x\n'), S, S), readies: 3, xWhileYStays: true },
  { name: 'simple: a good row, a Sync, CopyDone, a Query', copy: SIMPLE, rest: cat(copyData('1\n'), S, COPY_DONE, Q('SELECT 3 AS v')), readies: 2, xWhileYStays: true },
  // The Sync went unanswered: the next Query's answer shows it.
  { name: 'simple: a good row, a Sync (ignored), a bad row; then a Query', copy: SIMPLE, rest: cat(copyData('1\n'), S, copyData('x\n')), readies: 1, then: ['SELECT 5 AS v'], xWhileYStays: true },
  { name: 'extended: a good row, a Sync (ignored), a bad row, a Sync; then a Query', copy: EXTENDED, rest: cat(copyData('1\n'), S, copyData('x\n'), S), readies: 1, then: ['SELECT 5 AS v'], xWhileYStays: true },
  // The same, with the CopyDone the client sends after the failure (the server drops it).
  { name: 'simple: a good row, a Sync (ignored), a bad row; then CopyDone and a Query', copy: SIMPLE, rest: cat(copyData('1\n'), S, copyData('x\n')), readies: 1, thenRaw: cat(COPY_DONE, Q('SELECT 6 AS v')), xWhileYStays: true },
  // The same, and y leaves without sending more: its connection is not lost to the pool.
  { name: 'simple: a good row, a Sync (ignored), a bad row; then y leaves', copy: SIMPLE, rest: cat(copyData('1\n'), S, copyData('x\n')), readies: 1 },
  { name: 'extended: a bad row, a Sync, a SET; y sees it, x does not', copy: EXTENDED, rest: cat(copyData('x\n'), S, Q("SET statement_timeout = '123s'")), readies: 2, then: ['SHOW statement_timeout'], xWhileYStays: true, two: true },
];

async function run(t: Target, c: Case): Promise<string[][]> {
  const y = await raw(t);
  y.write(c.copy);
  const out = [await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`])];
  y.write(c.rest);
  out.push(await read(y, c.readies));
  if (c.thenRaw) {
    y.write(c.thenRaw);
    out.push(await read(y));
  }
  for (const sql of c.then ?? []) {
    y.write(Q(sql));
    out.push(await read(y));
  }
  if (!c.xWhileYStays) {
    y.write(X);
    await y.waitClosed(3000).catch(() => undefined);
  }
  const x = await raw(t);
  x.write(Q('SHOW statement_timeout'));
  out.push(await read(x, 1, 6000));
  x.destroy();
  y.destroy();
  return out;
}

describe('Syncs sent during a COPY from the client', () => {
  for (const c of cases) {
    it(`${c.name}: through pgway as directly, and another client is served`, async () => {
      const direct = await run('direct', c);
      expect(direct.flat().some((m) => m.startsWith('timeout'))).toBe(false);
      for (const gw of c.two ? twoConnections : gws) expect(await run(gw, c)).toEqual(direct);
    }, 30000);
  }
});
