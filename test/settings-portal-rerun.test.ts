// Found by review round 29 B, and fixed: an Execute of a portal that has already returned all its rows runs nothing (PostgreSQL
// answers CommandComplete "SELECT 0"): its set_config does not run again. pgway stages the portal's
// effects at each Execute, so a SET the client made between the two Executes is taken to be undone,
// and the portal's value is laid on the client's next connection.
//   BEGIN; [Parse s SELECT set_config('work_mem','1111kB',false), Bind s to portal p, Execute p, Sync];
//   SET work_mem = '2222kB'; [Execute p, Sync] (SELECT 0); COMMIT
//   direct: work_mem 2222kB.  pgway: 1111kB.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();
let n = 0;

const CASES: Record<string, (s: string) => Buffer[]> = {
  'a completed portal executed again': (s) => [
    Q('BEGIN'),
    cat(P(s, "SELECT set_config('work_mem', '1111kB', false)"), B(s, [], 'p'), E('p'), S),
    Q("SET work_mem = '2222kB'"),
    cat(E('p'), S),
    Q('COMMIT'),
  ],
  'a portal suspended by a row limit, executed to its end and again': (s) => [
    Q('BEGIN'),
    cat(P(s, "SELECT set_config('work_mem', $1, false)"), B(s, ['1111kB'], 'p'), E('p', 1), S),
    Q("SET work_mem = '2222kB'"),
    cat(E('p', 1), S),
    Q('COMMIT'),
  ],
  'the unnamed portal executed again in the same group': (s) => [
    cat(P(s, "SELECT set_config('work_mem', '1111kB', false)"), P(`${s}b`, "SET work_mem = '2222kB'"), B(s, [], ''), E(''), B(`${s}b`, [], 'q'), E('q'), E(''), S),
  ],
};

describe('an Execute of a portal that has nothing left to run', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client has the value it set last (2222kB) on its next connection`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        const out: string[][] = [];
        for (const s of steps(`s_${++n}`)) {
          a.write(s);
          out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        }
        b.write(Q("SET work_mem = '7MB'")); // another client on the one connection
        await answers(b);
        a.write(Q('SHOW work_mem'));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        seen[label] = out;
      }
      expect(seen.direct!.at(-1)).toEqual(['T', 'D:2222kB', 'C:SHOW', 'Z:I']);
      expect.soft(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
