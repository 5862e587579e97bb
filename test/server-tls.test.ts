// Server-facing TLS: pgway opens its server connections with TLS as each target's sslmode asks,
// verifying the server's certificate for verify-ca / verify-full. The lab primary gets a
// certificate for the duration of this file (ssl can be switched on with a reload).
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { Config, SslMode } from '../src/config/schema.js';
import { Gateway } from '../src/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { run } from './helpers/run.js';

let certDir: string;
let certFile: string;
let otherCertFile: string;

async function makeCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const r = await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
  ]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

async function setServerSsl(on: boolean): Promise<void> {
  if (on) {
    await adminQuery(`ALTER SYSTEM SET ssl_cert_file = '${certFile}'`);
    await adminQuery(`ALTER SYSTEM SET ssl_key_file = '${certFile.replace(/\.crt$/, '.key')}'`);
    await adminQuery('ALTER SYSTEM SET ssl = on');
  } else {
    await adminQuery('ALTER SYSTEM RESET ssl');
    await adminQuery('ALTER SYSTEM RESET ssl_cert_file');
    await adminQuery('ALTER SYSTEM RESET ssl_key_file');
  }
  await adminQuery('SELECT pg_reload_conf()');
  // The postmaster applies the reload asynchronously; wait until new connections see it (bounded).
  for (let i = 0; i < 100; i++) {
    const { rows } = await adminQuery<{ ssl: string }>('SHOW ssl');
    if (rows[0]?.ssl === (on ? 'on' : 'off')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('ssl setting did not change');
}

beforeAll(async () => {
  certDir = mkdtempSync(path.join(os.tmpdir(), 'pgway-server-tls-'));
  const server = await makeCert(certDir, 'server');
  certFile = server.cert;
  otherCertFile = (await makeCert(certDir, 'other')).cert;
  // PostgreSQL reads the key as its own user and insists on owner-only permissions.
  const { rows } = await adminQuery<{ data_directory: string }>('SHOW data_directory');
  const owner = statSync(rows[0]!.data_directory);
  for (const f of [certDir, server.cert, server.key]) chownSync(f, owner.uid, owner.gid);
  chmodSync(server.key, 0o600);
  await setServerSsl(true);
});

afterAll(async () => {
  await setServerSsl(false);
  rmSync(certDir, { recursive: true, force: true });
});

function configWith(sslmode: SslMode, rootCert?: string): Config {
  const l = lab();
  const yaml = `
listen: { host: 127.0.0.1, port: 0 }
http: { enabled: false }
auth: { users: [ { name: app, password: app-secret } ] }
pool: { mode: transaction, size: 2, query_wait_timeout_ms: 5000, server_connect_timeout_ms: 5000 }
databases:
  app:
    primary: { host: 127.0.0.1, port: ${l.primary.port}, dbname: ${l.database}, sslmode: ${sslmode}${rootCert ? `, sslrootcert: ${rootCert}` : ''} }
`;
  return parseConfig(yaml, 'server-tls.yaml');
}

async function gatewayWith(sslmode: SslMode, rootCert?: string): Promise<Gateway> {
  const gateway = new Gateway(configWith(sslmode, rootCert), pino({ level: 'silent' }));
  await gateway.start();
  return gateway;
}

async function serverSslThrough(gateway: Gateway): Promise<boolean> {
  const { host, port } = gateway.address;
  const client = new pg.Client({ host, port, user: 'app', password: 'app-secret', database: 'app' });
  await client.connect();
  try {
    const { rows } = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

describe('server-facing TLS', () => {
  it.each<[SslMode, boolean]>([
    ['disable', false],
    ['prefer', true],
    ['require', true],
  ])('sslmode %s: the server connection uses TLS = %s', async (mode, expected) => {
    const gateway = await gatewayWith(mode);
    try {
      expect(await serverSslThrough(gateway)).toBe(expected);
    } finally {
      await gateway.shutdown(100);
    }
  });

  it('verify-full accepts the server certificate signed as configured, for the address it names', async () => {
    const gateway = await gatewayWith('verify-full', certFile);
    try {
      expect(await serverSslThrough(gateway)).toBe(true);
    } finally {
      await gateway.shutdown(100);
    }
  });

  it('verify-full refuses a server whose certificate the configured root did not sign; the client hears why', async () => {
    const gateway = await gatewayWith('verify-full', otherCertFile);
    try {
      await expect(serverSslThrough(gateway)).rejects.toMatchObject({ code: '08006' });
    } finally {
      await gateway.shutdown(100);
    }
  });

  it('a RELOAD that points sslrootcert at the root that signed the server is used by new server connections', async () => {
    const gateway = await gatewayWith('verify-full', otherCertFile);
    try {
      await expect(serverSslThrough(gateway)).rejects.toMatchObject({ code: '08006' });
      await gateway.reload(configWith('verify-full', certFile));
      expect(await serverSslThrough(gateway)).toBe(true);
    } finally {
      await gateway.shutdown(100);
    }
  });
});
