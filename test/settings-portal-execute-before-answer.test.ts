// Found by review round 29 B, and fixed: an Execute pipelined behind a rebind that is still unanswered stages the effects the
// rebind would give the portal. PostgreSQL refuses the rebind (42P03: the portal is open), and once the
// savepoint is rolled back the Execute runs the portal's first statement; the undo comes with the
// answers, after the Execute has staged the refused statement's SET.
//   BEGIN; [Parse s1 SET work_mem='1111kB', Parse s2 SET work_mem='2222kB', Bind s1 to p, Sync]; SAVEPOINT a;
//   in one write: [Bind s2 to p, Sync] (42P03), ROLLBACK TO a, [Execute p, Sync]; COMMIT
//   direct: work_mem 1111kB.  pgway: 2222kB on the client's next connection.
// Fixed: an Execute waits for the answer to a change of its portal written in an earlier group.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();
let n = 0;
/** ReadyForQuery messages a step gets: one per Sync or Query in it. */
const readies = (b: Buffer): number => {
  let count = 0;
  for (let at = 0; at < b.length; at += 1 + b.readInt32BE(at + 1)) if (b[at] === 0x53 || b[at] === 0x51) count++;
  return count;
};

const CASES: Record<string, (s1: string, s2: string) => Buffer[]> = {
  'a refused rebind, ROLLBACK TO and the Execute pipelined': (s1, s2) => [
    Q('BEGIN'),
    cat(P(s1, "SET work_mem = '1111kB'"), P(s2, "SET work_mem = '2222kB'"), B(s1, [], 'p'), S),
    Q('SAVEPOINT a'),
    cat(B(s2, [], 'p'), S, Q('ROLLBACK TO a'), E('p'), S),
    Q('COMMIT'),
  ],
  // (SAVEPOINT and ROLLBACK TO through the extended protocol: a Query would drop the unnamed portal)
  'the unnamed portal: a Bind failing before it replaces the portal (08P01), then the Execute': (s1, s2) => [
    Q('BEGIN'),
    cat(P(s1, "SET work_mem = '1111kB'"), P(s2, "SELECT set_config('work_mem', $1, false)"), P(`${s1}r`, 'ROLLBACK TO a'),
      P(`${s1}s`, 'SAVEPOINT a'), B(s1, [], ''), B(`${s1}s`, [], 'sp'), E('sp'), S),
    cat(B(s2, ['2222kB', 'extra'], ''), S, B(`${s1}r`, [], 'rp'), E('rp'), E(''), S),
    Q('COMMIT'),
  ],
};

describe('an Execute pipelined behind an unanswered rebind of its portal', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client has the value the portal set (1111kB) on its next connection`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        const out: string[][] = [];
        for (const s of steps(`s1_${++n}`, `s2_${n}`)) {
          a.write(s);
          out.push(await answers(a, readies(s)).catch((e: Error) => [`timeout: ${e.message}`]));
        }
        b.write(Q("SET work_mem = '7MB'")); // another client on the one connection
        await answers(b);
        a.write(Q('SHOW work_mem'));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        seen[label] = out;
      }
      expect(seen.direct!.at(-1)).toEqual(['T', 'D:1111kB', 'C:SHOW', 'Z:I']);
      expect.soft(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
