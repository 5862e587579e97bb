// Found by review round 29 B, and fixed: PortalEffects.restore (a change taken back) can push the named portals past
// MAX_PORTALS_WITH_EFFECTS: set() then forgets every portal's effects (overflowed), but only
// changePortal acts on `overflowed` (pins the client). An undo that lands in the answers is not followed
// by one, so the client keeps moving between connections while pgway has forgotten what its open
// portals do: an Execute of one stages nothing, and its SET is lost on the client's next connection.
//   BEGIN; [Parse s1 SET work_mem='1111kB', Parse s2 SET work_mem='2222kB', Bind p1..p64 (p2 from s2), Sync];
//   SAVEPOINT a; [SELECT 1/0, Close portal p1 (skipped), Sync, Bind s1 to p65 (25P02), Sync];
//   ROLLBACK TO a; [Execute p2, Sync]; COMMIT
//   direct: work_mem 2222kB.  pgway: the client is not pinned, and its next connection has 4MB.
// Fixed: an Execute or Bind after such an undo keeps the client on its connection.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { answers, B, C, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();
let n = 0;

describe('a Close of a portal taken back when 64 other portals have effects', () => {
  it('the client keeps the value its portal set (2222kB) on its next connection', async () => {
    const seen: Record<string, string[][]> = {};
    for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
      const a = await raw(t);
      const b = await raw(t);
      const [s1, s2] = [`s1_${++n}`, `s2_${n}`];
      const out: string[][] = [];
      const step = async (c: typeof a, bytes: Buffer, readies = 1) => {
        c.write(bytes);
        out.push(await answers(c, readies).catch((e: Error) => [`timeout: ${e.message}`]));
      };
      const binds: Buffer[] = [];
      for (let i = 1; i <= 64; i++) binds.push(B(i === 2 ? s2 : s1, [], `p${i}`));
      await step(a, Q('BEGIN'));
      await step(a, cat(P(s1, "SET work_mem = '1111kB'"), P(s2, "SET work_mem = '2222kB'"), ...binds, S));
      await step(a, Q('SAVEPOINT a'));
      await step(a, cat(P('', 'SELECT 1/0'), B('', []), E(''), C('P', 'p1'), S, B(s1, [], 'p65'), S), 2);
      await step(a, Q('ROLLBACK TO a'));
      await step(a, cat(E('p2'), S));
      await step(a, Q('COMMIT'));
      // Another client on the one connection: it gets it (direct: a connection of its own), or, where
      // pgway keeps the first client on it, waits until query_wait_timeout ends it.
      b.write(Q("SET work_mem = '7MB'"));
      await answers(b).catch(() => undefined);
      await step(a, Q('SHOW work_mem'));
      seen[label] = out;
    }
    expect(seen.direct!.at(-1)).toEqual(['T', 'D:2222kB', 'C:SHOW', 'Z:I']);
    expect.soft(seen.pgway).toEqual(seen.direct);
    expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
  });
});
