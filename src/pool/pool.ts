/**
 * The server connections of one (database, user) on one target. Idle connections are reused
 * last-in first-out (warm caches, and the rest age out); clients wait in FIFO order with a
 * timeout when every connection is busy. A connection comes back only through `release`, which
 * cleans it (rollback, reset query) before anyone else can have it.
 */
import type { Logger } from 'pino';
import type { PoolSettings, ServerTarget } from '../config/schema.js';
import { PoolTimeoutError, ServerConnectError, ServerConnectionLostError, type GatewayError } from '../errors.js';
import { parameterStatus } from '../wire/messages.js';
import { nowMs } from '../clock.js';
import { LatencyHistogram } from './latency-histogram.js';
import { WaitQueue, type WaitStart } from './wait-queue.js';
import { ConnectionLimit } from './connection-limit.js';
import { ServerConnection, type ServerCredentials } from './server-connection.js';
import { SHAPE_PENDING, SHAPE_UNKNOWN } from './server-statements.js';

/** Running totals, as PgBouncer's SHOW STATS reports them. */
export class PoolCounters {
  transactions = 0;
  requests = 0;
  bytesFromClients = 0;
  bytesToClients = 0;
  transactionTimeUs = 0;
  requestTimeUs = 0;
  waitTimeUs = 0;
  assignments = 0;
  /** Time clients waited for a server connection (0 when one was idle). */
  readonly waitLatency = new LatencyHistogram();
  /** Server connection taken to given back. */
  readonly transactionLatency = new LatencyHistogram();
  /** Request written to the server to its last ReadyForQuery. */
  readonly requestLatency = new LatencyHistogram();
}

/** The pool that opened each connection: a client moved off a retired pool gives its connection back there. */
const owners = new WeakMap<ServerConnection, Pool>();

/** The pool that opened `conn`. */
export function ownerOf(conn: ServerConnection): Pool | undefined {
  return owners.get(conn);
}

/** What replaces a retired pool: the pool serving its database and user now, or why there is none. */
export type Successor = () => Pool | GatewayError;

/** How a connection is cleaned when given back (see Pool.release). */
export type Release = 'clean' | 'rollback' | 'reset' | 'discard';

export interface PoolWaiter {
  onLease(conn: ServerConnection): void;
  onLeaseError(err: Error): void;
}

export interface PoolStats {
  name: string;
  /** Handed out and linked to a client. */
  active: number;
  /** Handed out with no client linked: pgway's own work on it (a reset, a check before reuse), PgBouncer's sv_tested. */
  tested: number;
  /** Idle longer than server_check_delay: checked before reuse, PgBouncer's sv_used. */
  used: number;
  /** Idle, and usable at once. */
  idle: number;
  connecting: number;
  waiting: number;
  maxWaitMs: number;
}

/**
 * The connections handed out. A Set would rehash its table each time it empties below a quarter
 * and fills again, which a pool does every few transactions; the list is as long as the pool.
 */
class ActiveConnections {
  private readonly list: ServerConnection[] = [];

  get size(): number {
    return this.list.length;
  }

  add(conn: ServerConnection): void {
    if (!this.list.includes(conn)) this.list.push(conn);
  }

  delete(conn: ServerConnection): void {
    const i = this.list.indexOf(conn);
    if (i < 0) return;
    const last = this.list.pop()!;
    if (i < this.list.length) this.list[i] = last;
  }

  [Symbol.iterator](): Iterator<ServerConnection> {
    return this.list[Symbol.iterator]();
  }
}

/**
 * A pool's name, `database/user`, in logs, SHOW POOLS' grouping and the metrics' `pool` label. A `/` or
 * `%` inside either name is written `%2F` / `%25`, so the pools (`d/u`, `app`) and (`d`, `u/app`) keep
 * two names.
 */
export function poolLabel(database: string, user: string): string {
  const escape = (name: string): string => name.replace(/%/g, '%25').replace(/\//g, '%2F');
  return `${escape(database)}/${escape(user)}`;
}

export class Pool {
  private readonly idle: ServerConnection[] = [];
  private readonly active = new ActiveConnections();
  private readonly waiters = new WaitQueue<PoolWaiter>(
    () => ({
      queryWaitTimeoutMs: this.settings.queryWaitTimeoutMs,
      reserveTimeoutMs: this.settings.reserveTimeoutMs,
      watchReserve: this.settings.reserveSize > 0,
    }),
    {
      expired: (waiter, waitedMs) => waiter.onLeaseError(new PoolTimeoutError(this.name, Math.round(waitedMs))),
      reserveDue: () => this.grow(),
    },
  );
  /** Connections logging in (SHOW SERVERS lists them). */
  private readonly loggingIn = new Set<ServerConnection>();
  private get connecting(): number {
    return this.loggingIn.size;
  }
  /** Every connection this pool opened and has not closed yet. */
  private readonly owned = new Set<ServerConnection>();
  /** ParameterStatus values of the last connection opened, shown to pooled clients at login. */
  serverParams: ReadonlyMap<string, string> | undefined;
  /** Replaced by a RELOAD (see retire): opens nothing; connections close when given back. */
  retired = false;
  private successor: Successor | undefined;
  private onRetiredClosed: (() => void) | undefined;
  /** PAUSE: new transactions wait (without timing out) until RESUME. */
  paused = false;
  /** PAUSE commands waiting for the connections in use to come back. */
  private pauseWaiters: (() => void)[] = [];
  private closed = false;
  private readonly maintenance: NodeJS.Timeout;
  private currentSettings: PoolSettings;

  /** `database/user` (poolLabel), for logs, metrics and telling pools apart. */
  readonly name: string;

  constructor(
    readonly database: string,
    readonly user: string,
    readonly target: ServerTarget,
    readonly credentials: ServerCredentials,
    settings: PoolSettings,
    private readonly log: Logger,
    private readonly dbLimit = new ConnectionLimit(),
    /** Shared with the pool this one replaces after a RELOAD, so totals and histograms run on. */
    readonly counters = new PoolCounters(),
  ) {
    this.name = poolLabel(database, user);
    this.currentSettings = settings;
    this.maintenance = setInterval(() => this.maintain(), 1000);
    this.maintenance.unref();
    dbLimit.join(this);
  }

  get size(): number {
    return this.idle.length + this.active.size + this.connecting;
  }

  stats(): PoolStats {
    const now = nowMs();
    let linked = 0;
    for (const conn of this.active) if (conn.clientId !== 0) linked++;
    let used = 0;
    for (const conn of this.idle) if (this.needsCheck(conn, now)) used++;
    return {
      name: this.name,
      active: linked,
      tested: this.active.size - linked,
      used,
      idle: this.idle.length - used,
      connecting: this.connecting,
      waiting: this.waiters.length,
      maxWaitMs: Math.round(now - (this.waiters.oldestSince ?? now)),
    };
  }

  /**
   * Returns an idle connection at once, or queues `waiter` and returns undefined. `start`: the
   * waiter began waiting in the pool this one replaced (see retire).
   */
  acquire(waiter: PoolWaiter, start?: WaitStart): ServerConnection | undefined {
    if (this.retired) return this.handOver(waiter, start);
    if (this.paused) {
      this.waiters.add(waiter, false, start);
      return undefined;
    }
    let conn = this.idle.pop();
    // A connection the server dropped while idle is replaced silently.
    while (conn && conn.state !== 'idle') {
      this.forget(conn);
      conn = this.idle.pop();
    }
    if (conn && this.needsCheck(conn, nowMs())) {
      // Idle long enough that the server may have gone: check it before this client gets it.
      this.waiters.add(waiter, true, start);
      this.check(conn);
      return undefined;
    }
    if (conn) {
      this.active.add(conn);
      this.counters.assignments++;
      this.counters.waitLatency.record(0);
      return conn;
    }
    this.waiters.add(waiter, false, start);
    this.grow(waiter);
    return undefined;
  }

  get settings(): PoolSettings {
    return this.currentSettings;
  }

  /**
   * A RELOAD changes the settings in place: waiters' deadlines follow the new timeouts, a larger
   * pool opens connections for its waiters now, and a smaller one closes its idle connections
   * above the new size now (busy ones close when given back). A retired pool gets its database's
   * new settings too, for the clients still on its connections.
   */
  set settings(next: PoolSettings) {
    this.currentSettings = next;
    this.waiters.rewatch();
    while (this.size > next.size && this.idle.length > 0) this.forget(this.idle.shift()!);
    this.grow();
  }

  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  /** A max_db_connections slot freed up (see ConnectionLimit.want). */
  slotFreed(): void {
    this.grow();
  }

  /** When the connection idle longest here was last given back, if one is idle. */
  oldestIdleAt(): number | undefined {
    return this.idle[0]?.lastUsedAt;
  }

  /** Closes the connection idle longest: another pool of the database needs its slot (max_db_connections). */
  closeOldestIdle(): boolean {
    const conn = this.idle.shift();
    if (conn === undefined) return false;
    this.forget(conn);
    return true;
  }

  /**
   * server_check_delay: an empty query proves the connection still works before it is handed out.
   * A server that does not answer within server_connect_timeout_ms fails the check too.
   */
  private check(conn: ServerConnection): void {
    this.active.add(conn);
    const timeout = setTimeout(() => conn.close(), this.settings.serverConnectTimeoutMs);
    conn.query('').then(
      () => {
        clearTimeout(timeout);
        this.putBack(conn);
      },
      (err: unknown) => {
        clearTimeout(timeout);
        this.log.info({ err: (err as Error).message, pool: this.name }, 'idle server connection failed its check; replaced');
        this.discard(conn);
      },
    );
  }

  /** Takes `waiter` out of the queue (its client left); a retired pool's waiters wait in its successor. */
  cancelWait(waiter: PoolWaiter): void {
    if (!this.retired) {
      this.waiters.remove(waiter);
      return;
    }
    const next = this.successor!();
    if (next instanceof Pool) next.cancelWait(waiter);
  }

  /**
   * Gives a connection back: `clean` as it is (a finished transaction), `rollback` after
   * finishing whatever the client left half-done, `reset` also running server_reset_query (a
   * session ended), `discard` running DISCARD ALL whatever that says (a pinned client of a
   * transaction pool left state the next client must not find). A connection that cannot be
   * cleaned, is past its lifetime or belongs to a closed pool is closed instead.
   */
  release(conn: ServerConnection, how: Release): void {
    const owner = this.retired ? this.lender(conn) : undefined;
    if (owner) {
      owner.release(conn, how);
      return;
    }
    conn.detach();
    conn.clientId = 0;
    // Its server already said it is ending (a FATAL read with the client's last answer), or its
    // session may be broken (see queryInsideGroup).
    if (conn.ending || conn.queryInsideGroup) {
      this.discard(conn);
      return;
    }
    if (how === 'clean' && !conn.busy && conn.txStatus === 0x49 && !conn.cancelPending) {
      this.putBack(conn);
      return;
    }
    if (!conn.busy && this.outlived(conn)) {
      // It would be reset only to be closed (see putBack). One still busy is reset all the same: its
      // backend runs on until it is answered, and keeps its place under max_db_connections meanwhile.
      this.discard(conn);
      return;
    }
    this.resetThenPutBack(conn, how);
  }

  /** The connection is not to be used again (RECONNECT, server_lifetime, a closed or retired pool). */
  private outlived(conn: ServerConnection): boolean {
    return this.closed || this.retired || conn.createdAt <= this.reconnectBefore || this.pastLifetime(conn, nowMs());
  }

  /** server_lifetime_ms is over for `conn` at `now`. */
  private pastLifetime(conn: ServerConnection, now: number): boolean {
    const lifetime = this.settings.serverLifetimeMs;
    return lifetime > 0 && now - conn.createdAt > lifetime;
  }

  // Apart from release(), whose every call would otherwise make the context these closures share.
  private resetThenPutBack(conn: ServerConnection, how: Release): void {
    const timeout = setTimeout(() => conn.close(), this.settings.serverConnectTimeoutMs);
    const resetQuery = how === 'reset' ? this.settings.serverResetQuery : how === 'discard' ? 'DISCARD ALL' : '';
    conn.reset(resetQuery).then(
      () => {
        clearTimeout(timeout);
        this.putBack(conn);
      },
      (err: unknown) => {
        clearTimeout(timeout);
        this.log.warn({ err, server: conn.describe() }, 'server connection could not be reset; closing it');
        this.discard(conn);
      },
    );
  }

  /** Drops a connection that is broken or must not be reused. */
  discard(conn: ServerConnection): void {
    const owner = this.retired ? this.lender(conn) : undefined;
    if (owner) {
      owner.discard(conn);
      return;
    }
    this.forget(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.checkPausedIdle();
    this.grow();
    this.closeIfDone();
  }

  /** The other pool (a successor) that lent `conn` to a client this retired pool handed over. */
  private lender(conn: ServerConnection): Pool | undefined {
    const owner = owners.get(conn);
    return owner !== this ? owner : undefined;
  }

  /**
   * The server ended `conn` while it sat idle here (pg_terminate_backend, a restart): it goes at
   * once, as PgBouncer drops a server it sees close, so that SHOW POOLS, SHOW SERVERS and /metrics
   * stay true. min_size opens its replacement (see maintain).
   */
  private readonly idleLost = (conn: ServerConnection): void => {
    if (this.idle.includes(conn)) this.discard(conn);
  };

  /** Closes `conn` and stops counting it (this pool, max_db_connections). */
  private forget(conn: ServerConnection): void {
    conn.close();
    this.active.delete(conn);
    if (this.owned.delete(conn)) this.dbLimit.release();
  }

  private readonly loginBlocks = new Map<string, Buffer>();
  /** Client settings statements the server accepted once; logins with them need no server. */
  private readonly checkedSettings = new Set<string>();

  settingsChecked(sql: string): boolean {
    return sql === '' || this.checkedSettings.has(sql);
  }

  markSettingsChecked(sql: string): void {
    if (this.checkedSettings.size >= 1000) this.checkedSettings.clear();
    this.checkedSettings.add(sql);
  }

  /**
   * The ParameterStatus messages a pooled client gets at login, encoded once per distinct client
   * settings (`key`) while the server's parameters stay the same.
   */
  loginParameters(key: string, params: () => ReadonlyMap<string, string>): Buffer {
    let block = this.loginBlocks.get(key);
    if (!block) {
      block = Buffer.concat([...params()].map(([name, value]) => parameterStatus(name, value)));
      if (this.loginBlocks.size >= 100) this.loginBlocks.clear();
      this.loginBlocks.set(key, block);
    }
    return block;
  }

  /**
   * RELOAD changed this pool's target or server credentials, or removed its database or user. It
   * opens no more connections (nor keeps min_size): idle ones close now, busy ones when given back.
   * Its waiters, and clients that come back to it later, go to `successor`, or hear why there is
   * none. Once no connection is left it closes and calls `onClosed`.
   */
  retire(successor: Successor, onClosed: () => void): void {
    this.retired = true;
    this.successor = successor;
    this.onRetiredClosed = onClosed;
    clearInterval(this.maintenance);
    clearTimeout(this.loginRetry);
    for (const conn of this.idle.splice(0)) this.forget(conn);
    for (let next = this.waiters.shift(); next; next = this.waiters.shift()) {
      const conn = this.handOver(next.waiter, next.start);
      if (conn) next.waiter.onLease(conn);
    }
    this.waiters.clear();
    this.checkPausedIdle();
    this.closeIfDone();
  }

  /** A client of this retired pool: served by the successor, or told (on its own turn) why it cannot be. */
  private handOver(waiter: PoolWaiter, start?: WaitStart): ServerConnection | undefined {
    const next = this.successor!();
    if (next instanceof Pool) return next.acquire(waiter, start);
    queueMicrotask(() => waiter.onLeaseError(next));
    return undefined;
  }

  /** Why this retired pool has no successor (its database or user was removed), if it has none. */
  get removedBecause(): GatewayError | undefined {
    if (!this.retired) return undefined;
    const next = this.successor!();
    return next instanceof Pool ? undefined : next;
  }

  /** A retired pool whose last connection went is forgotten. */
  private closeIfDone(): void {
    if (!this.retired || this.closed || this.owned.size > 0 || this.connecting > 0) return;
    void this.close();
    this.onRetiredClosed?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dbLimit.leave(this);
    clearTimeout(this.loginRetry);
    for (const resolve of this.pauseWaiters.splice(0)) resolve();
    clearInterval(this.maintenance);
    this.waiters.clear();
    for (const conn of [...this.owned]) this.forget(conn);
    this.idle.length = 0;
  }

  private putBack(conn: ServerConnection): void {
    const { size, reserveSize } = this.settings;
    if (conn.state !== 'idle' || this.outlived(conn)) {
      this.discard(conn);
      return;
    }
    if (this.size > size + reserveSize || this.dbLimit.over) {
      // A RELOAD lowered the pool's size or max_db_connections: handing the connection on would keep
      // the old count for as long as clients wait. It closes; they are served once the count is under
      // the limit (the last connection above it is handed on, and discard() opens one when there is room).
      this.discard(conn);
      return;
    }
    const next = this.paused ? undefined : this.waiters.shift();
    if (next) {
      conn.lastUsedAt = nowMs();
      this.counters.assignments++;
      this.counters.waitTimeUs += next.waitedMs * 1000;
      this.counters.waitLatency.record(next.waitedMs);
      next.waiter.onLease(conn);
      return;
    }
    if (this.size > size || this.dbLimit.wantedElsewhere(this)) {
      // Nobody waits here: a reserve connection goes, and so does one another pool of the database needs the slot of.
      this.discard(conn);
      return;
    }
    this.active.delete(conn);
    this.idle.push(conn);
    this.checkPausedIdle();
  }

  /** PAUSE: holds new transactions; each connection closes once given back (see drained). */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.waiters.stop();
    this.checkPausedIdle();
  }

  /**
   * Resolves once a paused pool has every server connection back and closed, so a switchover can
   * happen underneath; or once RESUME or close() ended the pause first (the caller tells which).
   */
  drained(): Promise<void> {
    if (!this.paused || this.closed || (this.active.size === 0 && this.connecting === 0)) return Promise.resolve();
    return new Promise((resolve) => this.pauseWaiters.push(resolve));
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // A PAUSE still waiting for connections is over: it answers now (and says RESUME ended it).
    for (const resolve of this.pauseWaiters.splice(0)) resolve();
    this.waiters.restart();
    this.grow();
    while (this.idle.length > 0 && this.waiters.length > 0) {
      const conn = this.idle.pop()!;
      this.active.add(conn);
      this.putBack(conn);
    }
  }

  /** Bumped by each invalidateStatement(): a client statement older than its invalidation is stale. */
  planEpoch = 0;
  /** Shared statements DDL made stale, with the plan epoch of their invalidation (bounded). */
  private readonly staleStatements = new Map<string, number>();

  /**
   * The server said the plan of the shared statement `serverName` no longer fits (DDL changed what
   * it returns): every connection prepares it afresh before its next use, where each client that
   * prepared it before is compared with the fresh copy (StatementCopies.prepareFor). Other statements
   * are untouched: DDL on one table must not fail statements that never read it.
   */
  invalidateStatement(serverName: string): void {
    this.planEpoch++;
    if (this.staleStatements.size >= 10_000) this.staleStatements.clear();
    this.staleStatements.set(serverName, this.planEpoch);
    for (const { conn } of this.connections()) conn.statements.markStale(serverName);
  }

  /**
   * A client found a copy of the shared statement `serverName` returning `shape`, not what it
   * prepared it to return: DDL changed the statement. Copies known to return something else are
   * prepared afresh before their next use, so that none answers with an old plan.
   */
  retireCopies(serverName: string, shape: string): void {
    for (const { conn } of this.connections()) {
      const copy = conn.statements.prepared.get(serverName);
      if (copy !== undefined && copy !== shape && copy !== SHAPE_PENDING && copy !== SHAPE_UNKNOWN) conn.statements.markStale(serverName);
    }
  }

  /** The plan epoch at which `serverName` was last found stale, if it was. */
  staleSince(serverName: string): number | undefined {
    return this.staleStatements.size === 0 ? undefined : this.staleStatements.get(serverName);
  }

  /** Whether some connection of this pool has prepared the shared statement `serverName`. */
  knowsStatement(serverName: string): boolean {
    for (const conn of this.idle) if (conn.statements.prepared.has(serverName)) return true;
    for (const conn of this.active) if (conn.statements.prepared.has(serverName)) return true;
    return false;
  }

  /** RECONNECT: idle connections close now, busy ones when they are given back. */
  reconnect(): void {
    for (const conn of this.idle.splice(0)) this.forget(conn);
    this.reconnectBefore = nowMs();
  }

  private reconnectBefore = 0;

  /**
   * A paused pool with nothing in use and no login under way (its connection is closed as soon as it
   * is made, as PgBouncer closes logins in progress at PAUSE) has drained.
   */
  private checkPausedIdle(): void {
    if (this.paused && this.active.size === 0 && this.connecting === 0) this.onPausedIdle();
  }

  private onPausedIdle(): void {
    for (const conn of this.idle.splice(0)) this.forget(conn);
    for (const resolve of this.pauseWaiters.splice(0)) resolve();
  }

  /** Whether idle connection `conn` has been idle long enough to be checked before reuse (server_check_delay). */
  needsCheck(conn: ServerConnection, now: number): boolean {
    return now - conn.lastUsedAt >= this.settings.serverCheckDelayMs;
  }

  /** The server connections, for SHOW SERVERS. */
  connections(): { conn: ServerConnection; state: 'active' | 'idle' | 'used' | 'login' }[] {
    const now = nowMs();
    return [
      ...[...this.active].map((conn) => ({ conn, state: 'active' as const })),
      ...this.idle.map((conn) => ({ conn, state: this.needsCheck(conn, now) ? 'used' as const : 'idle' as const })),
      ...[...this.loggingIn].map((conn) => ({ conn, state: 'login' as const })),
    ];
  }

  /**
   * Opens connections while clients wait and the pool has room. Reserve connections open only while
   * the first client in line has waited reserve_timeout_ms, as PgBouncer's launch_new_connection
   * decides: one client's long wait does not let those who come after it skip theirs.
   */
  /** Opens connections for the clients waiting, up to the pool's size; `asker`: the client whose request asks now (see open). */
  private grow(asker?: PoolWaiter): void {
    const limit = this.settings.size + (this.waiters.firstWaitedReserve ? this.settings.reserveSize : 0);
    while (!this.closed && !this.retired && !this.paused && this.waiters.length > this.connecting && this.size < limit) {
      if (this.dbLimit.full && !this.dbLimit.evictIdle(this)) {
        // Other pools of the database use every slot: a connection they close or give back idle makes room here.
        this.dbLimit.want(this);
        return;
      }
      // An evicted connection's slot went to a pool that wanted one before this one: look for another.
      if (this.dbLimit.full) continue;
      this.open(asker);
      asker = undefined;
    }
  }

  /**
   * Opens a connection. Should it fail, `asker` (the client whose request asked for it, if still
   * waiting) hears why instead of waiting out its timeout; the clients waiting already get another
   * try every server_login_retry_ms (retryLogin) until their query_wait_timeout, so that a server
   * restart or failover costs them a wait, not their session, as in PgBouncer.
   */
  private open(asker?: PoolWaiter): void {
    this.dbLimit.open++;
    const conn = new ServerConnection(this.target, this.credentials);
    this.loggingIn.add(conn);
    conn.connect(this.settings.serverConnectTimeoutMs).then(
      () => {
        this.loggingIn.delete(conn);
        this.loginFailedAt = 0;
        this.owned.add(conn);
        owners.set(conn, this);
        conn.idleLost = this.idleLost;
        this.serverParams = new Map(conn.params);
        this.loginBlocks.clear();
        this.active.add(conn);
        conn.lastUsedAt = nowMs();
        this.putBack(conn);
      },
      (err: GatewayError) => {
        this.loggingIn.delete(conn);
        this.dbLimit.release();
        this.loginFailedAt = nowMs();
        this.log.warn({ err: conn.loginRefusal ?? err.message, pool: this.name }, 'server connection failed');
        // PAUSE holds its clients whatever becomes of a login begun before it.
        if (asker !== undefined && !this.paused && this.waiters.remove(asker)) {
          // A connection lost while logging in is a failed connect, not a lost transaction.
          asker.onLeaseError(err instanceof ServerConnectionLostError ? new ServerConnectError('the server closed the connection during login') : err);
        }
        this.checkPausedIdle();
        this.retryLogin();
        this.closeIfDone();
      },
    );
  }

  private loginRetry: NodeJS.Timeout | undefined;
  /** nowMs() when the last connection failed to open (0: the last one opened), for min_size (see maintain). */
  private loginFailedAt = 0;

  /**
   * A connection failed to open (the server down or refusing, too many connections): the clients
   * still waiting get another attempt after server_login_retry_ms, rather than waiting out their
   * timeout behind a server that is back. A new client's request tries at once, as before.
   */
  private retryLogin(): void {
    if (this.loginRetry !== undefined || this.waiters.length === 0 || this.closed || this.retired) return;
    this.loginRetry = setTimeout(() => {
      this.loginRetry = undefined;
      this.grow();
    }, this.settings.serverLoginRetryMs);
    this.loginRetry.unref();
  }

  /**
   * Closes connections idle too long or past their lifetime; keeps min_size open, but not sooner than
   * server_login_retry_ms after a connection failed to open, as PgBouncer's launcher waits: with
   * nobody waiting, a server that refuses pgway (a wrong password, too many connections) or does not
   * answer would otherwise get min_size logins every second.
   */
  private maintain(): void {
    const now = nowMs();
    const { serverIdleTimeoutMs, minSize, serverLoginRetryMs } = this.settings;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i]!;
      const tooOld = this.pastLifetime(conn, now);
      const tooIdle = serverIdleTimeoutMs > 0 && now - conn.lastUsedAt > serverIdleTimeoutMs && this.size > minSize;
      if (tooOld || tooIdle || conn.state !== 'idle') {
        this.idle.splice(i, 1);
        this.forget(conn);
      }
    }
    if (this.loginFailedAt > 0 && now - this.loginFailedAt < serverLoginRetryMs) return;
    while (!this.closed && !this.retired && !this.paused && this.size < minSize && !this.dbLimit.full) this.open();
  }
}
