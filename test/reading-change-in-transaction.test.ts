// A named statement prepared in a transaction after a change of the role or path it is read under
// ("$user" in search_path resolves to the current role's schema) reads that role's tables: pgway must
// not share it with clients of the login role, who would get the other table's plan (0A000 "cached
// plan must not change result type", or rows of the wrong table where the shapes agree). Pool of 1,
// so both clients use the one server connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest, sqlstate } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  await adminQuery(`DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rc_role') THEN CREATE ROLE rc_role; END IF; END $$`);
  await adminQuery('DROP TABLE IF EXISTS public.rc_shadow');
  await adminQuery('DROP SCHEMA IF EXISTS rc_role CASCADE');
  await adminQuery('CREATE SCHEMA rc_role AUTHORIZATION rc_role');
  await adminQuery("CREATE TABLE rc_role.rc_shadow (a text); INSERT INTO rc_role.rc_shadow VALUES ('theirs')");
  await adminQuery('GRANT SELECT ON rc_role.rc_shadow TO rc_role');
  await adminQuery('CREATE TABLE public.rc_shadow (a int); INSERT INTO public.rc_shadow VALUES (1)');
  await adminQuery('GRANT SELECT ON public.rc_shadow TO rc_role');
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS public.rc_shadow');
  await adminQuery('DROP SCHEMA IF EXISTS rc_role CASCADE');
});

const clients = clientsOfEachTest({ endWithinMs: 2000 });
const text = 'SELECT a FROM rc_shadow';
const direct = (): string => pgUrl(lab().primary, lab().superuser, lab().superuserPassword, lab().database);
const throughPgway = (): string => gw.url('admin', 'app', PASSWORDS.admin);

/** What a named statement returns, or its error's SQLSTATE. */
async function run(c: Awaited<ReturnType<typeof clients.connect>>, name: string): Promise<unknown> {
  return c.query({ name, text }).then((r) => r.rows, (err: unknown) => sqlstate(err));
}

/** a prepares the statement in a block after `set`; b prepares the same text; then a runs it again after `reset`. */
async function steps(url: string, name: string, set: string | { text: string; values: string[] }, reset: string): Promise<unknown> {
  const a = await clients.connect(url);
  const b = await clients.connect(url);
  await a.query('BEGIN');
  await a.query(set);
  const inBlock = await run(a, name);
  await a.query('COMMIT');
  await a.query(reset);
  const other = await run(b, name);
  // PostgreSQL analyses the statement again under the new path, and refuses its new result type.
  const afterwards = await run(a, name);
  return { inBlock, other, afterwards };
}

const expected = { inBlock: [{ a: 'theirs' }], other: [{ a: 1 }], afterwards: '0A000' };

describe.each<[string, string | { text: string; values: string[] }, string]>([
  ['SET ROLE', 'SET ROLE rc_role', 'RESET ROLE'],
  ['SET LOCAL ROLE', 'SET LOCAL ROLE rc_role', 'SELECT 1'],
  ["set_config('role', $1, true) with a bound value", { text: "SELECT set_config('role', $1, true)", values: ['rc_role'] }, 'SELECT 1'],
  ['SET LOCAL search_path', 'SET LOCAL search_path = rc_role, public', 'SELECT 1'],
  ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION rc_role', 'RESET SESSION AUTHORIZATION'],
])('a named statement prepared after %s in a transaction block', (label, set, reset) => {
  const name = `rc_${label.replace(/\W+/g, '_').toLowerCase()}`;
  it('direct PostgreSQL: another session reads its own table, and the first one is refused after the change', { timeout: 20_000 }, async () => {
    expect(await steps(direct(), name, set, reset)).toEqual(expected);
  });

  it('through pgway: the same, though both clients share one server connection', { timeout: 20_000 }, async () => {
    expect(await steps(throughPgway(), name, set, reset)).toEqual(expected);
  });
});
