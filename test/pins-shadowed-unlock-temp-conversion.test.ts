// Found by review round 33 C, and fixed (a bare pg_advisory_unlock_all() is checked with the server;
// CREATE CONVERSION, STATISTICS, OPERATOR CLASS and FAMILY in pg_temp pin):
// State pgway lets go of while the session still holds it, so the next client on the server connection
// finds it (pool of 1: the next client gets the same connection, or waits while the first is pinned):
// - pg_advisory_unlock_all() read by bare name: under a search_path that puts a schema with a function
//   of that name ahead of pg_catalog, the call is the user's function, no lock is released, yet pgway
//   unpins at once (it asks the server only after pg_advisory_unlock(), not after unlock_all);
// - a temporary conversion (CREATE CONVERSION pg_temp.x) lives in the session's temp schema like a
//   temp function, but pins nothing, so the next client's session has it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1500 }' });
  await adminQuery('DROP SCHEMA IF EXISTS rpl_s CASCADE');
  await adminQuery('CREATE SCHEMA rpl_s AUTHORIZATION app');
  await adminQuery("CREATE FUNCTION rpl_s.pg_advisory_unlock_all() RETURNS int LANGUAGE sql AS 'SELECT 0'");
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP SCHEMA IF EXISTS rpl_s CASCADE');
});
const { connect } = clientsOfEachTest({ endWithinMs: 2000 });

/** What the next client of the pool finds in its own session: the count `sql` gives, or the error code it gets. */
async function nextClientSees(sql: string): Promise<number | string> {
  const b = await connect(gw.url());
  return b.query(sql).then((r) => r.rows[0].n as number, (e: { code: string }) => e.code);
}

describe('state the next client must not find', () => {
  it('an advisory lock after a pg_advisory_unlock_all() that is the user\'s own function', async () => {
    const a = await connect(gw.url());
    await a.query('SET search_path = rpl_s, pg_catalog');
    await a.query('SELECT pg_catalog.pg_advisory_lock(94001)');
    expect((await a.query('SELECT pg_advisory_unlock_all() AS r')).rows).toEqual([{ r: 0 }]); // rpl_s's function ran
    const own = await a.query("SELECT count(*)::int n FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()");
    expect(own.rows[0].n).toBe(1); // the session still holds its lock
    // Either the next client waits (the first is pinned) or it gets a session without that lock.
    const seen = await nextClientSees("SELECT count(*)::int n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()");
    expect(['57P05', 0]).toContain(seen);
  });

  it('a temporary conversion', async () => {
    const a = await connect(gw.url());
    await a.query("CREATE CONVERSION pg_temp.rpl_conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8");
    expect((await a.query('SELECT count(*)::int n FROM pg_conversion WHERE connamespace = pg_my_temp_schema()')).rows[0].n).toBe(1);
    const seen = await nextClientSees('SELECT count(*)::int n FROM pg_conversion WHERE connamespace = pg_my_temp_schema()');
    expect(['57P05', 0]).toContain(seen);
  });
});
