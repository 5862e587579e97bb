// Found by review round 25 B, and fixed:
// Review round 25 B (5566b71: "Close waits like Bind"; the Close of the unnamed statement behind an owed
// Query). A Close of the unnamed statement sent inside a simple-query COPY FROM STDIN (a protocol
// violation): RequestWriter.onTarget does not wait (UnnamedStatement.mustWait returns false while the
// server is in the COPY), the COPY's Query counts past the client's statement so here() is false, and
// pgway answers the Close itself (CloseComplete, synthesized) without sending anything. Its answer is
// queued behind the COPY's Query slot, the client's Sync is ignored (clientInCopy), and the server goes
// on waiting for COPY data: the client hangs. PostgreSQL reads the Close inside the COPY: ERROR 08P01,
// then FATAL, and the session ends.
//   y: Parse '' SELECT 1, Sync                      -> 1, Z
//   y: Query COPY t FROM STDIN                      -> G
//   y: CopyData '1\n', Close statement '', Sync     -> direct: E, E (FATAL), closed;   pgway: nothing (hang)
//   y leaves; z: Query SELECT 42                    -> T, D:42, C, Z
// (The same Close sent in the COPY Query's own write, before the CopyInResponse, waits for the Query as
// a Bind does, is released by the CopyInResponse, and ends the same way.)
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, P, C, S, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
scratchTable('cv_ccopy');
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target, oneWrite: boolean): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(P('', 'SELECT 1'), S));
  const out = [await read(y)];
  if (oneWrite) {
    y.write(cat(Q('COPY cv_ccopy (a) FROM STDIN'), copyData('1\n'), C('S', ''), S));
  } else {
    y.write(Q('COPY cv_ccopy (a) FROM STDIN'));
    out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    y.write(cat(copyData('1\n'), C('S', ''), S));
  }
  out.push(await read(y));
  y.socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const z = await raw(t);
  z.write(Q('SELECT 42 AS v'));
  out.push(await read(z, 1, 6000));
  return out;
}

for (const oneWrite of [false, true]) {
  describe(`a Close of the unnamed statement inside a simple-query COPY FROM STDIN${oneWrite ? ', in the COPY\'s write' : ''}`, () => {
    it('direct: ERROR and FATAL 08P01, the session ends; another client is served', async () => {
      const direct = await run('direct', oneWrite);
      expect(direct.at(-2)![0]).toMatch(/^timeout: connection closed before a 'Z' message; got G?EE$/);
      expect(direct.at(-1)).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
    });
    for (const k of [0, 1]) {
      it(`through pgway (gateway ${k}): the same, no hang`, async () => {
        try {
          expect(await run(gws[k]!, oneWrite)).toEqual(await run('direct', oneWrite));
        } finally {
          await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY cv_ccopy%'");
        }
      });
    }
  });
}
