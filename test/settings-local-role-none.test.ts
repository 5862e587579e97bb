// Found by review round 25 A, and fixed:
// Review A (227b019, SessionState.stage / ClientSettings.set and sql): a session SET made under SET LOCAL
// ROLE is recorded as made under that role (`as`). SET LOCAL ROLE NONE is one too: the SET is made as
// the session user. ClientSettings.set reads as = 'none' as "no role needed" and forgets any role for
// the setting; ClientSettings.sql then lays the settings on in the order of their last change, with the
// client's session role (a SET ROLE committed earlier) in force before it. The setting is laid on under
// that role, which may not set it: the server refuses (42501) and the client is ended, where a direct
// session keeps its setting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { twoConnectionSteering } from './helpers/steering.js';
import { answers, summary, Q, rawTargets, type Target } from './helpers/wire-script.js';
import { errorFields } from './helpers/raw-client.js';

const ROLE = 'local_none_role';
const PARAM = 'log_parameter_max_length';
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`);
  await adminQuery(`CREATE ROLE ${ROLE} NOLOGIN`);
  await adminQuery(`GRANT ${ROLE} TO app WITH INHERIT FALSE`);
  // The session user may set the parameter; the role may not.
  await adminQuery(`GRANT SET ON PARAMETER ${PARAM} TO app`);
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery(`REVOKE SET ON PARAMETER ${PARAM} FROM app`).catch(() => undefined);
  await adminQuery(`REVOKE ${ROLE} FROM app`).catch(() => undefined);
  await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => undefined);
});
const { raw } = rawTargets();

const READ = Q(`SELECT current_user::text, current_setting('${PARAM}')`);
const read = async (c: Awaited<ReturnType<typeof raw>>): Promise<string[]> => {
  c.write(READ);
  const out: string[] = [];
  for (let i = 0; i < 10; i++) {
    const m = await c.readMessage(5000);
    if (m === undefined) return [...out, 'closed'];
    if (m.type === 'E') {
      const f = errorFields(m.body);
      out.push(`${f.get('S')} ${f.get('C')}: ${f.get('M')}`);
    } else if (m.type === 'D' || m.type === 'C' || m.type === 'Z') out.push(summary(m));
    if (m.type === 'Z') return out;
  }
  return out;
};
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

    const steer = await twoConnectionSteering(gw);
    try {
      const x = await raw(gw);
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
