/**
 * Owns the listeners, the pools and the client sessions; starts the embedded sandbox when the
 * config names no databases; shuts everything down in order.
 */
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { pino, type Logger } from 'pino';
import type { Config, DatabaseConfig, ServerTarget, UserConfig } from './config/schema.js';
import { Pool } from './pool/pool.js';
import type { ServerCredentials } from './pool/server-connection.js';
import { startCluster, type RunningCluster } from './sandbox/postgres-cluster.js';
import { prepareUserSecret, type UserSecret } from './session/client-auth.js';
import { ClientSession } from './session/client-session.js';
import type { SessionContext } from './session/session-context.js';

export interface ListenAddress {
  host: string;
  port: number;
  unixSocket?: string;
}

export class Gateway implements SessionContext {
  readonly log: Logger;
  shuttingDown = false;
  private cfg: Config;
  private databases = new Map<string, DatabaseConfig>();
  private users = new Map<string, UserConfig>();
  private secrets = new Map<string, UserSecret>();
  private readonly pools = new Map<string, Pool>();
  private readonly sessions = new Set<ClientSession>();
  private readonly cancelKeys = new Map<number, ClientSession>();
  private admittedCount = 0;
  private secureContext: tls.SecureContext | undefined;
  private servers: net.Server[] = [];
  private sandbox: RunningCluster | undefined;
  private bound: ListenAddress | undefined;

  constructor(config: Config, logger?: Logger) {
    this.cfg = config;
    this.log = logger ?? pino({ level: config.log.level, redact: ['password', '*.password'] });
  }

  config(): Config {
    return this.cfg;
  }

  get address(): ListenAddress {
    if (!this.bound) throw new Error('gateway is not listening');
    return this.bound;
  }

  get sandboxCluster(): RunningCluster | undefined {
    return this.sandbox;
  }

  async start(): Promise<ListenAddress> {
    let databases = this.cfg.databases;
    if (databases.length === 0) databases = await this.startSandbox();
    this.applyConfig(this.cfg, databases);
    const { listen } = this.cfg;
    const tcp = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.accept(s));
    await listenOn(tcp, { host: listen.host, port: listen.port });
    this.servers.push(tcp);
    const port = (tcp.address() as net.AddressInfo).port;
    this.bound = { host: listen.host, port };
    if (listen.unixSocketDir) {
      const socketPath = path.join(listen.unixSocketDir, `.s.PGSQL.${port}`);
      rmSync(socketPath, { force: true });
      const unix = net.createServer((s) => this.accept(s));
      await listenOn(unix, { path: socketPath });
      this.servers.push(unix);
      this.bound.unixSocket = socketPath;
    }
    this.log.info({ ...this.bound, databases: [...this.databases.keys()] }, 'pgway listening');
    return this.bound;
  }

  private async startSandbox(): Promise<DatabaseConfig[]> {
    const plain = this.cfg.auth.users.filter((u) => u.password !== undefined && !/^(SCRAM-SHA-256\$|md5[0-9a-f]{32}$)/.test(u.password));
    this.log.info({ dataDir: this.cfg.sandbox.dataDir }, 'no databases configured: starting the embedded sandbox PostgreSQL');
    this.sandbox = await startCluster({
      dataDir: path.resolve(this.cfg.sandbox.dataDir),
      primaryPort: this.cfg.sandbox.port,
      users: plain.map((u) => ({ name: u.name, password: u.password!, superuser: u.admin, replication: u.admin })),
      databases: [{ name: 'app', owner: plain.find((u) => !u.admin)?.name ?? 'postgres' }],
      log: (line) => this.log.info(line),
    });
    const target = (port: number): ServerTarget => ({ host: '127.0.0.1', port, dbname: 'app', sslmode: 'disable' });
    const replicas = this.sandbox.replica ? [target(this.sandbox.replica.port)] : [];
    const app: DatabaseConfig = { name: 'app', primary: target(this.sandbox.primary.port), replicas, pool: this.cfg.pool };
    const postgres: DatabaseConfig = {
      name: 'postgres',
      primary: { ...app.primary, dbname: 'postgres' },
      replicas: replicas.map((r) => ({ ...r, dbname: 'postgres' })),
      pool: this.cfg.pool,
    };
    return [app, postgres];
  }

  private applyConfig(config: Config, databases: readonly DatabaseConfig[]): void {
    this.cfg = config;
    this.databases = new Map(databases.map((d) => [d.name, d]));
    this.users = new Map(config.auth.users.map((u) => [u.name, u]));
    this.secrets = new Map(config.auth.users.map((u) => [u.name, prepareUserSecret(u.name, u.method, u.password)]));
    const t = config.listen.tls;
    this.secureContext = t
      ? tls.createSecureContext({ cert: readFileSync(t.cert), key: readFileSync(t.key), ...(t.ca ? { ca: readFileSync(t.ca) } : {}) })
      : undefined;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const session = new ClientSession(socket, this);
    this.sessions.add(session);
  }

  // --- SessionContext ------------------------------------------------------------------------

  tlsContext(): tls.SecureContext | undefined {
    return this.secureContext;
  }

  userSecret(name: string): UserSecret | undefined {
    return this.secrets.get(name);
  }

  user(name: string): UserConfig | undefined {
    return this.users.get(name);
  }

  database(name: string): DatabaseConfig | undefined {
    return this.databases.get(name);
  }

  /** server_user wins, then the database's `user`, then the client's own name and password. */
  serverCredentials(db: DatabaseConfig, user: UserConfig): ServerCredentials {
    if (user.serverUser) return { user: user.serverUser, password: user.serverPassword ?? db.primary.password };
    if (db.primary.user) return { user: db.primary.user, password: db.primary.password };
    const own = user.password?.startsWith('SCRAM-SHA-256$') ? undefined : user.password;
    return { user: user.name, password: user.serverPassword ?? own };
  }

  primaryPool(db: DatabaseConfig, user: UserConfig): Pool {
    const key = `${db.name}\0${user.name}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(`${db.name}/${user.name}`, db.primary, this.serverCredentials(db, user), db.pool, this.log);
      this.pools.set(key, pool);
    }
    return pool;
  }

  admit(session: ClientSession): boolean {
    if (this.admittedCount >= this.cfg.limits.maxClientConn) return false;
    this.admittedCount++;
    session.admitted = true;
    return true;
  }

  registerCancelKey(session: ClientSession, _pid: number, secret: number): void {
    this.cancelKeys.set(secret, session);
  }

  cancel(pid: number, secret: number): void {
    const session = this.cancelKeys.get(secret);
    // Both halves must match, as in PostgreSQL; a wrong key is ignored silently.
    if (session && session.pid === pid) session.cancelRunning();
  }

  closed(session: ClientSession): void {
    if (!this.sessions.delete(session)) return;
    if (session.admitted) this.admittedCount--;
    if (this.cancelKeys.get(session.secret) === session) this.cancelKeys.delete(session.secret);
  }

  // --- introspection (tests, admin) ------------------------------------------------------------

  get clientCount(): number {
    return this.sessions.size;
  }

  poolStats(): ReturnType<Pool['stats']>[] {
    return [...this.pools.values()].map((p) => p.stats());
  }

  // --- shutdown --------------------------------------------------------------------------------

  /** Stops accepting, lets sessions finish up to shutdown_timeout_ms, then closes the rest. */
  async shutdown(timeoutMs = this.cfg.shutdownTimeoutMs): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.log.info({ clients: this.sessions.size, timeoutMs }, 'shutting down');
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await sleep(50);
    for (const session of [...this.sessions]) session.terminate();
    // Let released server connections finish their reset before the pools close them.
    await sleep(20);
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    if (this.sandbox) await this.sandbox.stop();
    this.log.info('pgway stopped');
  }
}

function listenOn(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
