/** What the admin console and the HTTP endpoints may read and do: a small window onto the gateway. */
import type { Config, DatabaseConfig, PoolMode } from '../config/schema.js';
import type { PoolCounters } from '../pool/pool.js';
import type { StatsAverages } from './stats-period.js';

export interface PoolInfo {
  database: string;
  user: string;
  mode: PoolMode;
  clientsActive: number;
  clientsWaiting: number;
  /** Server connections linked to a client. */
  serversActive: number;
  /** Server connections in use with no client linked (being reset or checked), PgBouncer's sv_tested. */
  serversTested: number;
  /** Idle server connections to be checked before reuse (idle past server_check_delay), PgBouncer's sv_used. */
  serversUsed: number;
  serversIdle: number;
  serversLogin: number;
  maxWaitMs: number;
  paused: boolean;
  counters: PoolCounters;
}

/** The states a client is shown in (SHOW CLIENTS, pgway_client_connections). */
export const CLIENT_STATES = ['login', 'active', 'waiting', 'idle'] as const;

export interface ClientInfo {
  id: number;
  user: string;
  database: string;
  state: (typeof CLIENT_STATES)[number];
  addr: string;
  port: number;
  connectTime: number;
  requestTime: number;
  waitMs: number;
  tls: boolean;
  applicationName: string;
  preparedStatements: number;
  serverId: number;
  serverPid: number;
}

export interface ServerInfo {
  id: number;
  user: string;
  database: string;
  state: 'active' | 'idle' | 'login' | 'used' | 'tested';
  addr: string;
  port: number;
  connectTime: number;
  requestTime: number;
  pid: number;
  tls: boolean;
  preparedStatements: number;
  clientId: number;
}

export type PauseEnd = 'paused' | 'resumed' | 'canceled' | 'removed';

export interface AdminView {
  readonly version: string;
  config(): Config;
  pools(): PoolInfo[];
  /** The last `stats_period_ms`'s averages of a database (zeros before the first period ends). */
  statsAverages(database: string): StatsAverages;
  clients(): ClientInfo[];
  servers(): ServerInfo[];
  /** Rejects with the reasons when the new config is invalid; the old one stays. */
  reload(): Promise<void>;
  database(name: string): DatabaseConfig | undefined;
  /** The databases clients can connect to: the config's, or the sandbox's when it names none. */
  databasesServed(): DatabaseConfig[];
  /** The admin console's database names (`pgway`, `pgbouncer`). */
  isAdminDatabase(name: string): boolean;
  /** Whether PAUSE or PAUSE `database` is in force for it. */
  isPaused(database: string): boolean;
  /** Whether this very pause is in force: PAUSE (no database), or PAUSE `database` (or KILL). */
  pausedBy(database?: string): boolean;
  /** Whether any pause is in force. */
  readonly anyPaused: boolean;
  /**
   * Resolves once the connections in use came back (`paused`), or when a RESUME ended the pause first
   * (`resumed`), or when `signal` aborted it (`canceled`: the pause it put in place is lifted), or
   * when a RELOAD removed the database it waited for (`removed`).
   */
  pause(database?: string, signal?: AbortSignal): Promise<PauseEnd>;
  resume(database?: string): void;
  reconnect(database?: string): void;
  kill(database: string): void;
  shutdown(): void;
  readonly ready: boolean;
}
