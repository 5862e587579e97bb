// Found by review round 27 A, and fixed: a COPY whose error comes late (a foreign key checked as the COPY ends), with a Sync
// sent during it. That Sync was read inside the COPY, before the CopyDone that failed it, so
// PostgreSQL ignores it; pgway takes the ReadyForQuery of the client's own Sync after the CopyDone
// for it (Slot.CopySync), and waits for one more that never comes. The client goes on, one answer
// off; its connection never goes back to the pool, not even once it leaves.
//   y: Parse/Bind/Execute COPY child FROM STDIN, Flush     -> 1, 2, G
//   y: CopyData '1\n', Sync, CopyDone, Sync (one write)    -> E:23503, Z:I
//   y: Query SELECT 5                                      -> T, D:5, C, Z:I
//   y: Terminate;  x: SHOW statement_timeout               -> T, D:0, C, Z:I
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, S, H, Q, X, cat, copyData, COPY_DONE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
beforeAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS r27a_child; DROP TABLE IF EXISTS r27a_parent');
  await adminQuery('CREATE TABLE r27a_parent (a int PRIMARY KEY); CREATE TABLE r27a_child (a int REFERENCES r27a_parent)');
  await adminQuery('GRANT ALL ON r27a_parent, r27a_child TO app');
});
afterAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS r27a_child; DROP TABLE IF EXISTS r27a_parent');
});
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

const run = async (t: Target): Promise<string[][]> => {
  const y = await raw(t);
  const out: string[][] = [];
  y.write(cat(P('', 'COPY r27a_child (a) FROM STDIN'), B(''), E(''), H));
  out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  y.write(cat(copyData('1\n'), S, COPY_DONE, S));
  out.push(await read(y));
  y.write(Q('SELECT 5 AS v'));
  out.push(await read(y));
  y.write(X);
  await y.waitClosed(3000).catch(() => undefined);
  const x = await raw(t);
  x.write(Q('SHOW statement_timeout'));
  out.push(await read(x, 1, 6000));
  x.destroy();
  return out;
};

describe('a Sync sent during a COPY that fails late (foreign key)', () => {
  it('the client is answered as directly, and its connection is back once it left', async () => {
    const direct = await run('direct');
    expect(direct[1]).toEqual(['E:23503', 'Z:I']);
    for (const gw of gws) expect(await run(gw)).toEqual(direct);
  }, 30000);
});
