// Startup parameters pgway lays on each server connection that serves the client (set_config inside
// its settings block): those PostgreSQL takes at login with no lasting effect (a session_authorization
// the login user overrides) are left out, so nothing reaches the client's session or the next client's.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const opened: pg.Client[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => Promise.race([c.end().catch(() => undefined), sleep(1000)])));
});
async function connect(url: string, options?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, ...(options ? { options } : {}) } as pg.ClientConfig);
  c.on('error', () => undefined);
  opened.push(c);
  await c.connect();
  return c;
}
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

describe('startup parameters with no lasting effect at login', () => {
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
