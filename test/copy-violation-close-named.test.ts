// Found by review round 25 B, and fixed:
// Review round 25 B (next to 5566b71's "a message inside a COPY goes as it is"). A Close of a named
// statement sent inside a simple-query COPY FROM STDIN (a protocol violation), with prepared statements
// tracked (gateway 0): RequestWriter.onTarget answers it itself (CloseComplete, synthesized, the shared
// statement staying for other clients) and sends nothing. The answer is queued behind the COPY's Query
// slot, the client's Sync is ignored (clientInCopy), and the server goes on waiting for COPY data: the
// client hangs. PostgreSQL reads the Close inside the COPY: ERROR 08P01, then FATAL, the session ends.
//   y: Parse cv_s SELECT 1, Sync                  -> 1, Z
//   y: Query COPY t FROM STDIN                      -> G
//   y: CopyData '1\n', Close statement cv_s, Sync -> direct: E, E (FATAL), closed;   pgway: nothing (hang)
//   y leaves; z: Query SELECT 42                    -> T, D:42, C, Z
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, P, C, S, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
scratchTable('cv_cncopy');
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(P('cv_s', 'SELECT 1'), S));
  const out = [await read(y)];
  y.write(Q('COPY cv_cncopy (a) FROM STDIN'));
  out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  y.write(cat(copyData('1\n'), C('S', 'cv_s'), S));
  out.push(await read(y));
  y.socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const z = await raw(t);
  z.write(Q('SELECT 42 AS v'));
  out.push(await read(z, 1, 6000));
  return out;
}

describe('a Close of a named statement inside a simple-query COPY FROM STDIN', () => {
  it('direct: ERROR and FATAL 08P01, the session ends; another client is served', async () => {
    expect(await run('direct')).toEqual([['1', 'Z:I'], ['G'], ["timeout: connection closed before a 'Z' message; got EE"], ['T', 'D:42', 'C:SELECT 1', 'Z:I']]);
  });
  it('through pgway (gateway 0, statements tracked): the same, no hang', async () => {
    try {
      expect(await run(gws[0]!)).toEqual(await run('direct'));
    } finally {
      await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY cv_cncopy%'");
    }
  });
});
