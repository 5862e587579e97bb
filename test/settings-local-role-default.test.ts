// Found by review round 27 B, and fixed: SET LOCAL role TO DEFAULT (or = DEFAULT) in a transaction block, then a session SET
// in the same transaction. session-effects.ts onVariableSet reads a SET LOCAL of role with
// flattenSetArgs, which gives '' for DEFAULT (no arguments): LocalRole follows a local role named ''.
// The session SET after it is recorded as made under role '' (ClientSettings.set `as`), so the
// statement laying the client's settings on its next connection runs set_config('role', '') first,
// which PostgreSQL refuses: the client is ended with an error, where a direct session (role back to
// its default, NONE) goes on with its setting.
//   BEGIN; SET LOCAL role TO DEFAULT; SET work_mem = '1111kB'; COMMIT
//   then another client uses the connection; then SHOW work_mem
//   direct: 1111kB.  pgway: an ErrorResponse and the connection closed.
import { describe, expect, it } from 'vitest';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { errorFields } from './helpers/raw-client.js';
import { answers, Q, rawTargets, summary, type Target } from './helpers/wire-script.js';

const gws = oneConnectionGateways();
const { raw } = rawTargets();

const CASES: Record<string, Buffer[]> = {
  'in one query string': [Q("BEGIN; SET LOCAL role TO DEFAULT; SET work_mem = '1111kB'; COMMIT")],
  'one Query per statement, = DEFAULT': [Q('BEGIN'), Q('SET LOCAL role = DEFAULT'), Q("SET work_mem = '1111kB'"), Q('COMMIT')],
};

describe('a session SET after SET LOCAL role TO DEFAULT', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client keeps its setting on its next connection, as on a direct connection`, async () => {
      const seen: Record<string, string[]> = {};
      for (const [label, t] of [['direct', 'direct'], ['pgway', gws[0]!], ['pgway, max_prepared_statements 0', gws[1]!]] as [string, Target][]) {
        const a = await raw(t);
        const b = await raw(t);
        for (const s of steps) {
          a.write(s);
          await answers(a);
        }
        b.write(Q("SET work_mem = '7MB'")); // another client on the one connection
        await answers(b);
        a.write(Q('SELECT current_user, current_setting(\'work_mem\')'));
        const out: string[] = [];
        for (;;) {
          const m = await a.readMessage(3000).catch(() => undefined);
          if (m === undefined) { out.push('closed'); break; }
          if (m.type === 'E') { const f = errorFields(m.body); out.push(`E:${f.get('C')}: ${f.get('M')}`); continue; }
          if (m.type === 'D' || m.type === 'Z') out.push(summary(m));
          if (m.type === 'Z') break;
        }
        seen[label] = out;
      }
      expect(seen.direct).toEqual(['D:app,1111kB', 'Z:I']);
      expect(seen.pgway).toEqual(seen.direct);
      expect(seen['pgway, max_prepared_statements 0']).toEqual(seen.direct);
    });
  }
});
