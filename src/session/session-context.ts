/** What a ClientSession needs from the gateway, as a small interface so sessions stay testable. */
import type { Logger } from 'pino';
import type tls from 'node:tls';
import type { Config, DatabaseConfig, UserConfig } from '../config/schema.js';
import type { Pool } from '../pool/pool.js';
import type { ServerCredentials } from '../pool/server-connection.js';
import type { UserSecret } from './client-auth.js';
import type { ClientSession } from './client-session.js';

export interface SessionContext {
  readonly log: Logger;
  /** The config snapshot in force; a session reads it once per decision. */
  config(): Config;
  tlsContext(): tls.SecureContext | undefined;
  userSecret(name: string): UserSecret | undefined;
  user(name: string): UserConfig | undefined;
  database(name: string): DatabaseConfig | undefined;
  serverCredentials(db: DatabaseConfig, user: UserConfig): ServerCredentials;
  primaryPool(db: DatabaseConfig, user: UserConfig): Pool;
  /** ParameterStatus values some pool of `database` has seen, if any. */
  serverParamsFor(pool: Pool): ReadonlyMap<string, string> | undefined;
  /** The pool that replaced a retired one (same database and user). */
  poolFor(retired: Pool): Pool;
  readonly shuttingDown: boolean;
  /** Counts the client against max_client_conn; false when no slot is left, unless `always` (the admin console). */
  admit(session: ClientSession, always?: boolean): boolean;
  /** Makes (pid, secret) reach this session for cancel requests. */
  registerCancelKey(session: ClientSession, pid: number, secret: number): void;
  /** Passes a CancelRequest on; returns the cancel under way, if one is (see RequestFlow.cancelRunning). */
  cancel(pid: number, secret: number): Promise<void> | undefined;
  closed(session: ClientSession): void;
  /** The admin console's database names (`pgway`, `pgbouncer`). */
  isAdminDatabase(name: string): boolean;
  /** Runs an admin console statement; resolves with its response frames. `signal`: the console's cancel. */
  adminQuery(sql: string, signal?: AbortSignal): Promise<Buffer[]>;
}
