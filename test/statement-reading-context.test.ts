// PostgreSQL reads a prepared statement's text under the settings of the session that prepares it,
// and keeps that reading: its literals become values under TimeZone / DateStyle, the names its
// search_path resolves depend on the role ("$user"), its bytes are decoded in the client_encoding.
// Clients that send the same statement under different settings must each get their own reading,
// as on a direct connection, however pgway shares named statements between them, and whichever
// connection it lays a SQL-level PREPARE on again. Each scenario runs directly against PostgreSQL,
// then through pgway with a pool of one connection (transaction mode), which the clients take turns on.
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { within } from './helpers/pg-helpers.js';
import { OpenedClients } from './helpers/postgres-js-clients.js';

let gw: TestGateway;
const DIRECT = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 8000 }' });
  await adminQuery('DROP TABLE IF EXISTS public.rc_acct');
  await adminQuery('DROP SCHEMA IF EXISTS rc_tenant CASCADE');
  await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rc_tenant') THEN CREATE ROLE rc_tenant NOLOGIN; END IF; END $$`);
  await adminQuery('GRANT rc_tenant TO app');
  await adminQuery('CREATE SCHEMA rc_tenant AUTHORIZATION rc_tenant');
  // The tenant's own table has a column more than public's: "$user", public finds it for the tenant role only.
  await adminQuery('CREATE TABLE public.rc_acct (id int, name text)');
  await adminQuery("INSERT INTO public.rc_acct VALUES (1, 'public-row')");
  await adminQuery('CREATE TABLE rc_tenant.rc_acct (id int, name text, balance numeric)');
  await adminQuery("INSERT INTO rc_tenant.rc_acct VALUES (1, 'tenant-row', 10)");
  await adminQuery('GRANT SELECT ON public.rc_acct TO PUBLIC');
  await adminQuery('GRANT SELECT ON rc_tenant.rc_acct TO rc_tenant');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS public.rc_acct');
  await adminQuery('DROP SCHEMA IF EXISTS rc_tenant CASCADE');
});

const clients = new OpenedClients();
afterEach(() => clients.endAll());

/** A result, or the error's SQLSTATE and message. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await p };
  } catch (e) {
    const x = e as { code?: string; message?: string };
    return { err: x.code, message: x.message };
  }
}

describe('literals read under the TimeZone / DateStyle of the client that prepares', () => {
  const TEXT = "SELECT ('2024-01-01 00:00'::timestamptz)::text AS ts, ('03/04/2024'::date)::text AS d, $1::int AS n";
  const EXPECTED = [
    [{ ts: '2024-01-01 00:00:00+00', d: '2024-03-04', n: 1 }],
    [{ ts: '2024-01-01 00:00:00+09', d: '2024-04-03', n: 2 }],
    [{ ts: '2024-01-01 00:00:00+00', d: '2024-03-04', n: 3 }],
    [{ ts: '2024-01-01 00:00:00+09', d: '2024-04-03', n: 4 }],
  ];

  it('pg named query: each client gets the literal as read under its own settings', { timeout: 30_000 }, async () => {
    const scenario = async (url: string): Promise<unknown[]> => {
      const utc = await clients.pg(url);
      const tokyo = await clients.pg(url);
      await utc.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'");
      await tokyo.query("SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'ISO, DMY'");
      const out: unknown[] = [];
      for (const [client, n] of [[utc, 1], [tokyo, 2], [utc, 3], [tokyo, 4]] as const) {
        out.push((await client.query({ name: 'lit', text: TEXT, values: [n] })).rows);
      }
      return out;
    };
    const d = await within(10_000, 'direct', scenario(DIRECT()));
    expect(d).toEqual(EXPECTED);
    const g = await within(10_000, 'gateway', scenario(gw.url()));
    expect(g).toEqual(d);
  });

  it('postgres.js (prepare: true, settings at startup): each client gets the literal as read under its own settings', { timeout: 30_000 }, async () => {
    const scenario = async (url: string): Promise<unknown[]> => {
      const utc = clients.sql(url, { connection: { TimeZone: 'UTC', DateStyle: 'ISO, MDY' } });
      const tokyo = clients.sql(url, { connection: { TimeZone: 'Asia/Tokyo', DateStyle: 'ISO, DMY' } });
      const out: unknown[] = [];
      for (const [sql, n] of [[utc, 1], [tokyo, 2], [utc, 3], [tokyo, 4]] as const) {
        out.push([...await (sql as postgres.Sql).unsafe(TEXT, [n], { prepare: true })]);
      }
      return out;
    };
    const d = await within(10_000, 'direct', scenario(DIRECT()));
    expect(d).toEqual(EXPECTED);
    const g = await within(10_000, 'gateway', scenario(gw.url()));
    expect(g).toEqual(d);
  });

  it('SQL-level PREPARE of one text under two TimeZones: each EXECUTE runs its own client\'s reading, settings kept', { timeout: 30_000 }, async () => {
    const scenario = async (url: string): Promise<unknown[]> => {
      const a = await clients.pg(url);
      const b = await clients.pg(url);
      const out: unknown[] = [];
      await a.query("SET TimeZone = 'Asia/Tokyo'");
      await a.query("PREPARE p AS SELECT ('2024-01-01 00:00'::timestamptz)::text AS ts");
      await a.query("SET TimeZone = 'UTC'");
      out.push((await a.query('EXECUTE p')).rows);
      await b.query("SET TimeZone = 'America/New_York'");
      await b.query("PREPARE p AS SELECT ('2024-01-01 00:00'::timestamptz)::text AS ts");
      out.push((await b.query('EXECUTE p')).rows);
      // The connection holds b's p: a's is prepared again there, read as a read it.
      out.push((await a.query('EXECUTE p')).rows);
      out.push((await a.query('SHOW TimeZone')).rows);
      out.push((await b.query('EXECUTE p')).rows);
      out.push((await b.query('SHOW TimeZone')).rows);
      return out;
    };
    const d = await within(10_000, 'direct', scenario(DIRECT()));
    // a's p was read under Asia/Tokyo and is shown in UTC; b's under New York.
    expect(d).toEqual([
      [{ ts: '2023-12-31 15:00:00+00' }],
      [{ ts: '2024-01-01 00:00:00-05' }],
      [{ ts: '2023-12-31 15:00:00+00' }],
      [{ TimeZone: 'UTC' }],
      [{ ts: '2024-01-01 00:00:00-05' }],
      [{ TimeZone: 'America/New_York' }],
    ]);
    const g = await within(10_000, 'gateway', scenario(gw.url()));
    expect(g).toEqual(d);
  });
});

describe('SET ROLE with "$user" in the search_path: the role decides the tables a statement reads', () => {
  it('pg named query: a client under SET ROLE reads its own schema\'s table each time', { timeout: 30_000 }, async () => {
    // Another client prepares the text first (no role set), then a tenant client runs it after SET ROLE.
    const scenario = async (url: string): Promise<unknown[]> => {
      const other = await clients.pg(url);
      const tenant = await clients.pg(url);
      const q = { name: 'acct_by_id', text: 'SELECT * FROM rc_acct WHERE id = $1', values: [1] };
      const out: unknown[] = [];
      out.push(await outcome(other.query(q).then((r) => r.rows)));
      await tenant.query('SET ROLE rc_tenant');
      out.push(await outcome(tenant.query("SELECT current_user AS u, current_setting('search_path') AS sp").then((r) => r.rows)));
      for (let i = 0; i < 2; i++) out.push(await outcome(tenant.query(q).then((r) => r.rows)));
      for (let i = 0; i < 2; i++) {
        out.push(await outcome(other.query(q).then((r) => r.rows)));
        out.push(await outcome(tenant.query(q).then((r) => r.rows)));
      }
      return out;
    };
    const PUBLIC = { ok: [{ id: 1, name: 'public-row' }] };
    const TENANT = { ok: [{ id: 1, name: 'tenant-row', balance: '10' }] };
    const d = await within(10_000, 'direct', scenario(DIRECT()));
    expect(d).toEqual([PUBLIC, { ok: [{ u: 'rc_tenant', sp: '"$user", public' }] }, TENANT, TENANT, PUBLIC, TENANT, PUBLIC, TENANT]);
    const g = await within(10_000, 'gateway', scenario(gw.url()));
    expect(g).toEqual(d);
  });

  it('SQL-level PREPARE of one text by a client under SET ROLE and one without: each EXECUTE reads its own table', { timeout: 30_000 }, async () => {
    const scenario = async (url: string): Promise<unknown[]> => {
      const other = await clients.pg(url);
      const tenant = await clients.pg(url);
      const out: unknown[] = [];
      await other.query('PREPARE acct AS SELECT * FROM rc_acct WHERE id = 1');
      await tenant.query('SET ROLE rc_tenant');
      await tenant.query('PREPARE acct AS SELECT * FROM rc_acct WHERE id = 1');
      for (let i = 0; i < 2; i++) {
        out.push(await outcome(other.query('EXECUTE acct').then((r) => r.rows)));
        out.push(await outcome(tenant.query('EXECUTE acct').then((r) => r.rows)));
      }
      return out;
    };
    const PUBLIC = { ok: [{ id: 1, name: 'public-row' }] };
    const TENANT = { ok: [{ id: 1, name: 'tenant-row', balance: '10' }] };
    const d = await within(10_000, 'direct', scenario(DIRECT()));
    expect(d).toEqual([PUBLIC, TENANT, PUBLIC, TENANT]);
    const g = await within(10_000, 'gateway', scenario(gw.url()));
    expect(g).toEqual(d);
  });
});

describe('client_encoding: the same bytes are another text in another encoding', () => {
  it('a LATIN1 client and a UTF8 client sending the same Parse bytes each get their own text\'s result', { timeout: 30_000 }, async () => {
    // pg writes the text as UTF-8: 'é' is C3 A9, which a LATIN1 session reads as 'Ã©'.
    const TEXT = "SELECT encode(convert_to('é', 'UTF8'), 'hex') AS h, $1::int AS n";
    const scenario = async (url: string): Promise<unknown[]> => {
      const latin1 = await clients.pg(url);
      const utf8 = await clients.pg(url);
      await latin1.query("SET client_encoding = 'LATIN1'");
      await utf8.query("SET client_encoding = 'UTF8'");
      const out: unknown[] = [];
      for (const [client, n] of [[latin1, 1], [utf8, 2], [latin1, 3], [utf8, 4]] as const) {
        out.push((await client.query({ name: 'enc', text: TEXT, values: [n] })).rows);
      }
      return out;
    };
    const d = await within(10_000, 'direct', scenario(DIRECT()));
    expect(d).toEqual([[{ h: 'c383c2a9', n: 1 }], [{ h: 'c3a9', n: 2 }], [{ h: 'c383c2a9', n: 3 }], [{ h: 'c3a9', n: 4 }]]);
    const g = await within(10_000, 'gateway', scenario(gw.url()));
    expect(g).toEqual(d);
  });
});

describe('SET SESSION AUTHORIZATION with "$user" in the search_path: the session user decides the tables too', () => {
  it('pg named query: a client under another session user reads its own schema\'s table, and a client after it reads its own', { timeout: 30_000 }, async () => {
    // Superuser clients (the admin user logs in to PostgreSQL as postgres) sharing the pool's connection.
    const scenario = async (url: string): Promise<unknown[]> => {
      const other = await clients.pg(url);
      const tenant = await clients.pg(url);
      const q = { name: 'acct_by_user', text: 'SELECT * FROM rc_acct WHERE id = $1', values: [1] };
      const out: unknown[] = [];
      out.push(await outcome(other.query(q).then((r) => r.rows)));
      await tenant.query('SET SESSION AUTHORIZATION rc_tenant');
      for (let i = 0; i < 2; i++) out.push(await outcome(tenant.query(q).then((r) => r.rows)));
      await tenant.query('RESET SESSION AUTHORIZATION');
      out.push(await outcome(tenant.query(q).then((r) => r.rows)));
      out.push(await outcome(other.query(q).then((r) => r.rows)));
      return out;
    };
    const PUBLIC = { ok: [{ id: 1, name: 'public-row' }] };
    const TENANT = { ok: [{ id: 1, name: 'tenant-row', balance: '10' }] };
    const d = await within(10_000, 'direct', scenario(pgUrl(lab().primary, 'postgres', lab().superuserPassword, 'app')));
    // Back under its own session user, the path finds public's table: the tenant's statement returns
    // another shape there, which PostgreSQL refuses.
    expect(d).toEqual([PUBLIC, TENANT, TENANT, { err: '0A000', message: 'cached plan must not change result type' }, PUBLIC]);
    const g = await within(10_000, 'gateway', scenario(gw.url('admin', 'app')));
    expect(g).toEqual(d);
  });
});
