// Found by review round 27 A, and fixed: a Bind and Execute of a statement whose text is a SET, sent after a bad row and a Sync
// during a COPY. The COPY failed, the Sync is answered, and the SET runs, unseen by pgway (passUnseen).
// RequestWriter's mayLast pins the client only for a Parse, Query or FunctionCall that may last, not
// for a Bind of a statement parsed before: the client is not pinned, its `unsure` connection is closed
// when it gives it back, and its SET is lost on its next connection.
//   y: Parse '' SET statement_timeout = '5s', Sync                 -> 1, Z:I
//   y: Parse 'cp' COPY t FROM STDIN, Bind 'cp', Execute, Flush     -> 1, 2, G
//   y: CopyData 'x\n', Sync, Bind '', Execute, Sync                -> E:22P02, Z:I, 2, C:SET, Z:I
//   y: SHOW statement_timeout                                      -> direct 5s
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, S, H, Q, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const TABLE = 'r27a_unseen_bind';
scratchTable(TABLE);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

const run = async (t: Target, stmt: string): Promise<string[][]> => {
  const y = await raw(t);
  const out: string[][] = [];
  y.write(cat(P(stmt, "SET statement_timeout = '5s'"), S));
  out.push(await read(y));
  y.write(cat(P('r27a_cp', `COPY ${TABLE} (a) FROM STDIN`), B('r27a_cp'), E(''), H));
  out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  y.write(cat(copyData('x\n'), S, B(stmt), E(''), S));
  out.push(await read(y, 2));
  y.write(Q('SHOW statement_timeout'));
  out.push(await read(y));
  y.destroy();
  return out;
};

describe('a SET bound and executed after a failed COPY\'s Sync, unseen by pgway', () => {
  it('unnamed statement: the SET stays the client\'s', async () => {
    const direct = await run('direct', '');
    expect(direct.at(-1)).toContain('D:5s');
    for (const gw of gws) expect(await run(gw, '')).toEqual(direct);
  }, 30000);
  it('named statement, max_prepared_statements 0: the SET stays the client\'s', async () => {
    const direct = await run('direct', 'r27a_set');
    expect(direct.at(-1)).toContain('D:5s');
    expect(await run(gws[1]!, 'r27a_set')).toEqual(direct);
  }, 30000);
});
