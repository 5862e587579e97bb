// Found by review round 27 B, and fixed: set_config(name, $1::text, false) whose parameter the Parse declares with a type
// other than text (bool, int4). PostgreSQL reads the bound text as that type, and the cast to text
// gives the type's own output ('TRUE' -> 'true', '007' -> '7'): that is the value set. pgway records the
// bound text as it came (withBoundValues, frame-effects.ts: the Parse's parameter types are not looked
// at), and lays it on the client's next connection: the client reads back another value than the one
// it set (settings the server does not report; a reported one is corrected from the ParameterStatus).
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { readBackAfterOther } from './helpers/read-back.js';
import { cstring, typedMessage } from './helpers/raw-client.js';
import { answers, B, cat, E, i16, i32, rawTargets, S, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();

/** A Parse of the unnamed statement with its parameters' types given (OIDs). */
const typedParse = (sql: string, oids: number[]): Buffer =>
  typedMessage('P', cat(cstring(''), cstring(sql), i16(oids.length), ...oids.map(i32)));

const CASES: Record<string, { oid: number; bound: string }> = {
  'declared boolean, bound TRUE': { oid: 16, bound: 'TRUE' },
  'declared int4, bound 007': { oid: 23, bound: '007' },
};

describe('set_config of a parameter the Parse declares with a non-text type', () => {
  for (const [name, { oid, bound }] of Object.entries(CASES)) {
    it(`${name}: the client reads back what the server set, on its next connection too`, async () => {
      const seen: Record<string, string[][]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        a.write(cat(typedParse("SELECT set_config('review.typed', $1::text, false)", [oid]), B('', [bound]), E(''), S));
        const set = await answers(a);
        seen[label] = [set, await readBackAfterOther(a, b, "SELECT current_setting('review.typed')")];
      }
      expect(seen.direct![1]).toEqual(['T', `D:${oid === 16 ? 'true' : '7'}`, 'C:SELECT 1', 'Z:I']);
      expect(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
