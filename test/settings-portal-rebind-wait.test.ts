// Found by review round 28 B, and fixed: a Bind of a named portal that waits for pgway's own description of the
// statement it binds (the connection lacks the copy, the client knows its shape) is written twice
// by RequestWriter (stopped, then resumed): the second rebind takes the first one's effects as the
// portal's previous ones, so a 42P03 gives the portal the refused Bind's statement.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { answers, B, cat, D, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();
let n = 0;

describe('a refused rebind of a named portal that waited for a description', () => {
  it('the client has the value the portal set (1111kB) on its next connection', async () => {
    const seen: Record<string, string[][]> = {};
    for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!]] as [string, Target][]) {
      const a = await raw(t);
      const b = await raw(t);
      const [s1, s2] = [`s1_${++n}`, `s2_${n}`];
      const out: string[][] = [];
      const step = async (c: typeof a, bytes: Buffer) => {
        c.write(bytes);
        out.push(await answers(c).catch((e: Error) => [`timeout: ${e.message}`]));
      };
      await step(a, cat(P(s2, "SELECT set_config('work_mem', '2222kB', false)"), D('S', s2), S));
      await step(b, Q('DEALLOCATE ALL')); // another client: the connection's copies are gone
      await step(a, Q('BEGIN'));
      await step(a, cat(P(s1, "SET work_mem = '1111kB'"), B(s1, [], 'p'), S));
      await step(a, Q('SAVEPOINT a'));
      await step(a, cat(B(s2, [], 'p'), E('p'), S)); // 42P03: p stays s1's
      await step(a, Q('ROLLBACK TO a'));
      await step(a, cat(E('p'), S));
      await step(a, Q('COMMIT'));
      await step(b, Q("SET work_mem = '7MB'")); // another client on the one connection
      await step(a, Q('SHOW work_mem'));
      seen[label] = out;
    }
    expect(seen.direct!.at(-1)).toEqual(['T', 'D:1111kB', 'C:SHOW', 'Z:I']);
    // (max_prepared_statements 0: another client's DEALLOCATE ALL drops the statement itself; not compared)
    expect(seen.pgway).toEqual(seen.direct);
  });
});
