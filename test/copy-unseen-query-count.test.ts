// Found by review round 27 A, and fixed: a Query sent after a bad row during a COPY goes unseen (RequestWriter's IN_COPY
// rule, ServerConnection.passUnseen), and runs once the COPY failed on that row (a COPY a Query
// began: nothing is skipped after its error): its slot is queued and its ReadyForQuery counted as a
// request answered, but it was never counted as a request written (session.requestWritten). The
// requests the client pipelines behind it are settled one early: a SET in a text that fails is
// settled at the unseen Query's success, and kept, though PostgreSQL rolled it back. (It is now
// counted; as the client also keeps its connection after such a Query, what this shows is that
// the SET rolled back stays rolled back.)
//   y: Query COPY t FROM STDIN                                  -> G
//   y: CopyData 'x\n', Query SELECT pg_sleep(0.5)               -> E:22P02, Z:I (then the sleep's answer)
//   y: Query SET statement_timeout = '7s'; SELECT 1/0           -> (sleep:) T, D, C, Z:I; C:SET, E:22012, Z:I
//   y: SHOW statement_timeout                                   -> direct 0
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, Q, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const TABLE = 'r27a_unseen_count';
scratchTable(TABLE);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

const run = async (t: Target): Promise<string[][]> => {
  const y = await raw(t);
  const out: string[][] = [];
  y.write(Q(`COPY ${TABLE} (a) FROM STDIN`));
  out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  y.write(cat(copyData('x\n'), Q("SELECT pg_sleep(0.5)::text AS s")));
  out.push(await read(y));
  y.write(Q("SET statement_timeout = '7s'; SELECT 1/0"));
  out.push(await read(y, 2));
  y.write(Q('SHOW statement_timeout'));
  out.push(await read(y));
  y.destroy();
  return out;
};

describe('a SET that fails, pipelined behind a Query that went unseen during a COPY that failed', () => {
  it('is not kept', async () => {
    const direct = await run('direct');
    expect(direct.at(-1)).toContain('D:0');
    for (const gw of gws) expect(await run(gw)).toEqual(direct);
  }, 30000);
});
