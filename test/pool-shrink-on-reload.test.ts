// A RELOAD that lowers pool.size or max_db_connections applies while clients wait: a connection
// given back above the new count closes instead of going to the next client, so the pool comes
// down to the new size under load, and the clients still waiting are each served in turn on the
// connections that remain (none is left waiting while the pool has room). There is no
// direct-PostgreSQL half: a direct connection has no pool to shrink. Idle connections above a
// lowered max_db_connections close at the RELOAD itself, as idle ones above a lowered pool.size do.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { waitFor } from './helpers/pg-helpers.js';
import { adminQuery } from './harness/lab.js';

const DB = 'pool_shrink_on_reload';
const { files, connect } = fileGatewayTests(DB);

async function backends(): Promise<number> {
  const r = await adminQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, [DB]);
  return r.rows[0]!.n;
}

const waiting = (gw: FileGateway): number => gw.gateway.clients().filter((c) => c.state === 'waiting').length;

/**
 * Three clients hold a transaction each on the pool's three connections while three more wait for
 * one; the config `before` is replaced by `after` (a lower count of 1), then the holders commit.
 * Returns what a user would see once the pool has settled, and serves the waiters one by one.
 */
async function shrinkUnderLoad(before: string, after: string): Promise<unknown> {
  const gw = await files.start({ pool: before });
  const holders = await Promise.all([0, 1, 2].map(() => connect(gw.url())));
  const waiters = await Promise.all([0, 1, 2].map(() => connect(gw.url())));
  for (const h of holders) await h.query('BEGIN');
  for (const h of holders) await h.query('SELECT 1');
  const began = new Set<pg.Client>();
  const begins = waiters.map((w) => w.query('BEGIN').then(() => began.add(w)));
  await waitFor('3 waiting', () => waiting(gw) === 3, 3000);
  gw.write({ pool: after });
  await gw.gateway.reload();
  for (const h of holders) await h.query('COMMIT');
  // Two of the three connections close as they come back; the third serves the first waiter.
  const shrunk = (): boolean => began.size === 1 && waiting(gw) === 2 && gw.gateway.servers().length === 1;
  await waitFor('one transaction on one server connection, two clients waiting', shrunk, 3000).catch(() => undefined);
  const settled = { inTransaction: began.size, waiting: waiting(gw), servers: await backends() };
  // Each waiter in turn gets the remaining connection once the one before it commits.
  const committed = new Set<pg.Client>();
  for (let served = 0; served < waiters.length; served++) {
    await waitFor(`waiter ${served + 1} served`, () => began.size > served, 3000);
    const next = [...began].find((w) => !committed.has(w))!;
    await next.query('COMMIT');
    committed.add(next);
  }
  await Promise.all(begins);
  return { ...settled, allServed: committed.size, serversAtEnd: await backends() };
}

const expected = { inTransaction: 1, waiting: 2, servers: 1, allServed: 3, serversAtEnd: 1 };

describe('RELOAD lowering pool sizes while clients wait', () => {
  it('pool.size 3 -> 1: the pool comes down to one connection, which serves the waiters in turn', async () => {
    const pool = (size: number): string => `{ mode: transaction, size: ${size}, query_wait_timeout_ms: 4000 }`;
    expect(await shrinkUnderLoad(pool(3), pool(1))).toEqual(expected);
  });

  it('max_db_connections 3 -> 1: the database comes down to one connection, which serves the waiters in turn', async () => {
    const pool = (max: number): string => `{ mode: transaction, size: 5, max_db_connections: ${max}, query_wait_timeout_ms: 4000 }`;
    expect(await shrinkUnderLoad(pool(3), pool(1))).toEqual(expected);
  });

  it('max_db_connections 3 -> 1 with three idle connections: two close at the RELOAD, and the one left serves', async () => {
    const pool = (max: number): string => `{ mode: transaction, size: 5, max_db_connections: ${max} }`;
    const gw = await files.start({ pool: pool(3) });
    const clients = await Promise.all([0, 1, 2].map(() => connect(gw.url())));
    // Three transactions at once open three connections, idle in the pool once they commit.
    for (const c of clients) await c.query('BEGIN');
    for (const c of clients) await c.query('COMMIT');
    expect(await backends()).toBe(3);
    gw.write({ pool: pool(1) });
    await gw.gateway.reload();
    await waitFor('one server connection left', async () => (await backends()) === 1, 3000).catch(() => undefined);
    expect(await backends()).toBe(1);
    for (const c of clients) expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
