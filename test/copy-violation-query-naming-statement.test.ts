// Found by review round 24 B, and fixed:
// Review B (2136102 area: a held client waiting for answers the server will not give). A client in a
// simple-query COPY FROM STDIN sends (after some data) a Query naming a SQL-level statement (PREPARE).
// PostgreSQL reads the Query inside the COPY: ERROR 08P01 (unexpected message type during COPY), then
// FATAL, and closes the session. pgway: RequestWriter.write (Query case, namesSqlStatement) sees
// `server.expected.length > 0` (the COPY's Query slot is owed) and holds the Query for the answers,
// flushAnswers writes nothing (clientInCopy: answersWanted only), but the server is in COPY and waits
// for the client's data: nothing ever comes. The client hangs, and as its reading is stopped
// (clientHeld), pgway does not see it leave: the pool's only connection stays lent, in the COPY.
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
scratchTable('cv_qcopy');
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(Q('COPY cv_qcopy (a) FROM STDIN'));
  const out = [await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`])];
  y.write(cat(copyData('1\n'), Q('PREPARE cv_p AS SELECT 1')));
  out.push(await read(y));
  y.socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const z = await raw(t);
  z.write(Q('SELECT 42 AS v'));
  out.push(await read(z, 1, 5000));
  return out;
}

describe('a Query naming a SQL-level statement sent inside a simple-query COPY FROM STDIN', () => {
  it('direct: ERROR and FATAL 08P01, the session ends; another client is served', async () => {
    expect(await run('direct')).toEqual([['G'], ["timeout: connection closed before a 'Z' message; got EE"], ['T', 'D:42', 'C:SELECT 1', 'Z:I']]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, no hang`, async () => {
      try {
        expect(await run(gws[k]!)).toEqual(await run('direct'));
      } finally {
        await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY cv_qcopy%'");
      }
    });
  }
});
