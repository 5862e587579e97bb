// Found by review round 27 B, and fixed: a SET made in a transaction block, whose COMMIT (a Query of its own) is pipelined
// with a later request that sets the same setting and fails (or is rolled back). The later SET is
// staged while the COMMIT is still unanswered; SessionState.dropSuperseded takes the earlier SET (of
// a request already answered, and no transaction control staged since: a Query's text of COMMIT alone
// is never classified, effect-precheck) as sharing the later one's fate and drops it. The COMMIT then
// commits nothing pgway still holds, the later SET is dropped with its failure, and the client's
// committed value is lost: its next connection gets the setting it had before the transaction.
//   BEGIN;  SET work_mem = '1111kB';  then in one write: COMMIT, "SET work_mem = '2222kB'; SELECT 1/0"
//   direct: work_mem 1111kB.  pgway: 4MB (the default) on the client's next connection.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { answers, cat, Q, rawTargets, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();

const CASES: Record<string, [Buffer, number]> = {
  'COMMIT, then a Query that sets it again and fails': [cat(Q('COMMIT'), Q("SET work_mem = '2222kB'; SELECT 1/0")), 2],
  'END, then a Query that sets it again and fails': [cat(Q('END'), Q("SET work_mem = '2222kB'; SELECT 1/0")), 2],
  'COMMIT, then a transaction that sets it again and rolls back': [cat(Q('COMMIT'), Q('BEGIN'), Q("SET work_mem = '2222kB'"), Q('ROLLBACK')), 4],
};

describe('a SET committed by a pipelined COMMIT, behind which a later SET of it fails', () => {
  for (const [name, [pipelined, readies]] of Object.entries(CASES)) {
    it(`${name}: the client keeps the committed value (1111kB) on its next connection, and the other client its own`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        const out: string[][] = [];
        for (const [bytes, n] of [[Q('BEGIN'), 1], [Q("SET work_mem = '1111kB'"), 1], [pipelined, readies]] as [Buffer, number][]) {
          a.write(bytes);
          out.push(await answers(a, n));
        }
        b.write(Q("SET work_mem = '7MB'; SHOW work_mem")); // another client on the one connection
        out.push(await answers(b));
        a.write(Q('SHOW work_mem'));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        seen[label] = out;
      }
      expect(seen.direct!.at(-1)).toEqual(['T', 'D:1111kB', 'C:SHOW', 'Z:I']);
      expect(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
