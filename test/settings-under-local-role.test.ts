// Found by review round 23 C, and fixed:
// A session SET made under a SET LOCAL ROLE (PostgREST's pattern: `SET LOCAL ROLE` in every
// transaction). The role may hold the right to set a parameter the session user lacks (GRANT SET ON
// PARAMETER); PostgreSQL keeps the SET for the session once the transaction commits, and the session
// goes on with it. pgway records the setting as made by the session user (ClientSettings.set takes the
// role from the committed `role` setting, which a SET LOCAL ROLE never changes) and lays it on the next
// connection without the role: the server refuses it, and the client is ended with FATAL 42501.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest, errorOf, onAnotherConnection, sqlstate } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  await adminQuery('DROP ROLE IF EXISTS local_role_setter');
  await adminQuery('CREATE ROLE local_role_setter NOLOGIN');
  await adminQuery('GRANT SET ON PARAMETER log_min_duration_statement TO local_role_setter');
  await adminQuery('GRANT local_role_setter TO app WITH INHERIT FALSE');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('REVOKE local_role_setter FROM app').catch(() => undefined);
  await adminQuery('REVOKE SET ON PARAMETER log_min_duration_statement FROM local_role_setter').catch(() => undefined);
  await adminQuery('DROP ROLE IF EXISTS local_role_setter').catch(() => undefined);
});
const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (): Promise<pg.Client> => testClients.connect(gw.url('app'));
const direct = (): Promise<pg.Client> => testClients.connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));

const STEPS = ['BEGIN', 'SET LOCAL ROLE local_role_setter', 'SET log_min_duration_statement = 4321', 'COMMIT'];
const READ = `SELECT current_user::text AS u, current_setting('log_min_duration_statement') AS l, pg_backend_pid() AS pid`;

describe('a session SET made under SET LOCAL ROLE', () => {
  it('is kept after the transaction, on whichever connection serves the client, as on a direct connection', async () => {
    const d = await direct();
    for (const sql of STEPS) expect(await errorOf(d.query(sql)), sql).toBeUndefined();
    const want = (await d.query(READ)).rows[0]!;
    expect({ u: want.u, l: want.l }).toEqual({ u: 'app', l: '4321ms' });

    const [a, h1, h2] = [await connect(), await connect(), await connect()];
    for (const sql of STEPS) expect(await errorOf(a.query(sql)), sql).toBeUndefined();
    const here = (await a.query(READ)).rows[0]!;
    const there = await onAnotherConnection(here.pid, [h1, h2], async () => {
      try {
        const r = (await a.query(READ)).rows[0]!;
        return { u: r.u, l: r.l };
      } catch (err) {
        return { error: sqlstate(err), message: (err as Error).message };
      }
    });
    expect([{ u: here.u, l: here.l }, there]).toEqual([{ u: want.u, l: want.l }, { u: want.u, l: want.l }]);
  });
});
