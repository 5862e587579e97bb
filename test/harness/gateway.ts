/**
 * Starts an in-process pgway Gateway in front of the lab's PostgreSQL, from a YAML snippet, on a
 * free port. Tests talk to it with real drivers and assert what a client sees.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { lab } from './lab.js';

export interface TestGateway {
  gateway: Gateway;
  host: string;
  port: number;
  unixSocketDir: string;
  /** A connection string for `user` (password from the lab) to `database` through pgway. */
  url(user?: string, database?: string, password?: string): string;
  stop(): Promise<void>;
}

export const PASSWORDS: Record<string, string> = {
  app: 'app-secret',
  md5user: 'md5-secret',
  plainuser: 'plain-secret',
  repluser: 'repl-secret',
  admin: 'admin-secret',
};

export interface GatewayOptions {
  /** Extra YAML merged at the top level (e.g. `pool: { size: 2 }`); must not repeat `databases`/`auth`. */
  yaml?: string;
  pool?: string;
  auth?: string;
  logLevel?: string;
  /** Where database `app`'s primary is reached instead of the lab's (e.g. a test proxy in front of it). */
  primary?: { host: string; port: number };
}

export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const l = lab();
  const unixSocketDir = mkdtempSync(path.join(os.tmpdir(), 'pgway-sock-'));
  const auth =
    options.auth ??
    `auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret }
    - { name: md5user, password: md5-secret, method: md5 }
    - { name: plainuser, password: plain-secret }
    - { name: repluser, password: repl-secret }
    - { name: trustuser, method: trust, server_user: app, server_password: app-secret }
    - { name: admin, password: admin-secret, admin: true, server_user: postgres, server_password: ${l.superuserPassword} }`;
  const primary = options.primary ?? l.primary;
  const yaml = `
listen: { host: 127.0.0.1, port: 0, unix_socket_dir: ${unixSocketDir} }
http: { enabled: false }
log: { level: ${options.logLevel ?? 'warn'} }
${auth}
pool: ${options.pool ?? '{ mode: session, size: 5, query_wait_timeout_ms: 5000 }'}
databases:
  app:
    primary: { host: ${primary.host}, port: ${primary.port}, dbname: ${l.database}, sslmode: disable }
    replicas: [ { host: ${l.replica.host}, port: ${l.replica.port}, sslmode: disable } ]
  postgres:
    primary: { host: ${l.primary.host}, port: ${l.primary.port}, dbname: postgres, sslmode: disable }
${options.yaml ?? ''}
`;
  const config = parseConfig(yaml, 'test-gateway.yaml');
  const gateway = new Gateway(config, pino({ level: options.logLevel ?? 'warn' }));
  const address = await gateway.start();
  return {
    gateway,
    host: address.host,
    port: address.port,
    unixSocketDir,
    url(user = 'app', database = 'app', password = PASSWORDS[user] ?? '') {
      return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${address.host}:${address.port}/${database}`;
    },
    stop: () => gateway.shutdown(200),
  };
}
