// Found by review round 25 A, and fixed:
// Review A (SessionState.apply / restoreStartupValues, resetNames; 197c466 turns RESET ALL into
// ClientSettings.startupNames()): a client that keeps its connection (session mode, or pinned) and runs
// RESET ALL gets the startup value of each of its startup settings put back, as RESET ALL puts them
// back on a direct connection. But RESET ALL leaves the role alone (GUC_NO_RESET_ALL; pgway knows it:
// RESET_ALL_KEEPS), and a role given at startup (options=-c role=x) is among the startup names: pgway
// sets it back, taking back the client's SET ROLE NONE. The client then runs as the startup role, where a
// direct session runs as itself (current_user, privileges). Same with RESET ALL followed by a SET in
// the same request (the 197c466 path: resetNames = startupNames() minus the name set).
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

const ROLE = 'keeps_startup_role';
let tx: TestGateway;
let session: TestGateway;
beforeAll(async () => {
  await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`);
  await adminQuery(`CREATE ROLE ${ROLE} NOLOGIN`);
  await adminQuery(`GRANT ${ROLE} TO app WITH INHERIT FALSE`);
  [tx, session] = await Promise.all([
    startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' }),
    startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 3000 }' }),
  ]);
});
afterAll(async () => {
  await Promise.all([tx?.stop(), session?.stop()]);
  await adminQuery(`REVOKE ${ROLE} FROM app`).catch(() => undefined);
  await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => undefined);
});

const testClients = clientsOfEachTest();
const connect = (url: string): Promise<pg.Client> =>
  testClients.connect({ connectionString: url, statement_timeout: 5000, options: `-c role=${ROLE} -c work_mem=2MB` } as pg.ClientConfig);
const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const READ = "SELECT current_user::text || ' ' || current_setting('role') || ' ' || current_setting('work_mem') AS v";

async function run(url: string, pin: boolean, steps: string[]): Promise<string[]> {
  const c = await connect(url);
  const out = [(await c.query<{ v: string }>(READ)).rows[0]!.v];
  if (pin) await c.query('LISTEN keeps_role_channel');
  for (const sql of steps) await c.query(sql);
  out.push((await c.query<{ v: string }>(READ)).rows[0]!.v);
  return out;
}

const CASES: Record<string, string[]> = {
  'SET ROLE NONE, then RESET ALL': ['SET ROLE NONE', 'RESET ALL'],
  'SET ROLE NONE, then RESET ALL and a SET in one request': ['SET ROLE NONE', "RESET ALL; SET statement_timeout = '7s'"],
};

describe('startup role (options -c role=x), a client that keeps its connection, RESET ALL', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the role stays NONE, as on a direct connection (transaction mode, pinned)`, async () => {
      const want = await run(directUrl(), true, steps);
      expect(want).toEqual([`${ROLE} ${ROLE} 2MB`, 'app none 2MB']);
      expect(await run(tx.url(), true, steps)).toEqual(want);
    });
    it(`${name}: the role stays NONE, as on a direct connection (session mode)`, async () => {
      const want = await run(directUrl(), false, steps);
      expect(await run(session.url(), false, steps)).toEqual(want);
    });
  }
});
