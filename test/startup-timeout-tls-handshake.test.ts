// Found by review round 34 B, and fixed (a client stalled in its TLS handshake is closed at once):
// Review 34 B. limits.startup_timeout_ms ("a client must finish startup and authentication within
// this") does not bound a client that asks for TLS and then never begins the handshake: pgway answers
// 'S', the timer fires, but the FATAL it ends the client with is queued inside a TLS socket that
// never becomes secure, so the connection stays open for the 30 s close grace (CLOSE_GRACE_MS) on top.
// PostgreSQL closes such a connection at authentication_timeout; a plaintext client that stalls is
// closed by pgway at startup_timeout_ms, as are TLS clients that stall after the handshake.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { lab } from './harness/lab.js';
import { untypedPacket } from './helpers/raw-client.js';
import { run } from './helpers/run.js';

const SSL_REQUEST = 80877103;
const STARTUP_TIMEOUT_MS = 1000;
let dir: string;
let gateway: Gateway;
let port = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgway-tls-timeout-'));
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  const r = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  chmodSync(key, 0o600);
  const l = lab();
  gateway = new Gateway(
    parseConfig(
      `
listen: { host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key} } }
http: { enabled: false }
limits: { startup_timeout_ms: ${STARTUP_TIMEOUT_MS} }
auth: { method: scram-sha-256, users: [ { name: app, password: app-secret } ] }
pool: { mode: transaction, size: 2 }
databases:
  app:
    primary: { host: ${l.primary.host}, port: ${l.primary.port}, dbname: ${l.database}, sslmode: disable }
`,
      'tls-timeout.yaml',
    ),
    pino({ level: 'warn' }),
  );
  port = (await gateway.start()).port;
});
afterAll(async () => {
  await gateway?.shutdown(200);
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the ms from `t0` until `socket` closed, or 'open' after `waitMs`. */
function closedAfter(socket: net.Socket, t0: number, waitMs: number): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), waitMs);
    socket.on('error', () => undefined);
    socket.resume(); // read to the end, so 'close' comes
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

describe('startup_timeout_ms', () => {
  it('closes a client that sent nothing (control)', async () => {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const closed = await closedAfter(socket, Date.now(), STARTUP_TIMEOUT_MS + 4000);
    socket.destroy();
    expect(closed).not.toBe('open');
  });

  it('closes a client that got S to its SSLRequest and never began the TLS handshake', async () => {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const t0 = Date.now();
    socket.write(untypedPacket(SSL_REQUEST));
    const answer = await new Promise<Buffer>((r) => socket.once('data', r));
    expect(answer.toString()).toBe('S');
    const closed = await closedAfter(socket, t0, STARTUP_TIMEOUT_MS + 4000);
    socket.destroy();
    expect(closed).not.toBe('open');
  });

  it('closes a TLS client that stops in the middle of its handshake', async () => {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const t0 = Date.now();
    socket.write(untypedPacket(SSL_REQUEST));
    await new Promise<Buffer>((r) => socket.once('data', r));
    // The first bytes of a ClientHello record header, and nothing more.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    const closed = await closedAfter(socket, t0, STARTUP_TIMEOUT_MS + 4000);
    socket.destroy();
    expect(closed).not.toBe('open');
  });

  it('a TLS client whose handshake completed still hears why it is refused (a wrong password: 28P01)', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: 'wrong', database: 'app', ssl: { rejectUnauthorized: false } });
    const err = await c.connect().then(() => undefined, (e: { code?: string }) => e.code);
    await c.end().catch(() => undefined);
    expect(err).toBe('28P01');
  });
});
