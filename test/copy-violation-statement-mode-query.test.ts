// Found by review round 25 B, and fixed:
// Review round 25 B (5566b71: a Query sent inside a COPY FROM STDIN goes as it is). The fix lets a
// Query naming a SQL-level statement through during a COPY in transaction mode, but in statement mode
// every Query is a new request: RequestWriter.write's Query case stops at oneAtATime() while the COPY's
// Query is unanswered (it stays unanswered until the client's data ends), flushAnswers only notes
// answersWanted (clientInCopy), and nothing later resumes the write: the server waits for COPY data, the
// client for an answer. PostgreSQL reads the Query inside the COPY: ERROR 08P01, then FATAL, and the
// session ends. Through pgway the client hangs (observed: no ReadyForQuery, no error, no close within 3 s).
//   y: Query COPY t FROM STDIN                     -> G
//   y: CopyData '1\n', Query SELECT 1              -> direct: E, E (FATAL), closed;   pgway: nothing (hang)
//   y leaves; z: Query SELECT 42                   -> T, D:42, C, Z
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, cat, copyData } from './helpers/wire-script.js';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
let st: TestGateway;
beforeAll(async () => {
  st = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await st?.stop();
});
scratchTable('cv_stcopy');
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target, oneWrite: boolean): Promise<string[][]> {
  const y = await raw(t);
  const out: string[][] = [];
  if (oneWrite) {
    y.write(cat(Q('COPY cv_stcopy (a) FROM STDIN'), copyData('1\n'), Q('SELECT 1')));
    out.push(await read(y));
  } else {
    y.write(Q('COPY cv_stcopy (a) FROM STDIN'));
    out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    y.write(cat(copyData('1\n'), Q('SELECT 1')));
    out.push(await read(y));
  }
  y.socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const z = await raw(t);
  z.write(Q('SELECT 42 AS v'));
  out.push(await read(z, 1, 6000));
  return out;
}

for (const oneWrite of [false, true]) {
  describe(`statement mode: a Query inside a simple-query COPY FROM STDIN${oneWrite ? ', all in one write' : ''}`, () => {
    it('direct: ERROR and FATAL 08P01, the session ends; another client is served', async () => {
      const direct = await run('direct', oneWrite);
      expect(direct.at(-2)).toEqual(["timeout: connection closed before a 'Z' message; got " + (oneWrite ? 'GEE' : 'EE')]);
      expect(direct.at(-1)).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
    });
    it('through pgway: the same, no hang', async () => {
      try {
        expect(await run(st, oneWrite)).toEqual(await run('direct', oneWrite));
      } finally {
        await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY cv_stcopy%'");
      }
    });
  });
}
