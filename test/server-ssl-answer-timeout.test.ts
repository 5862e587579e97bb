// server_connect_timeout_ms covers every step of opening a server connection, the wait for the
// server's answer to SSLRequest too. With sslmode prefer (libpq's default, the README's example) a
// server that accepts and never answers left the login under way for ever: the client never heard
// 08006, a pool of one stayed full, SHOW POOLS showed sv_login 1, and PAUSE, which waits for logins
// under way, never answered. sslmode disable is the control.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { startHoldingProxy, type HoldingProxy } from './helpers/holding-proxy.js';
import { clientsOfEachTest, errorOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';

const DB = 'ssl_answer_timeout';
let proxy: HoldingProxy;
const gateways: Gateway[] = [];
const { connect, endAll: endClients } = clientsOfEachTest();

beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
  proxy = await startHoldingProxy();
});
afterAll(async () => {
  proxy?.close();
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
});
afterEach(async () => {
  proxy.frozen = false;
  proxy.release();
  await endClients(); // here, between the proxy's release and the gateways' shutdown
  await Promise.all(gateways.splice(0).map((g) => g.shutdown(200)));
});

async function start(sslmode: string): Promise<{ gateway: Gateway; url: (user?: string, db?: string) => string }> {
  const l = lab();
  const yaml = `
listen: { host: 127.0.0.1, port: 0, unix_socket_dir: ${mkdtempSync(path.join(os.tmpdir(), 'ssl-answer-sock-'))} }
http: { enabled: false }
log: { level: silent }
auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret }
    - { name: admin, password: admin-secret, admin: true, server_user: postgres, server_password: ${l.superuserPassword} }
pool: { mode: transaction, size: 1, query_wait_timeout_ms: 6000, server_connect_timeout_ms: 1000, server_login_retry_ms: 200 }
databases:
  ${DB}:
    primary: { host: 127.0.0.1, port: ${proxy.port}, dbname: ${DB}, sslmode: ${sslmode} }
`;
  const gateway = new Gateway(parseConfig(yaml, 'ssl-answer.yaml'), pino({ level: 'silent' }));
  const addr = await gateway.start();
  gateways.push(gateway);
  const pw: Record<string, string> = { app: 'app-secret', admin: 'admin-secret' };
  return { gateway, url: (user = 'app', db = DB) => `postgres://${user}:${pw[user]}@${addr.host}:${addr.port}/${db}` };
}

/** A gateway whose pool knows the server, then has no connection: the next request opens one. */
async function primed(sslmode: string) {
  const gw = await start(sslmode);
  const admin = await connect(gw.url('admin', 'pgway'));
  const client = await connect(gw.url());
  await client.query('SELECT 1');
  await admin.query('RECONNECT');
  await waitFor('the idle connection to close', () => gw.gateway.servers().length === 0);
  return { gw, admin, client };
}

const loginsUnderWay = (g: Gateway): number => g.pools().reduce((n, p) => n + p.serversLogin, 0);

describe.each(['disable', 'prefer'])('sslmode %s: a server that accepts the connection and never answers', (sslmode) => {
  it('fails the login within server_connect_timeout_ms (08006) and the pool serves the next client', async () => {
    const { gw, client } = await primed(sslmode);
    proxy.frozen = true; // every server answer from now on is held...
    const first = errorOf(client.query('SELECT 1'));
    await waitFor('a login under way', () => loginsUnderWay(gw.gateway) === 1);
    proxy.frozen = false; // ...and the held ones are never let through (no release()): that server stays silent
    const got = await Promise.race([first, sleep(3000).then(() => 'no answer within 3 s')]);
    expect.soft(sqlstate(got) ?? got, 'the client whose login hung').toBe('08006');
    expect.soft(loginsUnderWay(gw.gateway), 'SHOW POOLS sv_login').toBe(0);
    // The server answers new connections: the next client is served.
    const other = await connect(gw.url());
    const r = await Promise.race([
      other.query<{ n: number }>('SELECT 2 AS n').then((x) => x.rows, (e: { code?: string; message: string }) => `${e.code}: ${e.message}`),
      sleep(8000).then(() => 'no answer within 8 s'),
    ]);
    expect(r).toEqual([{ n: 2 }]);
  }, 20000);

  it('PAUSE answers once the login under way has timed out', async () => {
    const { gw, admin, client } = await primed(sslmode);
    proxy.frozen = true;
    const q = client.query('SELECT 1');
    q.catch(() => undefined);
    await waitFor('a login under way', () => loginsUnderWay(gw.gateway) === 1);
    proxy.frozen = false;
    const pause = admin.query('PAUSE').then(() => 'PAUSE', (e: Error) => e.message);
    const got = await Promise.race([pause, sleep(3000).then(() => 'PAUSE did not answer within 3 s')]);
    expect(got).toBe('PAUSE');
    // A second console lifts the pause whatever happened (the first may still be waiting).
    const admin2 = await connect(gw.url('admin', 'pgway'));
    await admin2.query('RESUME').catch(() => undefined);
  }, 20000);
});
