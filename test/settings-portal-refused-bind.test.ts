// Found by review round 28 B, and fixed: a Bind that fails before the server touches the portal it names leaves that
// portal as it was; pgway takes the portal's effects from the failed Bind.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { readBackAfterOther } from './helpers/read-back.js';
import { answers, B, C, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();
let n = 0;
/** ReadyForQuery messages a step gets: one per Sync, or one for a Query. */
const readies = (b: Buffer): number => {
  let count = 0;
  for (let at = b.indexOf(S); at >= 0; at = b.indexOf(S, at + S.length)) count++;
  return Math.max(count, 1);
};

const CASES: Record<string, (s1: string, s2: string, r: string) => Buffer[]> = {
  'named portal, Bind of a statement the client never prepared (26000)': (s1) => [
    Q('BEGIN'),
    cat(P(s1, "SET work_mem = '1111kB'"), B(s1, [], 'p'), S),
    Q('SAVEPOINT a'),
    cat(B('nosuch_stmt', [], 'p'), S),
    Q('ROLLBACK TO a'),
    cat(E('p'), S),
    Q('COMMIT'),
  ],
  'unnamed portal, Bind of a statement the client never prepared (26000)': (s1, s2, r) => [
    Q('BEGIN'),
    cat(P(s2, 'SAVEPOINT a'), P(r, 'ROLLBACK TO a'), S),
    cat(P(s1, "SET work_mem = '1111kB'"), B(s1, [], ''), S),
    cat(B(s2, [], 'sp'), E('sp'), S),
    cat(B('nosuch_stmt', [], ''), S),
    cat(B(r, [], 'rp'), E('rp'), S),
    cat(E(''), S),
    Q('COMMIT'),
  ],
  'unnamed portal, Bind with too few parameters (08P01)': (s1, s2, r) => [
    Q('BEGIN'),
    cat(P(s2, 'SAVEPOINT a'), P(r, 'ROLLBACK TO a'), P(`${s1}x`, "SELECT set_config('work_mem', $1, false)"), S),
    cat(P(s1, "SET work_mem = '1111kB'"), B(s1, [], ''), S),
    cat(B(s2, [], 'sp'), E('sp'), S),
    cat(B(`${s1}x`, [], ''), S),
    cat(B(r, [], 'rp'), E('rp'), S),
    cat(E(''), S),
    Q('COMMIT'),
  ],
  'named portal, two pipelined rebinds both refused (42P03, then 25P02)': (s1, s2, r) => [
    Q('BEGIN'),
    cat(P(s1, "SET work_mem = '1111kB'"), P(s2, "SET work_mem = '2222kB'"), P(r, "SET work_mem = '3333kB'"), B(s1, [], 'p'), S),
    Q('SAVEPOINT a'),
    cat(B(s2, [], 'p'), S, B(r, [], 'p'), S),
    Q('ROLLBACK TO a'),
    cat(E('p'), S),
    Q('COMMIT'),
  ],
  'named portal, a Close of it skipped behind an error': (s1) => [
    Q('BEGIN'),
    cat(P(s1, "SET work_mem = '1111kB'"), B(s1, [], 'p'), S),
    Q('SAVEPOINT a'),
    cat(P('', 'SELECT 1/0'), B('', []), E(''), C('P', 'p'), S),
    Q('ROLLBACK TO a'),
    cat(E('p'), S),
    Q('COMMIT'),
  ],
};

describe('a Bind that fails before it replaces its portal', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client has the value the portal set (1111kB) on its next connection`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        const out: string[][] = [];
        for (const s of steps(`s1_${++n}`, `s2_${n}`, `r_${n}`)) {
          a.write(s);
          out.push(await answers(a, readies(s)).catch((e: Error) => [`timeout: ${e.message}`]));
        }
        out.push(await readBackAfterOther(a, b, 'SHOW work_mem'));
        seen[label] = out;
      }
      expect(seen.direct!.at(-1)).toEqual(['T', 'D:1111kB', 'C:SHOW', 'Z:I']);
      expect.soft(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
