// Found by review round 25 B, and fixed:
// Review round 25 B (5566b71: "a Query naming a SQL-level statement sent inside a COPY FROM STDIN goes
// as it is"). The fix covers the Query only. An extended-protocol message that names a SQL-level
// statement sent inside a simple-query COPY FROM STDIN (here an unnamed Parse of EXECUTE) still reaches
// GroupPlacement.placeForGroup first (RequestWriter.write: the first message of a group), which answers
// 'wait' because server.busy (clientInCopy): the write stops, flushAnswers only notes answersWanted
// (clientInCopy), and no answer ever comes, as the server waits for the COPY's data. PostgreSQL reads the
// Parse inside the COPY: ERROR 08P01, then FATAL, and the session ends. Through pgway the client hangs.
//   y: Query COPY t FROM STDIN                                  -> G
//   y: CopyData '1\n', Parse '' EXECUTE cv_x, Bind, Execute, Sync
//        direct: E (08P01), E (FATAL 08P01), connection closed;  pgway: nothing (hang)
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, P, B, E, S, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
scratchTable('cv_pcopy');
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(Q('PREPARE cv_x AS SELECT 1'));
  const out = [await read(y)];
  y.write(Q('COPY cv_pcopy (a) FROM STDIN'));
  out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  y.write(cat(copyData('1\n'), P('', 'EXECUTE cv_x'), B(''), E(''), S));
  out.push(await read(y));
  y.socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const z = await raw(t);
  z.write(Q('SELECT 42 AS v'));
  out.push(await read(z, 1, 6000));
  return out;
}

describe('an unnamed Parse of EXECUTE sent inside a simple-query COPY FROM STDIN (transaction mode)', () => {
  it('direct: ERROR and FATAL 08P01, the session ends; another client is served', async () => {
    expect(await run('direct')).toEqual([
      ['C:PREPARE', 'Z:I'], ['G'], ["timeout: connection closed before a 'Z' message; got EE"], ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, no hang`, async () => {
      try {
        expect(await run(gws[k]!)).toEqual(await run('direct'));
      } finally {
        await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY cv_pcopy%'");
      }
    });
  }
});
