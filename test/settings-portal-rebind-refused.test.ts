// Found by review round 27 B, and fixed: a Bind the server refuses does not replace the portal it names. pgway takes the
// portal's effects from the Bind as it writes it (RequestWriter.onBind -> setPortalEffects) and never
// takes them back when the Bind fails, so a later Execute of the portal stages the refused Bind's
// statement's effects instead of those of the statement the portal really runs. A SAVEPOINT keeps the
// transaction (and the portal made before it) alive past the refusal.
//   BEGIN; [Parse s1 SET work_mem = '1111kB', Bind portal p, Sync]; SAVEPOINT a;
//   [Parse s2 SET work_mem = '2222kB', Bind portal p (42P03: portal exists), Sync]; ROLLBACK TO a;
//   [Execute p, Sync]; COMMIT
//   direct: work_mem 1111kB (p ran s1).  pgway: 2222kB laid on the client's next connection.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { readBackAfterOther } from './helpers/read-back.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();
let n = 0;

const CASES: Record<string, (s1: string, s2: string) => Buffer[]> = {
  'a named portal bound again (42P03)': (s1, s2) => [
    Q('BEGIN'),
    cat(P(s1, "SET work_mem = '1111kB'"), B(s1, [], 'p'), S),
    Q('SAVEPOINT a'),
    cat(P(s2, "SET work_mem = '2222kB'"), B(s2, [], 'p'), S),
    Q('ROLLBACK TO a'),
    cat(E('p'), S),
    Q('COMMIT'),
  ],
};

describe('a refused Bind leaves its portal as it was', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client has the value the portal set (1111kB) on its next connection, as on a direct connection`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        const out: string[][] = [];
        // Names of their own: with max_prepared_statements 0 a named statement stays on the connection.
        for (const s of steps(`s1_${++n}`, `s2_${n}`)) {
          a.write(s);
          out.push(await answers(a));
        }
        out.push(await readBackAfterOther(a, b, 'SHOW work_mem'));
        seen[label] = out;
      }
      expect(seen.direct!.at(-1)).toEqual(['T', 'D:1111kB', 'C:SHOW', 'Z:I']);
      expect(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
