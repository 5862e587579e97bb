// Found by review round 31 A, and fixed: a set_config beside another call that may return a set pins the client.
// Review round 31 A. 32dab9e takes a portal's set_config to run once, at its first Execute ("spent").
// A set_config that is a direct target of a FROM-less SELECT is followed as running exactly once
// (call-effects.ts runsOnce), but a set-returning function beside it in the target list makes the
// SELECT return several rows, and PostgreSQL evaluates the set_config again for each row (ProjectSet).
// With a row-limited Execute, a later Execute of the suspended portal sets the value again:
//   BEGIN; [Parse s SELECT set_config('work_mem','1111kB',false), generate_series(1,3); Bind p; Execute p (1 row); Sync]
//   SET work_mem = '2222kB'; [Execute p (1 row); Sync]; COMMIT
//   direct: work_mem 1111kB.  pgway: the client's next connection gets 2222kB.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways(2);
const { raw } = rawTargets();
let n = 0;

const CASES: Record<string, (s: string) => Buffer[]> = {
  'a set_config beside generate_series, its portal executed one row at a time': (s) => [
    Q('BEGIN'),
    cat(P(s, "SELECT set_config('work_mem', '1111kB', false), generate_series(1, 3)"), B(s, [], 'p'), E('p', 1), S),
    Q("SET work_mem = '2222kB'"),
    cat(E('p', 1), S),
    Q('COMMIT'),
  ],
  'the same with the value bound as a parameter': (s) => [
    Q('BEGIN'),
    cat(P(s, "SELECT set_config('work_mem', $1, false), generate_series(1, 3)"), B(s, ['1111kB'], 'p'), E('p', 1), S),
    Q("SET work_mem = '2222kB'"),
    cat(E('p', 1), S),
    Q('COMMIT'),
  ],
};

describe('a portal whose set_config runs again at a later Execute', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client keeps what PostgreSQL has (1111kB) on its next connection`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        const out: string[][] = [];
        for (const s of steps(`s_${++n}`)) {
          a.write(s);
          out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        }
        // Another client takes the connection a used last, and sets work_mem on it; a goes to the other one.
        b.write(Q('BEGIN'));
        await answers(b);
        b.write(Q("SET work_mem = '7MB'"));
        await answers(b);
        a.write(Q('SHOW work_mem'));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        b.write(Q('COMMIT'));
        await answers(b);
        seen[label] = out;
      }
      expect(seen.direct!.at(-1)).toEqual(['T', 'D:1111kB', 'C:SHOW', 'Z:I']);
      expect.soft(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
