// min_size upkeep waits server_login_retry_ms after a server connection failed to open, as PgBouncer's
// launcher waits server_login_retry after a failed connect, min_pool_size included: a server that
// refuses pgway's logins (a wrong server_password) or never answers does not get min_size new logins
// every maintenance pass with nobody waiting, and gets another once the setting has passed. No
// direct-PostgreSQL half: a direct connection has no pool. min_size refills promptly after logins that
// succeed (ops-parity, pool-recovery).
import net from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';

const DB = 'min_size_login_retry';
const { files } = fileGatewayTests(DB);

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A client's first request, which opens the pool: what it got (an error with a code) or 'ok'. */
async function firstRequest(url: string): Promise<{ code?: string } | 'ok'> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  const outcome = await c.connect().then(() => c.query('SELECT 1')).then(() => 'ok' as const, (e: { code?: string }) => e);
  await c.end().catch(() => undefined);
  return outcome;
}

/** A server that accepts TCP connections and never says a word, counting them. */
async function silentServer(): Promise<{ port: number; accepted(): number }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

describe('min_size and server_login_retry_ms', () => {
  it('a pool whose logins are refused tries again no sooner than server_login_retry_ms, then does', async () => {
    const gw = await files.start({
      pool: '{ mode: transaction, size: 3, min_size: 3, query_wait_timeout_ms: 3000, server_login_retry_ms: 5000 }',
      users: ['{ name: badsrv, method: trust, server_user: app, server_password: wrong-password }'],
      logLevel: 'info',
    });
    const failures = (): number => gw.logs.filter((l) => l.includes('server connection failed')).length;
    // The client that asked hears the server's refusal (28P01); this creates the pool.
    expect(await firstRequest(gw.url('badsrv', DB, ''))).toMatchObject({ code: '28P01' });
    await sleep(500);
    const before = failures();
    await sleep(3000); // three maintenance passes, well inside server_login_retry_ms
    expect(failures() - before, 'refused server logins within server_login_retry_ms').toBe(0);
    await waitFor('another login once server_login_retry_ms has passed', () => failures() > before, 8000);
  });

  it('a pool whose server never answers tries again no sooner than server_login_retry_ms, then does', async () => {
    const silent = await silentServer();
    const gw = await files.start({
      pool: '{ mode: transaction, size: 2, min_size: 2, query_wait_timeout_ms: 3000, server_connect_timeout_ms: 300, server_login_retry_ms: 5000 }',
      primaryPort: silent.port,
    });
    // The client that asked gives up with its login (server_connect_timeout_ms); this creates the pool.
    expect(await firstRequest(gw.url())).not.toBe('ok');
    await sleep(500);
    const before = silent.accepted();
    await sleep(3000);
    expect(silent.accepted() - before, 'connections opened within server_login_retry_ms').toBe(0);
    await waitFor('another connection once server_login_retry_ms has passed', () => silent.accepted() > before, 8000);
  });
});
