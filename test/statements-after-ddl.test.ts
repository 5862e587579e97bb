// Found by review round 32 A, fixed where pgway sees the DDL: PostgreSQL fixes a prepared
// statement's parameter types, and the relations its names mean, when it is prepared. pgway shares
// one server-side copy of a statement text between clients, so a client that prepares the text
// after a migration was given a copy prepared before it: its bigint value refused (22003) where the
// column is now bigint, or the rows of a table that a new one now shadows in its search_path. Copies
// now carry the schema epoch they were prepared at, and a client that prepared after a change pgway
// saw (DDL through pgway, when written and when its transaction ends, or a stale-plan error) gets a
// copy made afresh. DDL that pgway never sees (a migration run directly against PostgreSQL) is not
// known: RECONNECT after it (README), which this file shows too. Pool of 2, transaction mode.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { within } from './helpers/pg-helpers.js';
import { OpenedClients } from './helpers/postgres-js-clients.js';

let gw: TestGateway;
const DIRECT = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const clients = new OpenedClients();
afterEach(() => clients.endAll());
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS sad_n; DROP SCHEMA IF EXISTS sad_tenant CASCADE; DROP TABLE IF EXISTS sad_sh');
});

/** Runs `sql` as the table's owner: through `url` (pgway or direct), or directly as the admin when undefined. */
type Ddl = (sql: string) => Promise<unknown>;
const through = (url: string): Ddl => async (sql) => {
  const c = await clients.pg(url);
  await c.query(sql);
  await c.end();
};

async function outgrewInt(url: string, ddl: Ddl, afterDdl: () => Promise<void> = async () => undefined): Promise<unknown[]> {
  await adminQuery('DROP TABLE IF EXISTS sad_n; CREATE TABLE sad_n (id int, n int); ALTER TABLE sad_n OWNER TO app; INSERT INTO sad_n VALUES (1, 5)');
  const sel = { name: 'sel', text: 'select id from sad_n where n = $1' };
  const upd = { name: 'upd', text: 'update sad_n set n = $1 where id = $2' };
  const out: unknown[] = [];
  // Clients before the migration leave copies with int parameters on both connections.
  const before = await Promise.all([clients.pg(url), clients.pg(url)]);
  for (let i = 0; i < 3; i++) {
    await Promise.all(before.map(async (c) => {
      await c.query('BEGIN');
      await c.query({ ...sel, values: [5] });
      await c.query({ ...upd, values: [5, 1] });
      await c.query('COMMIT');
    }));
  }
  await Promise.all(before.map((c) => c.end()));
  await ddl('ALTER TABLE sad_n ALTER COLUMN n TYPE bigint');
  await afterDdl();
  // Clients that connect after the migration (the application redeployed), on either connection.
  const after = await Promise.all([clients.pg(url), clients.pg(url)]);
  for (let i = 0; i < 2; i++) {
    const got = await Promise.all(after.map(async (c) => {
      await c.query('BEGIN');
      try {
        const u = await c.query({ ...upd, values: ['5000000000', 1] });
        const s = await c.query({ ...sel, values: ['5000000000'] });
        return [u.rowCount, s.rows];
      } catch (e) {
        return (e as { code?: string }).code;
      } finally {
        await c.query('COMMIT');
      }
    }));
    out.push(...got);
  }
  return out;
}

describe('a column that outgrew int, ALTERed to bigint', () => {
  it('through pgway: clients that prepare after it bind bigint values on every connection', async () => {
    const direct = await within(20_000, 'direct', outgrewInt(DIRECT(), through(DIRECT())));
    expect(direct).toEqual([[1, [{ id: 1 }]], [1, [{ id: 1 }]], [1, [{ id: 1 }]], [1, [{ id: 1 }]]]);
    expect(await within(20_000, 'gateway', outgrewInt(gw.url(), through(gw.url())))).toEqual(direct);
  }, 60_000);

  it('directly on PostgreSQL, then RECONNECT through the admin console: as on a direct connection', async () => {
    const reconnect = async (): Promise<void> => {
      const admin = await clients.pg(gw.url('admin', 'pgway'));
      await admin.query('RECONNECT');
      await admin.end();
    };
    const got = await within(20_000, 'gateway', outgrewInt(gw.url(), (sql) => adminQuery(sql), reconnect));
    expect(got).toEqual([[1, [{ id: 1 }]], [1, [{ id: 1 }]], [1, [{ id: 1 }]], [1, [{ id: 1 }]]]);
  }, 60_000);
});

describe('a table made later that shadows one in the search_path', () => {
  it('through pgway: a client that prepares after it reads the new table', async () => {
    const run = async (url: string): Promise<unknown[]> => {
      await adminQuery("DROP SCHEMA IF EXISTS sad_tenant CASCADE; DROP TABLE IF EXISTS sad_sh; CREATE SCHEMA sad_tenant; GRANT ALL ON SCHEMA sad_tenant TO app; CREATE TABLE sad_sh (v text); INSERT INTO sad_sh VALUES ('public'); GRANT ALL ON sad_sh TO app");
      const q = { name: 'q', text: 'select v from sad_sh', values: [] };
      const out: unknown[] = [];
      const before = await Promise.all([clients.pg(url), clients.pg(url)]);
      for (const c of before) await c.query('SET search_path = sad_tenant, public');
      for (let i = 0; i < 3; i++) out.push(...await Promise.all(before.map(async (c) => (await c.query(q)).rows)));
      await Promise.all(before.map((c) => c.end()));
      await through(url)("CREATE TABLE sad_tenant.sad_sh (v text); INSERT INTO sad_tenant.sad_sh VALUES ('tenant')");
      const after = await Promise.all([clients.pg(url), clients.pg(url)]);
      for (const c of after) await c.query('SET search_path = sad_tenant, public');
      for (let i = 0; i < 3; i++) out.push(...await Promise.all(after.map(async (c) => (await c.query(q)).rows)));
      return out;
    };
    const direct = await within(20_000, 'direct', run(DIRECT()));
    expect(direct.slice(6)).toEqual(Array(6).fill([{ v: 'tenant' }]));
    expect(await within(20_000, 'gateway', run(gw.url()))).toEqual(direct);
  }, 60_000);
});
