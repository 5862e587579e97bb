/**
 * Owns the listeners, the pools and the client sessions; starts the embedded sandbox when the
 * config names no databases; reloads the config; shuts everything down in order. Also the
 * admin console's and HTTP endpoint's window onto all of that (AdminView).
 */
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import v8 from 'node:v8';
import { pino, type Logger } from 'pino';
import type { AdminView, ClientInfo, PauseEnd, PoolInfo, ServerInfo } from './admin/admin-view.js';
import { runAdminCommand } from './admin/console.js';
import { AdminHttp } from './admin/http.js';
import { StatsPeriod, totalsByDatabase, type StatsAverages } from './admin/stats-period.js';
import { loadConfig } from './config/load.js';
import { keepRestartOnly } from './config/restart-only.js';
import { ADMIN_DATABASES, type Config, type DatabaseConfig, type ServerTarget, type UserConfig } from './config/schema.js';
import { nowMs } from './clock.js';
import { AdminTerminationError, type GatewayError } from './errors.js';
import { ConnectionLimit } from './pool/connection-limit.js';
import { Pool, PoolCounters } from './pool/pool.js';
import type { ServerCredentials } from './pool/server-connection.js';
import { initSessionEffects } from './router/session-effects.js';
import { startCluster, type RunningCluster } from './sandbox/postgres-cluster.js';
import { prepareUserSecret, type UserSecret } from './session/client-auth.js';
import { ClientSession } from './session/client-session.js';
import { acceptDirect, type AcceptedConnection } from './wire/direct-reads.js';
import type { SessionContext } from './session/session-context.js';

export const VERSION = '0.1.0';

export interface ListenAddress {
  host: string;
  port: number;
  unixSocket?: string;
  httpPort?: number;
}

export class Gateway implements SessionContext, AdminView {
  readonly log: Logger;
  readonly version = VERSION;
  shuttingDown = false;
  private cfg: Config;
  private sandboxDatabases: DatabaseConfig[] | undefined;
  private databases = new Map<string, DatabaseConfig>();
  private users = new Map<string, UserConfig>();
  private secrets = new Map<string, UserSecret>();
  private readonly poolMap = new Map<string, Pool>();
  /** Pools a RELOAD replaced that still have server connections out (see Pool.retire). */
  private readonly retiredPools = new Set<Pool>();
  /**
   * PAUSE and PAUSE db in force, as PgBouncer keeps them: a pool created later (a new user, the
   * pool a RELOAD put in place of a paused one) starts paused. Each PAUSE's own token tells it
   * whether a RESUME ended it before it took hold.
   */
  private pausedAll: object | undefined;
  private readonly pausedDatabases = new Map<string, object>();
  /** Each (database, user)'s totals and histograms, kept across a RELOAD that replaces its pool. */
  private readonly poolCounters = new Map<string, PoolCounters>();
  private readonly dbLimits = new Map<string, ConnectionLimit>();
  private readonly sessions = new Set<ClientSession>();
  /** Clients by the secret of their cancel key; two may draw the same one (the pid tells them apart). */
  private readonly cancelKeys = new Map<number, ClientSession | ClientSession[]>();
  private admittedCount = 0;
  private secureContext: tls.SecureContext | undefined;
  private listeners: net.Server[] = [];
  private http: AdminHttp | undefined;
  private sandbox: RunningCluster | undefined;
  private bound: ListenAddress | undefined;
  private readonly statsPeriod = new StatsPeriod(nowMs());
  private statsTimer: NodeJS.Timeout | undefined;

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

  get ready(): boolean {
    return this.bound !== undefined && !this.shuttingDown;
  }

  async start(): Promise<ListenAddress> {
    await initSessionEffects();
    if (this.cfg.databases.length === 0) this.sandboxDatabases = await this.startSandbox();
    this.applyConfig(this.cfg);
    const { listen } = this.cfg;
    const tcp = net.createServer();
    await this.listenOn(tcp, { host: listen.host, port: listen.port });
    this.listeners.push(tcp);
    const port = (tcp.address() as net.AddressInfo).port;
    this.bound = { host: listen.host, port };
    if (listen.unixSocketDir) {
      const socketPath = path.join(listen.unixSocketDir, `.s.PGSQL.${port}`);
      rmSync(socketPath, { force: true });
      const unix = net.createServer();
      await this.listenOn(unix, { path: socketPath });
      this.listeners.push(unix);
      this.bound.unixSocket = socketPath;
    }
    if (this.cfg.http.enabled) {
      this.http = new AdminHttp(this);
      this.bound.httpPort = await this.http.listen(this.cfg.http.host, this.cfg.http.port);
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
    const target = (port: number, dbname: string): ServerTarget => ({ host: '127.0.0.1', port, dbname, sslmode: 'disable' });
    const { primary, replica } = this.sandbox;
    return ['app', 'postgres'].map((name) => ({
      name,
      primary: target(primary.port, name),
      replicas: replica ? [target(replica.port, name)] : [],
      pool: this.cfg.pool,
    }));
  }

  private applyConfig(config: Config): void {
    const databases = this.sandboxDatabases?.map((d) => ({ ...d, pool: config.pool })) ?? config.databases;
    const t = config.listen.tls;
    // Build everything first: a config whose files cannot be read changes nothing.
    const secureContext = t
      ? tls.createSecureContext({ cert: readFileSync(t.cert), key: readFileSync(t.key), ...(t.ca ? { ca: readFileSync(t.ca) } : {}) })
      : undefined;
    const secrets = new Map(config.auth.users.map((u) => [u.name, this.secretOf(u)]));
    // Only a changed level is applied: a logger handed in (tests, embedding) keeps its own otherwise.
    if (config.log.level !== this.cfg.log.level) this.log.level = config.log.level;
    const periodChanged = config.statsPeriodMs !== this.cfg.statsPeriodMs || !this.statsTimer;
    this.cfg = config;
    setParallelScavenge(config.gc.parallelScavenge);
    if (periodChanged) this.startStatsPeriod(config.statsPeriodMs);
    this.secureContext = secureContext;
    this.secrets = secrets;
    this.databases = new Map(databases.map((d) => [d.name, d]));
    this.users = new Map(config.auth.users.map((u) => [u.name, u]));
    // A database that left the config leaves its PAUSE db / KILL db with it (RESUME db can no longer
    // name it): added back later, it starts unpaused, as PgBouncer makes it afresh.
    for (const name of this.pausedDatabases.keys()) if (!this.databases.has(name)) this.pausedDatabases.delete(name);
    const replaced: [string, Pool][] = [];
    for (const [key, pool] of this.poolMap) {
      const [dbName, userName] = key.split('\0') as [string, string];
      const db = this.databases.get(dbName);
      const user = this.users.get(userName);
      if (db && user && sameTarget(pool.target, db.primary) && sameCredentials(pool.credentials, this.serverCredentials(db, user))) {
        const limit = this.dbLimits.get(db.name);
        if (limit && limit.max !== db.pool.maxDbConnections) {
          limit.max = db.pool.maxDbConnections;
          limit.trimIdle();
          limit.wake();
        }
        pool.settings = db.pool;
        continue;
      }
      replaced.push([key, pool]);
    }
    for (const [key] of replaced) this.poolMap.delete(key);
    for (const key of this.poolCounters.keys()) {
      const [dbName, userName] = key.split('\0') as [string, string];
      if (!this.databases.has(dbName) || !this.users.has(userName)) this.poolCounters.delete(key);
    }
    // After the maps above are final: a retired pool's waiters move on at once.
    for (const [key, pool] of replaced) {
      const [dbName, userName] = key.split('\0') as [string, string];
      this.retiredPools.add(pool);
      pool.retire(() => this.successor(dbName, userName), () => this.retiredPools.delete(pool));
      // The database and user still exist: the pool that replaces it is there at once, so SHOW POOLS,
      // SHOW STATS and /metrics keep its row (and the clients it serves) without waiting for a query.
      this.successor(dbName, userName);
    }
    // Clients still on a retired pool's connections (session mode, a pin, a transaction under way)
    // read their settings there: they follow the database's entry, as its other clients do.
    for (const pool of this.retiredPools) {
      const db = this.databases.get(pool.database);
      if (db) pool.settings = db.pool;
    }
    // A timer armed under the old settings would end a client at the old deadline, or never.
    for (const session of this.sessions) session.settingsReloaded();
  }

  /**
   * A user's SCRAM keys and MD5 hash. A plaintext password costs a PBKDF2 (about 1 ms) to turn into
   * keys: a RELOAD keeps the keys of a user whose password and method did not change.
   */
  private secretOf(u: UserConfig): UserSecret {
    const before = this.users.get(u.name);
    const kept = before && before.password === u.password && before.method === u.method ? this.secrets.get(u.name) : undefined;
    return kept ?? prepareUserSecret(u.name, u.method, u.password);
  }

  /** The pool serving (database, user) under the running config, or why there is none. */
  private successor(dbName: string, userName: string): Pool | GatewayError {
    const db = this.databases.get(dbName);
    if (!db) return new AdminTerminationError(`database "${dbName}" was removed from the config`);
    const user = this.users.get(userName);
    if (!user) return new AdminTerminationError(`user "${userName}" was removed from the config`);
    return this.primaryPool(db, user);
  }

  /** RELOAD / SIGHUP: a new config from the same file; an invalid one is refused and the old stays. */
  async reload(next?: Config): Promise<void> {
    let config: Config;
    try {
      const kept = keepRestartOnly(this.cfg, next ?? loadConfig(this.cfg.source));
      config = kept.config;
      // At start, no databases means the sandbox; on a reload it would end every client. A file
      // caught empty (an editor truncating it, a stray `>`) is refused, as PgBouncer refuses one.
      if (config.databases.length === 0 && this.sandboxDatabases === undefined) {
        throw new Error('the new config names no databases (an empty or truncated file?)');
      }
      this.applyConfig(config);
      if (kept.deferred.length > 0) this.log.warn({ settings: kept.deferred }, 'these settings take effect at the next restart');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'config reload refused; keeping the running config');
      throw err;
    }
    this.log.info({ source: config.source }, 'config reloaded');
  }

  /** Connections arrive as bare handles (acceptDirect): the session makes its socket, reading its way. */
  private accept(accepted: AcceptedConnection): void {
    const session = new ClientSession(accepted, this);
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

  databasesServed(): DatabaseConfig[] {
    return [...this.databases.values()];
  }

  isAdminDatabase(name: string): boolean {
    return ADMIN_DATABASES.has(name);
  }

  adminQuery(sql: string, signal?: AbortSignal): Promise<Buffer[]> {
    return runAdminCommand(sql, this, signal);
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
    let pool = this.poolMap.get(key);
    if (!pool) {
      let limit = this.dbLimits.get(db.name);
      if (!limit) this.dbLimits.set(db.name, (limit = new ConnectionLimit(db.pool.maxDbConnections)));
      limit.max = db.pool.maxDbConnections;
      let counters = this.poolCounters.get(key);
      if (!counters) this.poolCounters.set(key, (counters = new PoolCounters()));
      pool = new Pool(db.name, user.name, db.primary, this.serverCredentials(db, user), db.pool, this.log, limit, counters);
      if (this.isPaused(db.name)) pool.pause();
      this.poolMap.set(key, pool);
    }
    return pool;
  }

  /**
   * What the server reported to another pool that logs in as the same server user on the same
   * server: session_authorization, is_superuser and the role's own settings (ALTER ROLE ... SET
   * TimeZone) differ between server users, and PostgreSQL reports only changes later.
   */
  serverParamsFor(pool: Pool): ReadonlyMap<string, string> | undefined {
    const { target, credentials } = pool;
    for (const other of this.poolMap.values()) {
      if (other.serverParams === undefined || other.credentials.user !== credentials.user) continue;
      const t = other.target;
      if (t.host === target.host && t.port === target.port && t.dbname === target.dbname) return other.serverParams;
    }
    return undefined;
  }

  /** With no successor the retired pool itself: it answers the client's next acquire with the reason. */
  poolFor(retired: Pool): Pool {
    const next = this.successor(retired.database, retired.user);
    return next instanceof Pool ? next : retired;
  }

  admit(session: ClientSession, always = false): boolean {
    if (!always && this.admittedCount >= this.cfg.limits.maxClientConn) return false;
    this.admittedCount++;
    session.admitted = true;
    return true;
  }

  registerCancelKey(session: ClientSession, _pid: number, secret: number): void {
    const had = this.cancelKeys.get(secret);
    if (had === undefined || had === session) this.cancelKeys.set(secret, session);
    else if (Array.isArray(had)) had.push(session);
    else this.cancelKeys.set(secret, [had, session]);
  }

  cancel(pid: number, secret: number): Promise<void> | undefined {
    const entry = this.cancelKeys.get(secret);
    // Both halves must match, as in PostgreSQL; a wrong key is ignored silently.
    const session = Array.isArray(entry) ? entry.find((s) => s.pid === pid) : entry?.pid === pid ? entry : undefined;
    return session?.cancelRunning();
  }

  closed(session: ClientSession): void {
    if (!this.sessions.delete(session)) return;
    if (session.admitted) this.admittedCount--;
    const entry = this.cancelKeys.get(session.secret);
    if (entry === session) {
      this.cancelKeys.delete(session.secret);
    } else if (Array.isArray(entry)) {
      const rest = entry.filter((s) => s !== session);
      if (rest.length === 1) this.cancelKeys.set(session.secret, rest[0]!);
      else this.cancelKeys.set(session.secret, rest);
    }
  }

  // --- AdminView -------------------------------------------------------------------------------

  get clientCount(): number {
    return this.sessions.size;
  }

  /** SHOW STATS' averages cover the period just ended; a new length starts a new period now. */
  private startStatsPeriod(periodMs: number): void {
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this.endStatsPeriod(), periodMs);
    this.statsTimer.unref();
  }

  private endStatsPeriod(): void {
    const averages = this.statsPeriod.tick(nowMs(), totalsByDatabase(this.pools()));
    for (const [database, a] of averages) {
      if (a.transactions === 0 && a.requests === 0) continue;
      // PgBouncer's log_stats line, per database that had traffic.
      this.log.info({
        database, xactsPerSec: Math.round(a.transactions), queriesPerSec: Math.round(a.requests), inBytesPerSec: Math.round(a.bytesReceived),
        outBytesPerSec: Math.round(a.bytesSent), xactUs: Math.round(a.transactionTimeUs), queryUs: Math.round(a.requestTimeUs), waitUs: Math.round(a.waitTimeUs),
      }, 'stats');
    }
  }

  statsAverages(database: string): StatsAverages {
    return this.statsPeriod.averages(database);
  }

  /**
   * One row per database and user, as PgBouncer has: a pool a RELOAD retired (new target or
   * credentials) still has connections out, and they count in its successor's row.
   */
  pools(): PoolInfo[] {
    const clients = [...this.sessions];
    const rows = new Map<string, PoolInfo>();
    for (const pool of [...this.poolMap.values(), ...this.retiredPools]) {
      const stats = pool.stats();
      const row = rows.get(pool.name);
      if (row) {
        row.serversActive += stats.active;
        row.serversTested += stats.tested;
        row.serversUsed += stats.used;
        row.serversIdle += stats.idle;
        row.serversLogin += stats.connecting;
        continue;
      }
      const { database, user } = pool;
      const mine = clients.filter((c) => c.poolName === pool.name);
      rows.set(pool.name, {
        database,
        user,
        mode: this.users.get(user)?.poolMode ?? pool.settings.mode,
        // As in PgBouncer: linked to a server connection, or logged in with nothing waiting.
        clientsActive: mine.filter((c) => c.state === 'ready' && !c.isWaiting).length,
        clientsWaiting: mine.filter((c) => c.isWaiting).length,
        serversActive: stats.active,
        serversTested: stats.tested,
        serversUsed: stats.used,
        serversIdle: stats.idle,
        serversLogin: stats.connecting,
        maxWaitMs: stats.maxWaitMs,
        paused: pool.paused,
        counters: pool.counters,
      });
    }
    return [...rows.values()];
  }

  clients(): ClientInfo[] {
    return [...this.sessions].map((c) => {
      const server = c.attachedServer;
      const state = c.state === 'ready' || c.state === 'admin' || c.state === 'replication'
        ? (server ? 'active' : c.isWaiting ? 'waiting' : 'idle')
        : c.isWaiting ? 'waiting' : 'login';
      return {
        id: c.id,
        user: c.user,
        database: c.database,
        state,
        addr: c.remoteHost,
        port: c.remotePort,
        connectTime: c.connectedAt,
        requestTime: c.requestTime,
        waitMs: c.isWaiting ? Math.round(nowMs() - c.waitingSince) : 0,
        tls: c.tls,
        applicationName: c.params.get('application_name') ?? '',
        preparedStatements: c.preparedCount,
        serverId: server?.id ?? 0,
        serverPid: server?.pid ?? 0,
      };
    });
  }

  servers(): ServerInfo[] {
    const clients = new Map<number, ClientSession>();
    for (const c of this.sessions) clients.set(c.id, c);
    return [...this.poolMap.values(), ...this.retiredPools].flatMap((pool) => {
      const { database } = pool;
      // The role the connection logs in as (a user's server_user), as PgBouncer shows it.
      const { user } = pool.credentials;
      return pool.connections().map(({ conn, state }) => ({
        id: conn.id,
        user,
        database,
        state: state === 'active' && !conn.clientId ? 'tested' : state,
        addr: conn.target.host,
        port: conn.target.port,
        connectTime: conn.createdAt,
        // A linked connection's latest request is its client's, as PgBouncer shows it.
        requestTime: (conn.clientId ? clients.get(conn.clientId)?.requestTime : undefined) || conn.lastUsedAt,
        pid: conn.pid,
        tls: conn.isTls,
        preparedStatements: conn.statements.prepared.size,
        clientId: conn.clientId,
      } satisfies ServerInfo));
    });
  }

  /** The pools of `database` (every pool without it), retired ones included: their connections are still out. */
  private poolsOf(database?: string): Pool[] {
    return [...this.poolMap.values(), ...this.retiredPools].filter((p) => !database || p.database === database);
  }

  isPaused(database: string): boolean {
    return this.pausedAll !== undefined || this.pausedDatabases.has(database);
  }

  pausedBy(database?: string): boolean {
    return database === undefined ? this.pausedAll !== undefined : this.pausedDatabases.has(database);
  }

  get anyPaused(): boolean {
    return this.pausedAll !== undefined || this.pausedDatabases.size > 0;
  }

  async pause(database?: string, signal?: AbortSignal): Promise<PauseEnd> {
    const joined = database === undefined ? this.pausedAll : this.pausedDatabases.get(database);
    const token = joined ?? {};
    if (database === undefined) this.pausedAll = token;
    else this.pausedDatabases.set(database, token);
    const pools = this.poolsOf(database);
    for (const pool of pools) pool.pause();
    const drained = Promise.all(pools.map((p) => p.drained()));
    await (signal ? Promise.race([drained, aborted(signal)]) : drained);
    const inForce = (database === undefined ? this.pausedAll : this.pausedDatabases.get(database)) === token;
    if (signal?.aborted) {
      // A cancel gives the PAUSE up, as PgBouncer's admin_handle_cancel resumes: what this PAUSE put in
      // place is lifted; a pause it joined (an earlier PAUSE db, KILL db) is the earlier command's.
      if (inForce && !joined) this.lift(database);
      return 'canceled';
    }
    if (database !== undefined && !this.databases.has(database)) return 'removed';
    return inForce ? 'paused' : 'resumed';
  }

  /** RESUME lifts every pause; RESUME db lifts PAUSE db (a database stays paused under a global PAUSE). */
  resume(database?: string): void {
    if (database === undefined) this.pausedDatabases.clear();
    this.lift(database);
  }

  /** Ends PAUSE (only the global one) or PAUSE db; pools that no other pause holds run again. */
  private lift(database?: string): void {
    if (database === undefined) this.pausedAll = undefined;
    else this.pausedDatabases.delete(database);
    for (const pool of this.poolsOf(database)) if (!this.isPaused(pool.database)) pool.resume();
  }

  reconnect(database?: string): void {
    for (const pool of this.poolsOf(database)) pool.reconnect();
  }

  /** KILL db: ends its clients and server connections; as in PgBouncer, it stays paused until RESUME. */
  kill(database: string): void {
    if (!this.pausedDatabases.has(database)) this.pausedDatabases.set(database, {});
    for (const pool of this.poolsOf(database)) pool.pause();
    const reason = new AdminTerminationError(`KILL ${database}`);
    for (const session of [...this.sessions]) if (session.database === database) session.terminate(reason);
    for (const pool of this.poolsOf(database)) pool.reconnect();
  }

  // --- shutdown --------------------------------------------------------------------------------

  /** Stops accepting, lets sessions finish up to shutdown_timeout_ms, then closes the rest. */
  async shutdown(timeoutMs = this.cfg.shutdownTimeoutMs): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.log.info({ clients: this.sessions.size, timeoutMs }, 'shutting down');
    clearInterval(this.statsTimer);
    // close() stops accepting at once; its callback waits for the open connections, closed below.
    const listenersClosed = this.listeners.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    const deadline = Date.now() + timeoutMs;
    while (this.hasBusySessions() && Date.now() < deadline) await sleep(50);
    for (const session of [...this.sessions]) session.terminate();
    await Promise.race([Promise.all(listenersClosed), sleep(1000)]);
    // Let released server connections finish their reset before the pools close them.
    await sleep(20);
    await Promise.all(this.poolsOf().map((p) => p.close()));
    await this.http?.close();
    if (this.sandbox) await this.sandbox.stop();
    this.log.info('pgway stopped');
  }

  /** Listens; from the moment it listens (before any connection can be accepted), accepts through acceptDirect. */
  private listenOn(server: net.Server, options: net.ListenOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options, () => {
        server.removeListener('error', reject);
        acceptDirect(server, (accepted) => this.accept(accepted), (err) => this.log.warn({ err: err.message }, 'accepting a connection failed'));
        resolve();
      });
    });
  }

  /**
   * Whether a pooled client may still finish something: it holds a server connection (a
   * transaction, or session mode) or waits for one. A client held by PAUSE cannot, nor can the
   * admin console or a replication stream: shutdown does not wait for them.
   */
  private hasBusySessions(): boolean {
    for (const s of this.sessions) {
      if (s.mode === undefined) continue;
      // A client PAUSE holds (waiting, in session mode too, at login) has nothing running to finish.
      const held = s.isWaiting && this.isPaused(s.database);
      if (s.attachedServer || (!held && (s.mode === 'session' || s.isWaiting))) return true;
    }
    return false;
  }
}


const sameTarget = (a: ServerTarget, b: ServerTarget): boolean =>
  a.host === b.host && a.port === b.port && a.dbname === b.dbname && a.sslmode === b.sslmode && a.sslrootcert === b.sslrootcert;

const sameCredentials = (a: ServerCredentials, b: ServerCredentials): boolean => a.user === b.user && a.password === b.password;

/**
 * gc.parallel_scavenge. V8 hands part of each young-generation GC (one every ~150 ms under load) to
 * helper threads and waits for them. On a host whose cores PostgreSQL keeps busy the scheduler can hold a
 * helper back for milliseconds, and every client waits with pgway; scavenging on the main thread alone
 * removes those stalls but costs some throughput (docs/performance.md). The flag is read at each GC, so a
 * reload applies it.
 */
function setParallelScavenge(on: boolean): void {
  v8.setFlagsFromString(on ? '--parallel-scavenge' : '--no-parallel-scavenge');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `signal` is aborted (never, if it is not). */
const aborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
