/**
 * What a pooled client's session consists of beyond its socket: settings (startup parameters
 * plus its SETs), SQL-level prepared statements and pins (state that cannot move to another
 * server connection). Effects of statements are staged when sent and applied when the server
 * says the work committed (ReadyForQuery 'I' without an error); an error or a failed transaction
 * drops them, as PostgreSQL rolls them back. Each request (Query or Sync) is settled at its own
 * ReadyForQuery, so pipelined requests commit or fail one by one as they do in PostgreSQL. A
 * COMMIT or ROLLBACK the server reports settles what was staged before it. It also lays the
 * settings on whichever server connection serves the client (resync).
 */
import { ReportedCounts } from '../pool/reported-counts.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { isTransactionMarker, RESET_ALL_KEEPS, type NamedPin, type PinReason, type SessionEffect } from '../router/session-effects.js';
import { TxStatus } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import { createsInTempSchema } from '../router/guc-value.js';
import { applySettingsSql, quoteLiteral } from './startup-params.js';

/** Pins whose state the server can be asked about (see SessionState.takeCheckDue). */
export type CheckedPin = 'advisory-lock' | 'temp-table';

/** The questions: each answers a row (at most one) while the session holds that state. */
export const STILL_HELD_QUESTIONS: Readonly<Record<CheckedPin, Buffer>> = {
  'advisory-lock': msg.query(
    "SELECT FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() LIMIT 1",
  ),
  // Temp tables, views and sequences (with their indexes) are the relations of the session's temp schema.
  // The operators are qualified: the question runs under the client's search_path.
  'temp-table': msg.query('SELECT FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() LIMIT 1'),
};

/** Staged entries beyond which a client is pinned rather than followed (see stage). */
const MAX_STAGED = 10_000;
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
  // Made on first use, as is `placeholders`: most clients never need them, and 10,000 idle clients
  // would otherwise carry three empty Sets each (about 450 bytes).
  private pinnedBy: Record<NamedPin, Set<string>> | undefined;
  /**
   * Custom (dotted) settings reset to their placeholder value: replayed as a reset so that the
   * placeholder exists on every connection, reading '' as on the connection that ran the RESET.
   */
  private placeholders: Set<string> | undefined;
  private staged: SessionEffect[] = [];
  /** Per staged effect, the number of the request that runs it (see requestsSent). */
  private stagedIn: number[] = [];
  /** Leading staged entries a settle has walked: their savepoints ran (see settle). */
  private walked = 0;
  /** A request of the current transaction failed: its settings are laid on afresh when it ends (see settle). */
  private uncertain = false;
  /** The staged work included a RESET: the server connection needs the settings laid on again. */
  private stagedReset = false;
  /** A request committed settings while others were in flight: the last one records them on the connection. */
  private layAfter = false;
  /** Client requests (Query, Sync, FunctionCall) written to a server, and answered: they number the requests. */
  private requestsSent = 0;
  private requestsAnswered = 0;
  /** The attached server's counts when the current request began. */
  private readonly before = new ReportedCounts();
  /**
   * Pins whose state may be gone though pgway cannot tell: a statement that may have left the
   * session without advisory locks ran (an unlock, a try-lock), or the last temp relation pgway
   * knew of was dropped (the name may have meant another relation: search_path). The server is
   * asked once the transaction is over and nothing else pins the client (see takeCheckDue).
   */
  private checks: Set<CheckedPin> | undefined;
  /**
   * Pins made in the transaction now open for state PostgreSQL undoes when that transaction rolls
   * back (a LISTEN, a temporary table, a WITH HOLD cursor): lifted if it does.
   */
  private tentativePins: PinReason[] | undefined;
  /** The COMMITs and ROLLBACKs the server had reported when the first of them was made. */
  private tentativeCommits = 0;
  private tentativeRollbacks = 0;
  /** The request (see requestsSent) that made the first tentative pin. */
  private tentativeRequest = 0;
  /**
   * Pins made in a request written behind others, which may become tentative: once the request
   * before theirs ends with a transaction open or none (see requestEnded), the state they start from is known.
   */
  private pendingTentative: PinReason[] | undefined;
  private pendingRequest = 0;
  /**
   * A COMMIT or ROLLBACK was staged in the request being written, or since the tentative pins were
   * made: state made after it belongs to another transaction than theirs (see pinUndoneByRollback).
   */
  private txEndStaged = false;
  /**
   * The status of the server's last ReadyForQuery when nothing was in flight, until the next
   * request is written (0 then): what the request being written starts from (see markRequestStart).
   */
  private startStatus = 0;
  /**
   * The transaction now open made, renamed or dropped temp relations (-1: none), and the ROLLBACKs
   * and errors the server had reported when it began. If any came since, part of that work may be
   * undone (a CREATE rolled back to a savepoint, a RENAME that failed), so the names pgway keeps
   * are forgotten at its end and the server is asked (see settleTempWork).
   */
  private tempWorkRollbacks = -1;
  private tempWorkErrors = 0;
  /** The request (see requestsSent) that did the first temp work of that transaction. */
  private tempWorkRequest = 0;

  constructor(private readonly startup: ReadonlyMap<string, string>) {
    this.settings = new Map(startup);
    if (createsInTempSchema(startup.get('search_path') ?? '')) this.pinUnnamedTemp([]);
  }

  /** One statement that brings a server connection's settings to this session's ('' = defaults). */
  get settingsSql(): string {
    this.cachedSql ??= this.placeholders === undefined || this.placeholders.size === 0 ? applySettingsSql(this.settings) : this.withPlaceholdersSql();
    return this.cachedSql;
  }

  private withPlaceholdersSql(): string {
    // set_config with a NULL value resets the setting, creating its placeholder as RESET does.
    const resets = [...this.placeholders!].map((name) => `pg_catalog.set_config(${quoteLiteral(name)}, NULL, false)`).join(', ');
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

  /**
   * The pin to ask the server about now: asked only when every pin left may be gone (see checks),
   * one at a time (RequestFlow asks for the next once the server said one is gone). Temp objects
   * pgway cannot name (functions, types) are not relations the question sees: no question then.
   */
  takeCheckDue(): CheckedPin | undefined {
    const checks = this.checks;
    if (checks === undefined || this.pins.size === 0) return undefined;
    for (const reason of this.pins) if (!checks.has(reason as CheckedPin)) return undefined;
    if (this.pinnedBy?.['temp-table'].has(UNNAMED)) return undefined;
    const [reason] = checks;
    checks.delete(reason!);
    return reason;
  }

  /** The server may be asked about `reason` once the transaction is over (see checks). */
  checkLater(reason: CheckedPin): void {
    if (this.pins.has(reason)) (this.checks ??= new Set()).add(reason);
  }

  /**
   * A pin went (the server said its state is gone, DISCARD, a rollback): a question about it
   * pending would be about state made since (see checks).
   */
  unpin(reason: PinReason): void {
    this.pins.delete(reason);
    this.checks?.delete(reason as CheckedPin);
    if (reason === 'temp-table' || reason === 'hold-cursor') this.pinnedBy?.[reason].clear();
  }

  /**
   * The server said temp relations are left after the client dropped every one pgway knew of:
   * which they are, pgway cannot name, so a DROP of any relation makes it ask again.
   */
  private tempNamesUnknown(reason: NamedPin): boolean {
    return reason === 'temp-table' && this.pins.has(reason) && this.pinnedBy?.[reason].size === 0;
  }

  get hasStaged(): boolean {
    return this.staged.length > 0;
  }

  /** The last ReadyForQuery of a request must settle something (see settle). */
  get needsSettle(): boolean {
    return this.staged.length > 0 || this.layAfter || this.uncertain || this.tentativePins !== undefined || this.tempWorkRollbacks >= 0;
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
          if (UNDONE_BY_ROLLBACK.has(e.reason)) this.pinUndoneByRollback(e.reason);
          if (this.staged.length > 0 && this.releaseStaged(e.reason, e.name)) this.stageAfterRelease(e);
          this.pin(e.reason, newPins);
          this.addPinName(e.reason, e.name);
          if (e.reason === 'temp-table') this.noteTempWork();
          break;
        case 'rename': {
          // The name moves; if the rename is undone, settleTempWork forgets the names and asks.
          const names = this.pinnedBy?.[e.reason];
          if (names?.delete(e.from)) {
            names.add(e.to);
            if (e.reason === 'temp-table') this.noteTempWork();
          }
          break;
        }
        case 'drop':
          // Most DROP TABLEs are of tables that are not the client's temp tables: nothing to stage.
          // A CASCADE may take temp relations of any name with it (a view on the table).
          if (this.pinnedBy?.[e.reason].has(e.name) || this.tempNamesUnknown(e.reason) || (e.cascade && this.pins.has(e.reason))) {
            this.stageOne(e);
            if (e.reason === 'temp-table') this.noteTempWork();
          }
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
        case 'advisory-recheck':
          this.checkLater('advisory-lock');
          break;
        case 'set-param':
          // A parameter's value pgway did not see (SQL-level EXECUTE, session mode's Parse): unknown.
          this.pin('unparseable-session-statement', newPins);
          break;
        default:
          if (e.kind === 'rollback' || e.kind === 'commit') this.txEndStaged = true;
          this.stageOne(e);
      }
    }
    if (this.staged.length > MAX_STAGED) {
      // Past any reasonable transaction: the client stays where its settings are, and pgway stops
      // following them (its SETs are on that connection; DISCARD ALL, the only way out, resets them).
      this.pin('unparseable-session-statement', newPins);
      this.staged = [];
      this.stagedIn = [];
      this.walked = 0;
    }
    return newPins;
  }

  /**
   * State a rollback undoes (a LISTEN, a temp table, a hold cursor) is made: the pin is tentative
   * while it is the only state of its kind, made in a transaction that may yet roll back, and a
   * ROLLBACK the server reports later must be that transaction's. So a pin is tentative only when
   * its request starts from a known state (nothing in flight, no failed transaction, whose COMMIT
   * would report ROLLBACK) and no COMMIT or ROLLBACK was staged before it; state made after the
   * tentative pins keeps them only when it is surely in their transaction (the same request, or
   * one sent to the transaction the server said was open). Otherwise every pin stays.
   */
  private pinUndoneByRollback(reason: PinReason): void {
    const window = this.tentativePins;
    if (window !== undefined) {
      const sameTransaction = !this.txEndStaged && (this.requestsSent === this.tentativeRequest || this.startStatus === TxStatus.InTransaction);
      if (!sameTransaction) this.tentativePins = undefined;
      else if (!this.pins.has(reason)) window.push(reason);
      return;
    }
    const pending = this.pendingTentative;
    if (pending !== undefined) {
      if (this.txEndStaged || this.requestsSent !== this.pendingRequest) this.pendingTentative = undefined;
      else if (!this.pins.has(reason)) pending.push(reason);
      return;
    }
    if (this.pins.has(reason) || this.txEndStaged) return;
    const status = this.startStatus;
    if (status === TxStatus.Idle || status === TxStatus.InTransaction) {
      this.openTentativeWindow([reason], this.requestsSent, this.before);
    } else if (status === 0) {
      // Requests are in flight: decided when the one before this ends.
      this.pendingTentative = [reason];
      this.pendingRequest = this.requestsSent;
    }
  }

  private openTentativeWindow(reasons: PinReason[], request: number, counts: ReportedCounts): void {
    this.tentativePins = reasons;
    this.tentativeRequest = request;
    this.tentativeCommits = counts.commits;
    this.tentativeRollbacks = counts.rollbacks;
  }

  /**
   * The transaction that made the tentative pins ended (ReadyForQuery 'I'). Rolled back (a ROLLBACK
   * reported, or an error ended its implicit transaction) with no COMMIT reported since they were
   * made, its state is gone and so are the pins; otherwise they stay.
   */
  private settleTentativePins(server: ServerConnection, erred: boolean): void {
    const { reported } = server;
    const rolledBack = reported.rollbacks > this.tentativeRollbacks || erred;
    if (rolledBack && reported.commits === this.tentativeCommits) {
      for (const reason of this.tentativePins!) this.unpin(reason);
    }
    this.tentativePins = undefined;
  }

  /**
   * Whether a release of `reason` (UNLISTEN *, DISCARD TEMP, CLOSE, DROP of `name`, an unlock) is
   * staged: state made again after it must survive it at commit, so its pin is staged behind it
   * too (apply re-adds it). If a ROLLBACK TO or an error takes the new state back, its staged pin
   * goes with it and the release applies alone.
   */
  private releaseStaged(reason: PinReason, name: string | undefined): boolean {
    return this.staged.some((e) => (e.kind === 'unpin' && e.reason === reason) ||
      (e.kind === 'drop' && e.reason === reason && (e.cascade === true || (name !== undefined && e.name === name))));
  }

  /**
   * A pin made while a release of its kind waits for commit. State a rollback undoes (also a SET
   * SESSION AUTHORIZATION) shares the fate of the statement that made it: its pin is staged behind
   * the release. A session advisory lock survives any rollback, so the release staged before it is
   * taken back instead, and the server is asked later whether any lock is left
   * (pg_advisory_unlock_all() then a lock).
   */
  private stageAfterRelease(e: SessionEffect & { kind: 'pin' }): void {
    if (e.reason !== 'advisory-lock') {
      this.stageOne(e);
      return;
    }
    for (let i = this.staged.length - 1; i >= 0; i--) {
      const s = this.staged[i]!;
      if (s.kind === 'unpin' && s.reason === e.reason) this.unstage(i);
    }
    this.checkLater(e.reason);
  }

  /**
   * A search_path just committed (applied in order, so a statement between two SETs was run under
   * it) that creates in the temp schema pins: see createsInTempSchema.
   */
  private pinIfPathCreatesTemp(): void {
    if (!createsInTempSchema(this.searchPath)) return;
    this.pinUnnamedTemp([]);
    // Committed work made this pin: a ROLLBACK of the transaction before it must not lift it.
    const notTemp = (reason: PinReason): boolean => reason !== 'temp-table';
    if (this.tentativePins?.includes('temp-table')) this.tentativePins = this.tentativePins.filter(notTemp);
    if (this.pendingTentative?.includes('temp-table')) this.pendingTentative = this.pendingTentative.filter(notTemp);
  }

  /** Objects the client creates may land in its temp schema, unnamed by any TEMP (see createsInTempSchema). */
  private pinUnnamedTemp(newPins: PinReason[]): void {
    this.pin('temp-table', newPins);
    this.addPinName('temp-table', undefined);
  }

  /** The temp relation or hold cursor behind a pin, by name (undefined: one pgway cannot name). */
  private addPinName(reason: PinReason, name: string | undefined): void {
    if (reason !== 'temp-table' && reason !== 'hold-cursor') return;
    this.pinnedBy ??= { 'temp-table': new Set(), 'hold-cursor': new Set() };
    this.pinnedBy[reason].add(name ?? UNNAMED);
  }

  private noteTempWork(): void {
    if (this.tempWorkRollbacks >= 0) return;
    this.tempWorkRequest = this.requestsSent;
    this.tempWorkRollbacks = this.before.rollbacks;
    this.tempWorkErrors = this.before.errors;
  }

  /**
   * The transaction that did temp work ended (ReadyForQuery 'I'). If a ROLLBACK (also ROLLBACK TO)
   * or an error came in it, the names pgway kept may name relations that are gone: they are
   * forgotten, so that a DROP of any name makes pgway ask again, and the server is asked now.
   */
  private settleTempWork(server: ServerConnection): void {
    const { reported } = server;
    if (reported.rollbacks > this.tempWorkRollbacks || reported.errors > this.tempWorkErrors) this.forgetTempNames();
    this.tempWorkRollbacks = -1;
  }

  /** Which temp relations are left is for the server to say (see tempNamesUnknown); temp functions and types still hold the pin. */
  private forgetTempNames(): void {
    const names = this.pinnedBy?.['temp-table'];
    if (names === undefined || !this.pins.has('temp-table')) return;
    const unnamed = names.has(UNNAMED);
    names.clear();
    if (unnamed) names.add(UNNAMED);
    this.checkLater('temp-table');
  }

  /** Pins the client for `reason`, noting it in `newPins` when it is new. */
  private pin(reason: PinReason, newPins: PinReason[]): void {
    if (this.pins.has(reason)) return;
    this.pins.add(reason);
    newPins.push(reason);
  }

  private stageOne(e: SessionEffect): void {
    if (e.kind === 'set' || e.kind === 'reset') this.dropSuperseded(e.name);
    this.staged.push(e);
    this.stagedIn.push(this.requestsSent);
  }

  /**
   * Forgets an earlier SET or RESET of `name` that the new one overrides: one from a request
   * already answered inside this transaction, with no transaction control since, shares the new
   * one's fate. A transaction that sets the same thing over and over stages it once.
   */
  private dropSuperseded(name: string): void {
    const { staged, stagedIn } = this;
    for (let i = staged.length - 1; i >= 0; i--) {
      const e = staged[i]!;
      if (stagedIn[i]! >= this.requestsAnswered || isTransactionMarker(e)) return;
      if ((e.kind === 'set' || e.kind === 'reset') && e.name === name) {
        this.unstage(i);
        return;
      }
    }
  }

  /** Takes staged entry `i` out, keeping the walked part's count (see settle). */
  private unstage(i: number): void {
    this.staged.splice(i, 1);
    this.stagedIn.splice(i, 1);
    if (i < this.walked) this.walked--;
  }

  /** A request (Query, Sync or FunctionCall) was written to the server: effects staged from here on belong to the next. */
  requestWritten(): void {
    this.requestsSent++;
    this.startStatus = 0;
    if (this.tentativePins === undefined) this.txEndStaged = false;
  }

  /** Applies effects[from, to) as committed; a RESET among them is noted in stagedReset. */
  private apply(effects: readonly SessionEffect[], from = 0, to = effects.length): void {
    for (let i = from; i < to; i++) {
      const e = effects[i]!;
      switch (e.kind) {
        case 'set':
          this.settings.set(e.name, e.value);
          this.placeholders?.delete(e.name);
          if (e.name === 'search_path') this.pinIfPathCreatesTemp();
          break;
        case 'reset':
          this.stagedReset = true;
          this.resetSetting(e.name);
          if (e.name === 'search_path') this.pinIfPathCreatesTemp();
          break;
        case 'reset-all':
          this.stagedReset = true;
          for (const name of [...this.settings.keys()]) {
            if (!RESET_ALL_KEEPS.has(name)) this.resetSetting(name);
          }
          this.pinIfPathCreatesTemp();
          break;
        case 'unpin':
          this.unpin(e.reason);
          // DISCARD TEMP empties the temp schema, not the search_path that creates in it.
          if (e.reason === 'temp-table') this.pinIfPathCreatesTemp();
          break;
        case 'pin':
          // State made again after a release staged before it (see releaseStaged).
          this.pins.add(e.reason);
          this.addPinName(e.reason, e.name);
          break;
        case 'drop': {
          const names = this.pinnedBy?.[e.reason];
          const known = names?.delete(e.name) ?? false;
          if (e.cascade) {
            this.forgetTempNames();
            break;
          }
          if (names === undefined || names.size > 0) break;
          // The name may have meant another relation (a search_path with pg_temp later), or a
          // relation made again in the same transaction: the server says whether any is left.
          if (e.reason === 'temp-table') this.checkLater(e.reason);
          else if (known) this.pins.delete(e.reason);
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
    if (name.includes('.')) (this.placeholders ??= new Set()).add(name);
  }

  // --- against a server connection ------------------------------------------------------------

  /** The server answered every request written so far: counts errors, rollbacks and commits from here on. */
  markRequestStart(server: ServerConnection): void {
    this.requestsAnswered = this.requestsSent;
    this.before.copyFrom(server.reported);
    this.startStatus = server.txStatus;
    // Nothing in flight: no request is left for pins pending a start status (see requestEnded).
    this.pendingTentative = undefined;
    if (this.tentativePins === undefined) this.txEndStaged = false;
  }

  /** A request ended with ReadyForQuery `status` and more are in flight behind it: settles its work alone. */
  requestEnded(server: ServerConnection, status: number): void {
    if (this.staged.length > 0) this.settle(server, status, false);
    // More requests follow in this write: which of them a later error belongs to is not known, so
    // pins made up to an ended transaction stay.
    if (status === TxStatus.Idle) this.tentativePins = undefined;
    const pending = this.pendingTentative;
    if (pending !== undefined && this.requestsAnswered + 1 >= this.pendingRequest) {
      // The request before the pending pins' own ended: they start from its status.
      this.pendingTentative = undefined;
      const known = status === TxStatus.Idle || status === TxStatus.InTransaction;
      if (known && this.requestsAnswered + 1 === this.pendingRequest) this.openTentativeWindow(pending, this.pendingRequest, server.reported);
    }
    if (this.tempWorkRollbacks >= 0) {
      if (this.requestsAnswered < this.tempWorkRequest) {
        // The temp work is in a later request: what this one reported came before it.
        this.tempWorkRollbacks = server.reported.rollbacks;
        this.tempWorkErrors = server.reported.errors;
      } else if (status === TxStatus.Idle) {
        this.settleTempWork(server);
      }
    }
    this.requestsAnswered++;
    this.before.copyFrom(server.reported);
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
   * The request that just ended (the last one in flight when `last`) committed, failed or stays
   * pending inside a transaction; its staged effects, and those earlier requests left pending,
   * follow. Transaction control staged among them (see TransactionMarker) takes effect in order as
   * far as the server reports it ran: COMMIT applies what came before it, ROLLBACK drops it,
   * ROLLBACK TO drops what came after its savepoint, RELEASE merges a savepoint into the one around
   * it. A COMMIT with no effects of its own (COMMIT AND CHAIN, a separate Query) applies what
   * earlier requests staged. An error inside a transaction block keeps what lies before its last
   * savepoint, for a ROLLBACK TO to rescue.
   *
   * The entries are walked in place: staged[0, kept) is what stays open in the transaction
   * (effects and the savepoints between them), and the first `walked` of them are from earlier
   * settles, their savepoints already seen to run.
   *
   * Known limit: errors and transaction control are counted per request, not per statement, so
   * within one text their order is assumed to be the order of the markers.
   */
  settle(server: ServerConnection, status: number, last = true): void {
    const { staged, stagedIn } = this;
    const current = this.requestsAnswered;
    let upTo = staged.length;
    if (!last) {
      upTo = 0;
      while (upTo < staged.length && stagedIn[upTo]! <= current) upTo++;
      if (upTo === 0) return;
    }
    const { reported } = server;
    const { before } = this;
    let rollbacks = reported.rollbacks - before.rollbacks;
    let commits = reported.commits - before.commits;
    let savepoints = reported.savepoints - before.savepoints;
    let releases = reported.releases - before.releases;
    const erred = reported.errors !== before.errors;
    // Inside a transaction, nothing new and nothing reported: what is open stays open.
    if (this.walked === upTo && !erred && rollbacks === 0 && commits === 0 && status === TxStatus.InTransaction) return;
    let kept = this.walked;
    let applied = false;
    let i = this.walked;
    walk: for (; i < upTo; i++) {
      const e = staged[i]!;
      switch (e.kind) {
        case 'savepoint':
          if (savepoints === 0) break walk; // an error came first: this and what follows did not run
          savepoints--;
          break;
        case 'release':
          if (releases === 0) break walk;
          releases--;
          // A savepoint not found was made before anything staged: every one staged goes with it.
          kept = dropSavepoints(staged, stagedIn, Math.max(lastSavepoint(staged, kept, e.name), 0), kept);
          continue;
        case 'rollback-to':
          if (rollbacks === 0) break walk;
          rollbacks--;
          // The savepoint stays; one not found was made before anything staged.
          kept = lastSavepoint(staged, kept, e.name) + 1;
          continue;
        case 'commit':
          if (commits > 0) {
            commits--;
            this.apply(staged, 0, kept);
            applied = true;
          } else if (rollbacks > 0) {
            rollbacks--; // a COMMIT of a failed transaction
          } else {
            break walk;
          }
          kept = 0;
          continue;
        case 'rollback':
          if (rollbacks === 0) break walk;
          rollbacks--;
          kept = 0;
          continue;
      }
      staged[kept] = e;
      stagedIn[kept++] = stagedIn[i]!;
    }
    if (commits > 0) {
      // A COMMIT of the request's own that staged nothing: what earlier requests staged committed.
      let earlier = 0;
      while (earlier < kept && stagedIn[earlier]! < current) earlier++;
      this.apply(staged, 0, earlier);
      applied ||= earlier > 0;
      staged.copyWithin(0, earlier, kept);
      stagedIn.copyWithin(0, earlier, kept);
      kept -= earlier;
    }
    const failed = rollbacks > 0 || erred || status === TxStatus.Failed;
    if (failed) {
      // Past the last savepoint (and from the error on) all is lost, whatever the client does next;
      // before it, a ROLLBACK TO may still keep it. Outside a transaction block all is lost.
      kept = status === TxStatus.Failed && rollbacks === 0 ? lastSavepoint(staged, kept) + 1 : 0;
      i = upTo;
    }
    this.walked = kept;
    // Entries not walked (after an error) wait for the transaction's end, then those of later requests.
    staged.copyWithin(kept, i, staged.length);
    stagedIn.copyWithin(kept, i, stagedIn.length);
    staged.length = stagedIn.length = kept + staged.length - i;
    if (!failed && status === TxStatus.Idle) {
      const end = kept + upTo - i;
      this.apply(staged, 0, end);
      applied ||= end > 0;
      staged.splice(0, end);
      stagedIn.splice(0, end);
      this.walked = 0;
    }
    if (last && status === TxStatus.Idle) {
      if (this.tentativePins !== undefined) this.settleTentativePins(server, erred);
      if (this.tempWorkRollbacks >= 0) this.settleTempWork(server);
    }
    if (failed) {
      // PostgreSQL undoes these with the transaction. What the connection holds is uncertain
      // until the transaction ends, whatever comes after.
      this.stagedReset = false;
      this.layAfter = false;
      this.uncertain = status !== TxStatus.Idle;
      server.appliedSettings = UNKNOWN_SETTINGS;
    } else if (status !== TxStatus.Idle) {
      if (applied) server.appliedSettings = UNKNOWN_SETTINGS; // settings committed, more to come
    } else if (!last) {
      // Requests behind this one are on their way: the settings are recorded when the last one ends.
      this.layAfter = true;
      server.appliedSettings = UNKNOWN_SETTINGS;
    } else {
      this.layAfter = false;
      if (this.stagedReset || this.uncertain) {
        // After a RESET, or a transaction that failed and went on past a ROLLBACK TO: the settings
        // are laid on again rather than trusted.
        this.stagedReset = false;
        this.uncertain = false;
        this.resync(server);
      } else {
        server.appliedSettings = this.settingsSql;
      }
    }
  }
}

/** Pinned state a rolled-back transaction takes with it (unlike a session advisory lock, which stays). */
const UNDONE_BY_ROLLBACK: ReadonlySet<PinReason> = new Set<PinReason>(['listen', 'temp-table', 'hold-cursor']);

/** The index of the latest savepoint named `name` (any, when none is given) in effects[0, end); -1 when none. */
function lastSavepoint(effects: readonly SessionEffect[], end: number, name?: string): number {
  for (let i = end - 1; i >= 0; i--) {
    const e = effects[i]!;
    if (e.kind === 'savepoint' && (name === undefined || e.name === name)) return i;
  }
  return -1;
}

/**
 * Moves the effects of staged[from, end) together, leaving out its savepoints; returns where they
 * now end. What lies at and past the old end is left as it was.
 */
function dropSavepoints(staged: SessionEffect[], stagedIn: number[], from: number, end: number): number {
  let to = from;
  for (let i = from; i < end; i++) {
    if (staged[i]!.kind === 'savepoint') continue;
    staged[to] = staged[i]!;
    stagedIn[to++] = stagedIn[i]!;
  }
  return to;
}

export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

export function prepareStatement(name: string, sql: string, paramTypes: readonly string[]): string {
  const types = paramTypes.length ? `(${paramTypes.join(', ')})` : '';
  return `PREPARE ${quoteIdent(name)}${types} AS ${sql}`;
}
