/**
 * Gateways started from a YAML file, as in production, so that RELOAD and SIGHUP re-read it: for the
 * tests of operations (PAUSE, RELOAD, SHUTDOWN...). Their log lines are kept for tests that check
 * what a refused reload said.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { adminQuery, lab } from '../harness/lab.js';

export interface FileGatewayOptions {
  pool: string;
  /** name -> dbname on the lab primary; default the file's own database only. */
  databases?: Record<string, string>;
  /** Extra users (YAML flow maps). */
  users?: string[];
  /** Extra top-level YAML (limits, shutdown_timeout_ms, ...). */
  extra?: string;
  http?: boolean;
  listen?: string;
  logLevel?: string;
  /** Where the databases' primary listens instead of the lab's. */
  primaryPort?: number;
}

export interface FileGateway {
  gateway: Gateway;
  file: string;
  host: string;
  port: number;
  httpPort: number | undefined;
  logs: string[];
  url(user?: string, database?: string, password?: string): string;
  write(o: FileGatewayOptions): void;
  writeRaw(text: string): void;
  stop(): Promise<void>;
}

const PASSWORDS: Record<string, string> = { app: 'app-secret', admin: 'admin-secret' };

/** The gateways of one test file: their YAML files in a directory of their own, all stopped by stopAll(). */
export class FileGateways {
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'pgway-file-gateway-'));
  private readonly running: FileGateway[] = [];
  private count = 0;

  /** `database`: the database of url() and of a config that names none; `logLevel`: unless an option says. */
  constructor(
    private readonly database: string,
    private readonly logLevel = 'silent',
  ) {}

  yaml(o: FileGatewayOptions): string {
    const l = lab();
    const dbs = Object.entries(o.databases ?? { [this.database]: this.database }).map(([name, dbname]) => `
  ${name}:
    primary: { host: ${l.primary.host}, port: ${o.primaryPort ?? l.primary.port}, dbname: ${dbname}, sslmode: disable }`).join('');
    return `
listen: ${o.listen ?? '{ host: 127.0.0.1, port: 0 }'}
http: { enabled: ${o.http ? 'true' : 'false'}, host: 127.0.0.1, port: 0 }
log: { level: ${o.logLevel ?? this.logLevel} }
auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret }
    - { name: trustapp, method: trust, server_user: app, server_password: app-secret }
    - { name: admin, password: admin-secret, admin: true, server_user: postgres, server_password: ${l.superuserPassword} }
    - { name: tadmin, method: trust, admin: true, server_user: postgres, server_password: ${l.superuserPassword} }
${(o.users ?? []).map((u) => `    - ${u}`).join('\n')}
pool: ${o.pool}
${o.extra ?? ''}
databases:${dbs}
`;
  }

  async start(o: FileGatewayOptions): Promise<FileGateway> {
    const file = path.join(this.dir, `gateway-${++this.count}.yaml`);
    writeFileSync(file, this.yaml(o));
    const logs: string[] = [];
    const logger = pino({ level: o.logLevel ?? this.logLevel }, { write: (line: string) => void logs.push(line) });
    const gateway = new Gateway(loadConfig(file), logger);
    const address = await gateway.start();
    const gw: FileGateway = {
      gateway,
      file,
      host: address.host,
      port: address.port,
      httpPort: address.httpPort,
      logs,
      url: (user = 'app', database = this.database, password = PASSWORDS[user] ?? '') =>
        `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${address.host}:${address.port}/${database}`,
      write: (next) => writeFileSync(file, this.yaml(next)),
      writeRaw: (text) => writeFileSync(file, text),
      stop: () => gateway.shutdown(200),
    };
    this.running.push(gw);
    return gw;
  }

  /** A file in the gateways' directory (a config for a process a test starts itself). */
  pathOf(name: string): string {
    return path.join(this.dir, name);
  }

  /** Stops the gateways started since the last call (after each test). */
  async stopAll(): Promise<void> {
    await Promise.all(this.running.splice(0).map((g) => g.stop()));
  }

  /** Removes the config files (after all tests). */
  removeFiles(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The hooks of a test file whose gateways start from files: its own database `database` (made
 * before the file, dropped after it), and after each test the pg clients connect() opened ended and
 * the gateways stopped. A file's own afterEach hooks run before these (vitest runs them as a stack).
 */
export function fileGatewayTests(database: string): { files: FileGateways; connect(url: string): Promise<pg.Client> } {
  const files = new FileGateways(database);
  const opened: pg.Client[] = [];
  beforeAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await adminQuery(`CREATE DATABASE ${database} OWNER app`);
  });
  afterAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    files.removeFiles();
  });
  afterEach(async () => {
    const ended = (c: pg.Client): Promise<unknown> => Promise.race([c.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    await Promise.all(opened.splice(0).map(ended));
    await files.stopAll();
  });
  const connect = async (url: string): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    opened.push(client);
    await client.connect();
    return client;
  };
  return { files, connect };
}
