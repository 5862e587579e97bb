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
import { twoConnectionSteering } from './helpers/steering.js';
import { answers, Q, rawTargets, type Target } from './helpers/wire-script.js';

const ROLE = 'local_none_role';
const PARAM = 'log_parameter_max_length';
const { gateway, read } = roleThatMayNotSet(ROLE, PARAM);
const { raw } = rawTargets();

const STEPS = [Q(`SET ROLE ${ROLE}`), Q(`BEGIN; SET LOCAL ROLE NONE; SET ${PARAM} = 77; COMMIT`)];

describe('a session SET made under SET LOCAL ROLE NONE, with a session role', () => {
  it('is kept on every connection, and the role too, as on a direct connection', async () => {
    const d = await raw('direct' as Target);
    const directSteps: string[][] = [];
    for (const s of STEPS) {
      d.write(s);
      directSteps.push(await answers(d));
    }
    const want = await read(d);
    expect(want).toEqual([`D:${ROLE},77B`, 'C:SELECT 1', 'Z:I']);

    const steer = await twoConnectionSteering(gateway());
    try {
      const x = await raw(gateway());
      await steer.to(1);
      const gwSteps: string[][] = [];
      for (const s of STEPS) {
        x.write(s);
        gwSteps.push(await answers(x));
      }
      expect(gwSteps).toEqual(directSteps);
      const here = await read(x);
      await steer.to(2);
      const there = await read(x);
      expect({ here, there }).toEqual({ here: want, there: want });
    } finally {
      await steer.done();
    }
  });
});
