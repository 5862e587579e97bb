// Found by review round 25 A, and fixed:
// Review A (227b019, SessionState.stage / ClientSettings.set and sql): a session SET made under SET LOCAL
// ROLE is recorded as made under that role (`as`). SET LOCAL ROLE NONE is one too: the SET is made as
// the session user. ClientSettings.set reads as = 'none' as "no role needed" and forgets any role for
// the setting; ClientSettings.sql then lays the settings on in the order of their last change, with the
// client's session role (a SET ROLE committed earlier) in force before it. The setting is laid on under
// that role, which may not set it: the server refuses (42501) and the client is ended, where a direct
// session keeps its setting.
import { describe, expect, it } from 'vitest';
import { roleThatMayNotSet } from './helpers/local-role.js';
import { answers, Q, rawTargets } from './helpers/wire-script.js';

const ROLE = 'local_none_role';
const PARAM = 'log_parameter_max_length';
const { acrossConnections } = roleThatMayNotSet(ROLE, PARAM);
const { raw } = rawTargets();

const STEPS = [Q(`SET ROLE ${ROLE}`), Q(`BEGIN; SET LOCAL ROLE NONE; SET ${PARAM} = 77; COMMIT`)];

describe('a session SET made under SET LOCAL ROLE NONE, with a session role', () => {
  it('is kept on every connection, and the role too, as on a direct connection', async () => {
    const r = await acrossConnections(raw, async (c) => {
      const out: string[] = [];
      for (const s of STEPS) {
        c.write(s);
        out.push(...(await answers(c)));
      }
      return out;
    });
    expect(r.want).toEqual([`D:${ROLE},77B`, 'C:SELECT 1', 'Z:I']);
    expect(r.through).toEqual(r.direct);
    expect({ here: r.here, there: r.there }).toEqual({ here: r.want, there: r.want });
  });
});
