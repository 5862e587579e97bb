// Found by review round 22 (E), and fixed: 9916bd7 stops a write after a CopyDone sent while answers are owed
// (`!server.inCopyIn && server.expected.length > 0`) with a request behind it, writes pgway's own
// Flush, and holds the rest until the answers are in (serverReady, or onAwaitingClient on the
// server's data). When every answer owed is one pgway gives itself (a synthesized CloseComplete) and
// the client's group is open (its earlier part ended by a Flush), the server has nothing to say:
// no data ever comes, flushSynthesized does not call onServerReady (the connection is busy, unsynced),
// and the held Query is never written. The client hangs. PostgreSQL answers the Query (a stray
// CopyDone outside a COPY is ignored).
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, upTo, type Target, P, B, E, C, H, Q, COPY_DONE, copyFail, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

async function run(t: Target, end: Buffer, close: Buffer): Promise<string[][]> {
  const y = await raw(t);
  // A group ended by a Flush: answered, left open.
  y.write(cat(P('', 'SELECT 1 AS v'), B(''), E(''), H));
  const out = [await upTo(y, 'C', 3000)];
  // A Close pgway answers itself, a stray COPY end, a Query.
  y.write(cat(close, end, Q("SELECT 'after' AS v")));
  out.push(await answers(y, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  return out;
}

describe('a stray COPY end behind a Close pgway answers itself, in an open group, then a Query', () => {
  for (const [label, end] of [['CopyDone', COPY_DONE], ['CopyFail', copyFail('x')]] as const) {
    for (const [what, close] of [['a statement never prepared', C('S', 'rve_nosuch')]] as const) {
      it(`direct, ${label}, Close of ${what}: the Query is answered`, async () => {
        // The Query runs inside the open group's implicit transaction: 'T'.
        expect((await run('direct', end, close))[1]).toEqual(['3', 'T', 'D:after', 'C:SELECT 1', 'Z:T']);
      });
      it(`through pgway, ${label}, Close of ${what}: the same (no hang)`, async () => {
        expect(await run(gws[0]!, end, close)).toEqual(await run('direct', end, close));
      });
    }
  }
});
