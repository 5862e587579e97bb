// A client that keeps its server connection (session mode, or pinned in transaction mode) and RESETs
// a setting keeps everything else the server holds for it, as on a direct connection: the setting it
// is pinned for (one pgway cannot lay on elsewhere), what a function or DO block set, and settings a
// superuser made before SET SESSION AUTHORIZATION to a user who may not make them. pgway puts back
// only the client's startup values, never resets the connection under it.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

let tx: TestGateway;
let session: TestGateway;

beforeAll(async () => {
  [tx, session] = await Promise.all([
    startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' }),
    startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 3000 }' }),
  ]);
});

afterAll(async () => {
  await Promise.all([tx?.stop(), session?.stop()]);
});

const testClients = clientsOfEachTest();
const connect = (url: string, options?: string): Promise<pg.Client> =>
  testClients.connect({ connectionString: url, statement_timeout: 5000, options } as pg.ClientConfig);

const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const show = async (c: pg.Client, name: string): Promise<string> =>
  (await c.query<{ v: string }>(`SELECT current_setting('${name}') AS v`)).rows[0]!.v;

/** A setting pgway cannot read (pins the client), then a RESET of another setting; the first is read back. */
async function pinnedThenReset(url: string): Promise<string[]> {
  const c = await connect(url);
  await c.query("SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE"); // a typmod: pgway cannot replay it, so it pins
  const before = await show(c, 'TimeZone');
  await c.query('RESET work_mem');
  return [before, await show(c, 'TimeZone')];
}

/** A setting made inside a DO block (session mode: the connection is the client's own), then a RESET of another one. */
async function doBlockThenReset(url: string): Promise<string[]> {
  const c = await connect(url);
  await c.query("DO $$ BEGIN PERFORM set_config('work_mem', '5MB', false); END $$");
  const before = await show(c, 'work_mem');
  await c.query('RESET statement_timeout');
  return [before, await show(c, 'work_mem')];
}

describe('a client that keeps its connection, after a RESET', () => {
  it('transaction mode: a pinned client keeps the setting it is pinned for after RESET of another setting', async () => {
    const want = await pinnedThenReset(directUrl());
    expect(want).toEqual(['<+05:30>-05:30', '<+05:30>-05:30']);
    expect(await pinnedThenReset(tx.url())).toEqual(want);
  });

  it('session mode: a setting made in a DO block survives RESET of another setting', async () => {
    const want = await doBlockThenReset(directUrl());
    expect(want).toEqual(['5MB', '5MB']);
    expect(await doBlockThenReset(session.url())).toEqual(want);
  });

  it('session mode: a setting made in a function survives a transaction that recovered from an error with ROLLBACK TO', async () => {
    const run = async (url: string): Promise<string[]> => {
      const c = await connect(url);
      await c.query("DO $$ BEGIN PERFORM set_config('work_mem', '5MB', false); END $$");
      await c.query('BEGIN');
      await c.query('SET lock_timeout = 5000');
      await c.query('SAVEPOINT s');
      await c.query('SELECT 1/0').catch(() => undefined);
      await c.query('ROLLBACK TO s');
      await c.query('COMMIT');
      return [await show(c, 'work_mem'), await show(c, 'lock_timeout')];
    };
    const want = await run(directUrl());
    expect(want).toEqual(['5MB', '5s']);
    expect(await run(session.url())).toEqual(want);
  });

  it('transaction mode: a superuser\'s setting survives SET SESSION AUTHORIZATION (which pins, and resets the role) to a user who may not make it', async () => {
    const info = lab();
    const steps = async (url: string): Promise<string[]> => {
      const c = await connect(url);
      const out: string[] = [];
      const step = async (sql: string): Promise<void> => {
        try {
          const r = await c.query(sql);
          out.push(r.rows.length > 0 ? String(Object.values(r.rows[0] as object)[0]) : r.command);
        } catch (err) {
          out.push(`error ${(err as { code?: string }).code ?? (err as Error).message}`);
        }
      };
      await step("SET session_replication_role = replica"); // superuser only
      await step('SET SESSION AUTHORIZATION app');
      await step('SHOW session_replication_role');
      await step('SELECT current_user');
      return out;
    };
    const want = await steps(pgUrl(lab().primary, info.superuser, info.superuserPassword, 'app'));
    expect(want).toEqual(['SET', 'SET', 'replica', 'app']);
    // The admin user logs in to the server as the superuser.
    expect(await steps(tx.url('admin', 'app'))).toEqual(want);
  });

  it('session mode: RESET and RESET ALL go back to the startup value, and keep what a DO block set', async () => {
    const run = async (url: string): Promise<string[]> => {
      const c = await connect(url, '-c work_mem=5MB');
      await c.query("SET work_mem = '6MB'");
      await c.query("DO $$ BEGIN PERFORM set_config('lock_timeout', '7s', false); END $$");
      await c.query('RESET work_mem');
      const afterReset = [await show(c, 'work_mem'), await show(c, 'lock_timeout')];
      await c.query("SET work_mem = '6MB'");
      await c.query('RESET ALL');
      return [...afterReset, await show(c, 'work_mem'), await show(c, 'lock_timeout')];
    };
    const want = await run(directUrl());
    expect(want).toEqual(['5MB', '7s', '5MB', '0']);
    expect(await run(session.url())).toEqual(want);
  });
});
