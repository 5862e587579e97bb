// Found by review round 25 A, and fixed:
// Review A (227b019/197c466, SessionState.localRole): the role of a SET LOCAL ROLE (or of
// set_config('role', x, true)) is followed "until the transaction ends", and the end is learned from
// a marker pgway classifies or from the server's ReadyForQuery 'I'. A Query (or Sync group) outside a
// transaction block is an implicit transaction of its own: it ends at its own ReadyForQuery, with no
// marker. A request pipelined behind it is staged (at write time) while localRole still holds, so a
// session SET in it is recorded as made under a role that was never in force for it. pgway lays it on
// the client's next connection under that role, the server refuses it (the role may not set the
// parameter, the session user may), and the client is ended with FATAL 42501, where a direct session
// simply has its setting.
import { describe, expect, it } from 'vitest';
import { roleThatMayNotSet } from './helpers/local-role.js';
import { answers, B, cat, E, P, Q, rawTargets, S } from './helpers/wire-script.js';

const ROLE = 'implicit_end_role';
const PARAM = 'log_min_duration_sample';
const { acrossConnections } = roleThatMayNotSet(ROLE, PARAM);
const { raw } = rawTargets();

const run = (sql: string): Buffer => cat(P('', sql), B(''), E(''), S);

/** Each case is written in one write and answered by `n` ReadyForQuery. */
const CASES: Record<string, [Buffer, number]> = {
  "a Query of set_config('role', x, true), then a SET pipelined behind it": [
    cat(Q(`SELECT set_config('role', '${ROLE}', true)`), Q(`SET ${PARAM} = 4321`)), 2],
  'a Query of SET LOCAL ROLE and a SELECT (implicit block), then a SET pipelined behind it': [
    cat(Q(`SET LOCAL ROLE ${ROLE}; SELECT 1`), Q(`SET ${PARAM} = 4321`)), 2],
  "an extended group of set_config('role', x, true), then a group with a SET (libpq pipeline mode)": [
    cat(run(`SELECT set_config('role', '${ROLE}', true)`), run(`SET ${PARAM} = 4321`)), 2],
};

describe('a SET pipelined behind an implicit transaction that had a local role', () => {
  for (const [name, [bytes, n]] of Object.entries(CASES)) {
    it(`${name}: the client keeps its setting on every connection, as on a direct connection`, async () => {
      const r = await acrossConnections(raw, async (c) => {
        c.write(bytes);
        return answers(c, n);
      });
      expect(r.direct.filter((s) => s.startsWith('E:'))).toEqual([]);
      expect(r.want).toEqual(['D:app,4321ms', 'C:SELECT 1', 'Z:I']);
      expect(r.through).toEqual(r.direct);
      expect({ here: r.here, there: r.there }).toEqual({ here: r.want, there: r.want });
    });
  }
});
