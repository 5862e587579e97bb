// Found by review round 24 A, and fixed:
// Review A (227b019, SessionState.settle failure branch -> layAgain -> restoreStartupValues): a client
// that keeps its server connection (pinned by LISTEN, or in session mode) RESETs a startup setting and,
// later in the same request, SETs it again and commits that too. The request then fails. pgway's failure
// branch now lays the startup values of every RESET name back on the connection ("a RESET applied is
// committed"), without looking at what the request committed after the RESET: the client's own SET is
// overwritten with its startup value. A direct session keeps the SET.
// The first case is a regression of 227b019 (before it, the failure branch forgot the RESET and the SET
// stayed). The second (no error) fails before 227b019 too: restoreStartupValues puts back the startup
// value of each name in resetNames, though a SET committed after the RESET replaced it; 227b019 makes that
// path reachable from the failure branch as well.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { dataRowValues, queryMessage, rawTrustLogin, type RawClient } from './helpers/raw-client.js';
import { rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
let session: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  session = await startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
  await session?.stop();
});
const raws: RawClient[] = [];
const ends: (() => void)[] = [];
afterEach(() => {
  for (const c of raws.splice(0)) c.destroy();
  for (const e of ends.splice(0)) e();
});

const ZONE = 'Asia/Tokyo';

async function run(c: RawClient, sql: string): Promise<{ rows: (string | null)[][]; errors: number }> {
  c.write(queryMessage(sql));
  const { before } = await c.readUntil('Z');
  return { rows: before.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)), errors: before.filter((m) => m.type === 'E').length };
}

async function login(g: TestGateway): Promise<RawClient> {
  const l = await rawTrustLogin({ host: g.host, port: g.port }, { user: 'trustuser', database: 'app', TimeZone: ZONE });
  raws.push(l.client);
  return l.client;
}

const STEPS: Record<string, { sql: string; errors: number }> = {
  'RESET, COMMIT, SET, COMMIT, then an error': { sql: "RESET TimeZone; COMMIT; SET TimeZone = 'UTC'; COMMIT; SELECT 1/0", errors: 1 },
  'RESET then SET, no error': { sql: "RESET TimeZone; SET TimeZone = 'UTC'", errors: 0 },
};

const READ = "SELECT current_setting('TimeZone'), '2024-01-01 00:00:00+00'::timestamptz::text";

describe('a RESET then a SET of the same startup setting, committed, in a request that then fails', () => {
  for (const [name, step] of Object.entries(STEPS)) {
    it(`${name}: direct PostgreSQL keeps the SET`, async () => {
      const c = await rawAfterLogin(`${pgUrl(lab().primary, 'app', 'app-secret', 'app')}?options=${encodeURIComponent(`-c TimeZone=${ZONE}`)}`, (e) => ends.push(e));
      await run(c, 'LISTEN reset_then_set_kept');
      expect((await run(c, step.sql)).errors).toBe(step.errors);
      expect((await run(c, READ)).rows).toEqual([['UTC', '2024-01-01 00:00:00+00']]);
    });

    it(`${name}: through pgway, a client pinned by LISTEN keeps the SET`, async () => {
      const c = await login(gw);
      await run(c, 'LISTEN reset_then_set_kept');
      expect((await run(c, step.sql)).errors).toBe(step.errors);
      expect((await run(c, READ)).rows).toEqual([['UTC', '2024-01-01 00:00:00+00']]);
    });

    it(`${name}: through pgway in session mode, the client keeps the SET`, async () => {
      const c = await login(session);
      expect((await run(c, step.sql)).errors).toBe(step.errors);
      expect((await run(c, READ)).rows).toEqual([['UTC', '2024-01-01 00:00:00+00']]);
    });
  }
});
