// Startup parameters pgway lays on each server connection that serves the client (set_config inside
// its settings block): those PostgreSQL takes at login with no lasting effect (transaction_*, a
// session_authorization the login user overrides) are left out, so the session works and nothing
// reaches the next client; those only a new backend can take (ignore_system_indexes, log_connections,
// ...) are refused at login with 0A000 naming the parameter, as a pooled connection cannot have them;
// those no session can change (is_superuser, server_version, ...) are refused at login with 55P02, as
// PostgreSQL refuses them. `options` is read as PostgreSQL reads its command line: its other switches
// (-S work_mem, -f plan type, ...) set what they set there, and one it does not have is FATAL 42601.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const testClients = clientsOfEachTest();
const connect = (url: string, options?: string): Promise<pg.Client> =>
  testClients.connect({ connectionString: url, ...(options ? { options } : {}) } as pg.ClientConfig);
async function one(c: pg.Client, sql: string): Promise<string> {
  try {
    const res = (await c.query(sql)) as pg.QueryResult | pg.QueryResult[];
    const r = Array.isArray(res) ? res[res.length - 1]! : res;
    return String(Object.values(r.rows[0] as object)[0]);
  } catch (err) {
    return `error ${(err as { code?: string }).code ?? (err as Error).message}`;
  }
}
const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
/** `SELECT 1`'s answer after logging in with `options`, or the login's error as "SEVERITY CODE message". */
async function loginOutcome(url: string, options: string): Promise<string> {
  try {
    return await one(await connect(url, options), 'SELECT 1');
  } catch (err) {
    const e = err as { code?: string; severity?: string; message: string };
    return `${e.severity} ${e.code} ${e.message}`;
  }
}

describe('startup parameters with no lasting effect at login', () => {
  it.each(['transaction_isolation=serializable', 'transaction_deferrable=on', 'transaction_read_only=on'])('-c %s is taken at login and the session works', async (opt) => {
    const run = async (url: string): Promise<string[]> => {
      const c = await connect(url, `-c ${opt}`);
      const out = [await one(c, 'SELECT 1'), await one(c, 'SHOW transaction_isolation'), await one(c, 'SHOW transaction_read_only')];
      await one(await connect(url), 'SELECT 1'); // another client on the connection: c's settings are laid on again
      out.push(await one(c, 'SELECT 2'));
      return out;
    };
    const want = await run(directUrl());
    expect(want).toEqual(['1', 'read committed', 'off', '2']);
    expect(await run(gw.url())).toEqual(want);
  });

  it("-c session_authorization=app of one superuser client does not reach its session or the next client's", async () => {
    const info = lab();
    const run = async (url: string): Promise<string[]> => {
      const a = await connect(url, '-c session_authorization=app');
      const b = await connect(url);
      const aUser = await one(a, "SELECT session_user || '/' || current_user");
      const bUser = await one(b, "SELECT session_user || '/' || current_user");
      return [aUser, bUser];
    };
    const want = await run(pgUrl(info.primary, info.superuser, info.superuserPassword, 'app'));
    // PostgreSQL keeps the login user as session user: the startup value is not applied.
    expect(want).toEqual([`${info.superuser}/${info.superuser}`, `${info.superuser}/${info.superuser}`]);
    // admin logs in to the server as the lab's superuser.
    expect(await run(gw.url('admin', 'app'))).toEqual(want);
  });
});

describe('startup parameters only a new server connection can take', () => {
  it.each(['ignore_system_indexes=on', 'log_disconnections=on'])('-c %s is refused at login with 0A000 naming it (PostgreSQL takes it)', async (opt) => {
    const info = lab();
    const run = (url: string): Promise<string> => loginOutcome(url, `-c ${opt}`);
    expect(await run(pgUrl(info.primary, info.superuser, info.superuserPassword, 'app'))).toBe('1');
    const name = opt.slice(0, opt.indexOf('='));
    expect(await run(gw.url('admin', 'app'))).toBe(`FATAL 0A000 unsupported startup parameter: ${name}`);
  });
});

describe('startup parameters no session can change', () => {
  it.each(['is_superuser=on', 'server_version=1', 'block_size=1'])('-c %s is refused at login with FATAL 55P02, as PostgreSQL does', async (opt) => {
    const run = (url: string): Promise<string> => loginOutcome(url, `-c ${opt}`);
    const want = await run(directUrl());
    expect(want).toBe(`FATAL 55P02 parameter "${opt.slice(0, opt.indexOf('='))}" cannot be changed`);
    expect(await run(gw.url())).toBe(want);
    // The pool's connection was not touched: the next client works.
    expect(await one(await connect(gw.url()), 'SELECT 1')).toBe('1');
  });
});

describe('`options` switches besides -c, read as PostgreSQL reads its command line', () => {
  const run = async (url: string, options: string): Promise<string> => {
    try {
      return await one(await connect(url, options), "SELECT current_setting('work_mem') || ' ' || current_setting('enable_seqscan')");
    } catch (err) {
      const e = err as { code?: string; severity?: string; message: string };
      return `${e.severity} ${e.code} ${e.message}`;
    }
  };

  it.each([
    ['-S 2048', '2MB on'],
    ['-fs', '4MB off'],
    ['-S1024 -fs --work-mem=3MB', '3MB off'],
    ['-Z', 'FATAL 42601 invalid command-line argument for server process: -Z'],
    ['-c work_mem', 'FATAL 42601 -c work_mem requires a value'],
    ['work_mem=2MB', 'FATAL 42601 invalid command-line argument for server process: work_mem=2MB'],
  ])('options=%j', async (options, expected) => {
    const want = await run(directUrl(), options);
    expect(want).toBe(expected);
    expect(await run(gw.url(), options)).toBe(want);
  });
});
