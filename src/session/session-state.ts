/**
 * What a pooled client's session consists of beyond its socket: settings (startup parameters
 * plus its SETs), SQL-level prepared statements and pins (state that cannot move to another
 * server connection). Effects of statements are staged when sent and applied when the server
 * says the work committed (ReadyForQuery 'I' without an error); an error or a failed transaction
 * drops them, as PostgreSQL rolls them back. It also lays the settings on whichever server
 * connection serves the client (resync) and tells, per request, whether the work committed.
 */
import type { ServerConnection } from '../pool/server-connection.js';
import { RESET_ALL_KEEPS, type PinReason, type SessionEffect } from '../router/session-effects.js';
import { TxStatus } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import { applySettingsSql } from './startup-params.js';

export class SessionState {
  /** Current settings: the startup ones with the client's SETs laid over them. */
  private readonly settings: Map<string, string>;
  private cachedSql: string | undefined;
  /** SQL-level prepared statements: name -> the PREPARE statement that defines it. */
  readonly sqlPrepared = new Map<string, string>();
  readonly pins = new Set<PinReason>();
  private staged: SessionEffect[] = [];
  /** The staged work included a RESET: the server connection needs the settings laid on again. */
  private stagedReset = false;
  /** The attached server's error and rollback counts when the current request began. */
  private errorsBefore = 0;
  private rollbacksBefore = 0;

  constructor(private readonly startup: ReadonlyMap<string, string>) {
    this.settings = new Map(startup);
  }

  /** One statement that brings a server connection's settings to this session's ('' = defaults). */
  get settingsSql(): string {
    this.cachedSql ??= applySettingsSql(this.settings);
    return this.cachedSql;
  }

  get pinned(): boolean {
    return this.pins.size > 0;
  }

  get hasStaged(): boolean {
    return this.staged.length > 0;
  }

  /**
   * Notes the effects of statements just sent. Pins take effect at once (holding a connection a
   * little too long is harmless; releasing one too early is not), and so do PREPARE and
   * DEALLOCATE, which PostgreSQL does not roll back.
   */
  stage(effects: readonly SessionEffect[]): PinReason[] {
    const newPins: PinReason[] = [];
    for (const e of effects) {
      switch (e.kind) {
        case 'pin':
          if (!this.pins.has(e.reason)) newPins.push(e.reason);
          this.pins.add(e.reason);
          break;
        case 'prepare':
          this.sqlPrepared.set(e.name, prepareStatement(e.name, e.sql, e.paramTypes));
          break;
        case 'deallocate':
          this.sqlPrepared.delete(e.name);
          break;
        case 'deallocate-all':
          this.sqlPrepared.clear();
          break;
        case 'execute':
          break;
        default:
          this.staged.push(e);
      }
    }
    return newPins;
  }

  /** The staged work committed. Returns true when the server connection must be re-synced (a RESET ran). */
  commit(): boolean {
    const resync = this.stagedReset || this.staged.some((e) => e.kind === 'reset' || e.kind === 'reset-all');
    for (const e of this.staged) {
      switch (e.kind) {
        case 'set':
          this.settings.set(e.name, e.value);
          break;
        case 'reset': {
          const startupValue = this.startup.get(e.name);
          if (startupValue === undefined) this.settings.delete(e.name);
          else this.settings.set(e.name, startupValue);
          break;
        }
        case 'reset-all':
          for (const name of [...this.settings.keys()]) {
            if (!RESET_ALL_KEEPS.has(name)) this.settings.delete(name);
          }
          for (const [name, value] of this.startup) this.settings.set(name, value);
          break;
        case 'unpin':
          this.pins.delete(e.reason);
          break;
      }
    }
    this.staged = [];
    this.stagedReset = false;
    this.cachedSql = undefined;
    return resync;
  }

  /** The staged work was rolled back. */
  discard(): void {
    this.staged = [];
    this.stagedReset = false;
  }

  // --- against a server connection ------------------------------------------------------------

  /** Counts errors and rollbacks from here on, to tell whether the next request's work committed. */
  markRequestStart(server: ServerConnection): void {
    this.errorsBefore = server.errorCount;
    this.rollbacksBefore = server.rollbackCount;
  }

  /** Back to defaults on `server`, then this session's settings, before the client's own request. */
  resync(server: ServerConnection): void {
    const sql = this.settingsSql;
    // RESET ALL leaves the role alone, so it is reset on its own: one client's SET ROLE must
    // never reach the next client.
    server.write(msg.query(sql ? `RESET ALL; RESET ROLE; ${sql}` : 'RESET ALL; RESET ROLE'));
    server.expectSettings();
    server.appliedSettings = sql;
  }

  /** The request's staged effects committed, failed or stay pending inside a transaction. */
  settle(server: ServerConnection, status: number): void {
    const rolledBack = server.rollbackCount !== this.rollbacksBefore;
    if (rolledBack || server.errorCount !== this.errorsBefore || status === TxStatus.Failed) {
      // PostgreSQL undoes these with the transaction (a ROLLBACK TO SAVEPOINT drops all staged
      // effects here, also those from before the savepoint). What the connection holds is uncertain.
      this.discard();
      server.appliedSettings = '\u0000unknown';
      return;
    }
    if (status !== TxStatus.Idle) return;
    if (this.commit()) this.resync(server);
    else server.appliedSettings = this.settingsSql;
  }
}

export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

export function prepareStatement(name: string, sql: string, paramTypes: readonly string[]): string {
  const types = paramTypes.length ? `(${paramTypes.join(', ')})` : '';
  return `PREPARE ${quoteIdent(name)}${types} AS ${sql}`;
}
