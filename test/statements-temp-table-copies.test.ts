// Found by review round 32 A, and fixed: one client's transaction-scoped temporary table leaked into
// another client's statement. Client A, in a transaction, makes a temporary staging table ON COMMIT
// DROP named like a real table (int there, bigint in public) and inserts into it with a named
// statement. That pins nothing (the table goes at COMMIT), but the copy pgway prepared for A stayed
// on the server connection with the parameter type PostgreSQL inferred from A's temporary table
// (int4), and client B, preparing the same text, was given it: its bigint value refused (22003). The
// copies a connection prepares in a transaction after DDL are now dropped when it ends.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { OpenedClients } from './helpers/postgres-js-clients.js';

let gw: TestGateway;
const DIRECT = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const clients = new OpenedClients();
afterEach(() => clients.endAll());
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS r32_items; CREATE TABLE r32_items (n bigint); GRANT ALL ON r32_items TO app');
});
afterAll(async () => { await gw?.stop(); await adminQuery('DROP TABLE IF EXISTS r32_items'); });

async function scenario(url: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const a = await clients.pg(url);
  await a.query('BEGIN');
  await a.query('CREATE TEMP TABLE r32_items (n int) ON COMMIT DROP');
  out.push((await a.query({ name: 'ins', text: 'insert into r32_items values ($1)', values: [1] })).rowCount);
  await a.query('COMMIT');
  const b = await clients.pg(url);
  for (let i = 0; i < 2; i++) {
    try { out.push((await b.query({ name: 'ins', text: 'insert into r32_items values ($1)', values: ['5000000000'] })).rowCount); } catch (e) { out.push((e as { code?: string }).code + ' ' + (e as Error).message); }
  }
  return out;
}

it('a statement another client first prepared against its ON COMMIT DROP temp table runs as on a direct connection', async () => {
  const d = await scenario(DIRECT());
  expect(d).toEqual([1, 1, 1]);
  await clients.endAll();
  const g = await scenario(gw.url());
  expect(g).toEqual(d);
}, 60_000);

// The same, with the temp table made by a named statement (as postgres.js sends every statement):
// its second run is a Bind of the statement prepared in the first transaction, and counts as DDL too.
async function namedScenario(url: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const mk = { name: 'mk', text: 'CREATE TEMP TABLE r32_items (n int) ON COMMIT DROP' };
  const ins = { name: 'ins2', text: 'insert into r32_items (n) values ($1)' };
  const a = await clients.pg(url);
  for (let i = 0; i < 2; i++) {
    await a.query('BEGIN');
    await a.query(mk);
    out.push((await a.query({ ...ins, values: [1] })).rowCount);
    await a.query('COMMIT');
    // Another client's statement of the same text leaves no copy on the connections in between.
    if (i === 0) {
      const c = await clients.pg(url);
      await c.query('DEALLOCATE ALL');
      await c.end();
    }
  }
  const b = await clients.pg(url);
  for (let i = 0; i < 2; i++) {
    try { out.push((await b.query({ ...ins, values: ['5000000000'] })).rowCount); } catch (e) { out.push((e as { code?: string }).code + ' ' + (e as Error).message); }
  }
  return out;
}

it('so does one whose temp table a named statement made, run again by a Bind', async () => {
  const d = await namedScenario(DIRECT());
  expect(d).toEqual([1, 1, 1, 1]);
  await clients.endAll();
  const g = await namedScenario(gw.url());
  expect(g).toEqual(d);
}, 60_000);
