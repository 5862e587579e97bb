/**
 * What a pooled client's session consists of beyond its socket: settings (startup parameters
 * plus its SETs), SQL-level prepared statements and pins (state that cannot move to another
 * server connection). Effects of statements are staged when sent and applied when the server
 * says the work committed (ReadyForQuery 'I' without an error); an error or a failed transaction
 * drops them, as PostgreSQL rolls them back. A COMMIT or ROLLBACK among the statements of a
 * request settles what was staged before it on its own. It also lays the settings on whichever
 * server connection serves the client (resync) and tells, per request, whether the work committed.
 */
import type { ServerConnection } from '../pool/server-connection.js';
import { RESET_ALL_KEEPS, type NamedPin, type PinReason, type SessionEffect } from '../router/session-effects.js';
import { TxStatus } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import { applySettingsSql, quoteLiteral } from './startup-params.js';

/** Stands for temp objects pgway cannot name: they hold the pin until DISCARD TEMP. */
const UNNAMED = '\u0000unnamed';
/** appliedSettings of a connection whose settings pgway cannot tell: the next client resyncs it. */
const UNKNOWN_SETTINGS = '\u0000unknown';

export class SessionState {
  /** Current settings: the startup ones with the client's SETs laid over them. */
  private readonly settings: Map<string, string>;
  private cachedSql: string | undefined;
  /** SQL-level prepared statements: name -> the PREPARE statement that defines it. */
  readonly sqlPrepared = new Map<string, string>();
  readonly pins = new Set<PinReason>();
  /** The temp tables and hold cursors behind the 'temp-table' and 'hold-cursor' pins, by name. */
  private readonly pinnedBy: Record<NamedPin, Set<string>> = { 'temp-table': new Set(), 'hold-cursor': new Set() };
  /**
   * Custom (dotted) settings reset to their placeholder value: replayed as a reset so that the
   * placeholder exists on every connection, reading '' as on the connection that ran the RESET.
   */
  private readonly placeholders = new Set<string>();
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
    this.cachedSql ??= this.placeholders.size === 0 ? applySettingsSql(this.settings) : this.withPlaceholdersSql();
    return this.cachedSql;
  }

  private withPlaceholdersSql(): string {
    // set_config with a NULL value resets the setting, creating its placeholder as RESET does.
    const resets = [...this.placeholders].map((name) => `pg_catalog.set_config(${quoteLiteral(name)}, NULL, false)`).join(', ');
    const sql = applySettingsSql(this.settings);
    return sql ? `${sql}, ${resets}` : `SELECT ${resets}`;
  }

  /** The client's search_path as it set it ('' when it never did): prepared statements are shared per path. */
  get searchPath(): string {
    return this.settings.get('search_path') ?? '';
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
          if (e.reason === 'temp-table' || e.reason === 'hold-cursor') this.pinnedBy[e.reason].add(e.name ?? UNNAMED);
          break;
        case 'rename':
          // The old name stays too: a pin released too late costs a connection, too early loses the table.
          if (this.pinnedBy[e.reason].has(e.from)) this.pinnedBy[e.reason].add(e.to);
          break;
        case 'drop':
          // Most DROP TABLEs are of tables that are not the client's temp tables: nothing to stage.
          if (this.pinnedBy[e.reason].has(e.name)) this.staged.push(e);
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
    this.apply(0, this.staged.length);
    this.staged = [];
    const resync = this.stagedReset;
    this.stagedReset = false;
    return resync;
  }

  /** The staged work was rolled back. */
  discard(): void {
    this.staged = [];
    this.stagedReset = false;
  }

  /** Applies staged[from, to) as committed; a RESET among them is noted in stagedReset. */
  private apply(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const e = this.staged[i]!;
      switch (e.kind) {
        case 'set':
          this.settings.set(e.name, e.value);
          this.placeholders.delete(e.name);
          break;
        case 'reset':
          this.stagedReset = true;
          this.resetSetting(e.name);
          break;
        case 'reset-all':
          this.stagedReset = true;
          for (const name of [...this.settings.keys()]) {
            if (!RESET_ALL_KEEPS.has(name)) this.resetSetting(name);
          }
          break;
        case 'unpin':
          this.pins.delete(e.reason);
          if (e.reason === 'temp-table' || e.reason === 'hold-cursor') this.pinnedBy[e.reason].clear();
          break;
        case 'drop': {
          const names = this.pinnedBy[e.reason];
          if (names.delete(e.name) && names.size === 0) this.pins.delete(e.reason);
          break;
        }
      }
    }
    this.cachedSql = undefined;
  }

  /** Back to the startup value, or to the default; a custom setting keeps its placeholder. */
  private resetSetting(name: string): void {
    const startupValue = this.startup.get(name);
    if (startupValue !== undefined) {
      this.settings.set(name, startupValue);
      return;
    }
    this.settings.delete(name);
    if (name.includes('.')) this.placeholders.add(name);
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

  /**
   * The request's staged effects committed, failed or stay pending inside a transaction. A COMMIT
   * or ROLLBACK staged among them (from a multi-statement text) settles what came before it,
   * whatever happens after it.
   *
   * Known limits: errors, rollbacks and the final status are counted per request, not per
   * statement. A COMMIT in a text is taken to have run even when the request failed, though an
   * error before it (`SET a = 1; SELECT 1/0; COMMIT`) means it did not run: PostgreSQL then drops
   * the SET and pgway keeps it. A ROLLBACK TO SAVEPOINT drops all staged effects, also those from
   * before the savepoint. A COMMIT in a text without session effects (COMMIT AND CHAIN, a separate
   * pipelined Query) is not seen.
   */
  settle(server: ServerConnection, status: number): void {
    let rollbacks = server.rollbackCount - this.rollbacksBefore;
    let from = 0;
    const staged = this.staged;
    for (let i = 0; i < staged.length; i++) {
      const kind = staged[i]!.kind;
      if (kind === 'commit') this.apply(from, i);
      else if (kind === 'rollback') rollbacks--; // one the server counted; what came before it is dropped
      else continue;
      from = i + 1;
    }
    if (from > 0) this.staged = staged.slice(from);
    if (rollbacks > 0 || server.errorCount !== this.errorsBefore || status === TxStatus.Failed) {
      // PostgreSQL undoes these with the transaction. What the connection holds is uncertain.
      this.discard();
      server.appliedSettings = UNKNOWN_SETTINGS;
      return;
    }
    if (status !== TxStatus.Idle) {
      if (from > 0) server.appliedSettings = UNKNOWN_SETTINGS; // settings committed, more to come
      return;
    }
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
