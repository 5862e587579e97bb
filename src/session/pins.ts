/**
 * A pooled client's pins: state that cannot move to another server connection (LISTEN, temp
 * tables, WITH HOLD cursors, session advisory locks, SET SESSION AUTHORIZATION, statements pgway
 * cannot follow), which keeps the client on its connection until the state is gone. SessionState
 * stages and applies the statements that make and release them; this decides when a pin is made,
 * when a rollback lifts it again, which names stand behind it, and when the server is asked
 * whether the state is still there.
 */
import { ReportedCounts } from '../pool/reported-counts.js';
import type { ServerConnection } from '../pool/server-connection.js';
import type { NamedPin, PinReason, SessionEffect, TransactionMarker } from '../router/session-effects.js';
import { createsInTempSchema } from '../router/guc-value.js';
import { TxStatus } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import { endsFailedBlock } from './sql-placement.js';

/** Pins whose state the server can be asked about (see Pins.takeCheckDue). */
export type CheckedPin = 'advisory-lock' | 'temp-table' | 'listen' | 'hold-cursor' | 'session-authorization';

/** The questions: each answers a row (at most one) while the session holds that state. */
export const STILL_HELD_QUESTIONS: Readonly<Record<CheckedPin, Buffer>> = {
  'advisory-lock': msg.query(
    "SELECT FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() LIMIT 1",
  ),
  // Temp tables, views and sequences (with their indexes) are the relations of the session's temp schema.
  // The operators are qualified: the question runs under the client's search_path.
  'temp-table': msg.query('SELECT FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() LIMIT 1'),
  listen: msg.query('SELECT FROM pg_catalog.pg_listening_channels() LIMIT 1'),
  // Asked outside a transaction, where the only cursors left are WITH HOLD ones.
  'hold-cursor': msg.query('SELECT FROM pg_catalog.pg_cursors WHERE is_holdable LIMIT 1'),
  // pg_stat_activity keeps the user the connection logged in as; SET SESSION AUTHORIZATION changes session_user.
  'session-authorization': msg.query(
    'SELECT FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND usesysid OPERATOR(pg_catalog.<>) ' +
      '(SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) session_user)',
  ),
};

/** Whether the server can be asked about `reason` (see STILL_HELD_QUESTIONS). */
function isChecked(reason: PinReason): reason is CheckedPin {
  return reason in STILL_HELD_QUESTIONS;
}

/** Stands for temp objects pgway cannot name: they hold the pin until DISCARD TEMP. */
const UNNAMED = '\u0000unnamed';
/**
 * Stands for hold cursors pgway no longer names: a CLOSE that a rollback or an error dropped may
 * or may not have run (see droppedMayHaveRun), so a CLOSE of any name may be of the last one.
 */
const FORGOTTEN = '\u0000forgotten';

/**
 * Pinned state a rolled-back transaction takes with it (unlike a session advisory lock, which
 * stays): also a setting pgway could not read, which a failed or skipped statement never made.
 */
const UNDONE_BY_ROLLBACK: ReadonlySet<PinReason> = new Set<PinReason>(['listen', 'temp-table', 'hold-cursor', 'session-authorization', 'unparseable-session-statement']);

/** Where a session is in its requests: SessionState moves it on, Pins reads it. */
export class RequestCounts {
  /** Client requests (Query, Sync, FunctionCall) written to a server, and answered: they number the requests. */
  sent = 0;
  answered = 0;
  /** The attached server's counts when the current request began. */
  readonly before = new ReportedCounts();
}

export class Pins {
  readonly reasons = new Set<PinReason>();
  /** The temp tables and hold cursors behind the 'temp-table' and 'hold-cursor' pins, by name. */
  // Made on first use: most clients never need them, and 10,000 idle clients would otherwise
  // carry two empty Sets each.
  private pinnedBy: Record<NamedPin, Set<string>> | undefined;
  /**
   * Pins whose state may be gone though pgway cannot tell: a statement that may have left the
   * session without advisory locks ran (an unlock, a try-lock, a lock call that may have failed),
   * the last temp relation pgway knew of was dropped (the name may have meant another relation:
   * search_path), or a release PostgreSQL does not roll back was in work that rolled back (see
   * droppedMayHaveRun). The server is asked once the transaction is over and nothing else pins the
   * client (see takeCheckDue).
   */
  private checks: Set<CheckedPin> | undefined;
  /**
   * Pins made in the transaction now open for state PostgreSQL undoes when that transaction rolls
   * back (a LISTEN, a temporary table, a WITH HOLD cursor, a SET SESSION AUTHORIZATION): lifted if it does.
   */
  private tentativePins: PinReason[] | undefined;
  /** The COMMITs and ROLLBACKs the server will have reported when the first of them is made. */
  private tentativeCommits = 0;
  private tentativeRollbacks = 0;
  /** The request (see RequestCounts) that made the first tentative pin, and the one that made the last. */
  private tentativeRequest = 0;
  private tentativeLast = 0;
  /**
   * Pins made in a request written behind others, which may become tentative: once the request
   * before theirs ends with a transaction open or none (see requestEnded), the state they start from is known.
   */
  private pendingTentative: PinReason[] | undefined;
  private pendingRequest = 0;
  /**
   * A COMMIT or ROLLBACK was staged in the request being written, or since the tentative pins were
   * made: state made after it belongs to another transaction than theirs (see beforeMade).
   */
  private txEndStaged = false;
  /** A ROLLBACK, COMMIT or ROLLBACK TO was staged in the request being written (see refusedNow). */
  private rescueStaged = false;
  /**
   * The COMMITs (DISCARD ALL's too) and ROLLBACKs (ROLLBACK TO's too: its tag is ROLLBACK) staged
   * in the request being written: what the server reports for them before a pin made after them.
   */
  private commitsStaged = 0;
  private rollbacksStaged = 0;
  /** The same, for the pending pins (see pendingTentative). */
  private pendingCommits = 0;
  private pendingRollbacks = 0;
  /** Each pending pin is known to be refused if its request starts in a failed block (see refusedNow). */
  private pendingRefusable = false;
  /**
   * The state being made may be in another transaction than the tentative or pending pins' (see
   * pinUndoneByRollback), which pgway cannot tell apart: its pin, and theirs, are the server's to
   * confirm once nothing else pins the client (see checks).
   */
  private madeUncertain = false;
  /**
   * The status of the server's last ReadyForQuery when nothing was in flight, until the next
   * request is written (0 then): what the request being written starts from (see requestStart).
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
  /** The request that did the first temp work of that transaction. */
  private tempWorkRequest = 0;
  /** That transaction made a temp table ON COMMIT DROP (see tempMayGoAtEnd). */
  private tempDropsAtEnd = false;

  constructor(private readonly requests: RequestCounts) {}

  get pinned(): boolean {
    return this.reasons.size > 0;
  }

  /** A transaction end must settle something here (see transactionEnded). */
  get awaitsSettle(): boolean {
    return this.tentativePins !== undefined || this.tempWorkRollbacks >= 0;
  }

  /**
   * The pin to ask the server about now: asked only when every pin left may be gone (see checks),
   * one at a time (RequestFlow asks for the next once the server said one is gone). Temp objects
   * pgway cannot name (functions, types) are not relations the question sees: no question then.
   */
  takeCheckDue(): CheckedPin | undefined {
    const checks = this.checks;
    if (checks === undefined || this.reasons.size === 0) return undefined;
    for (const reason of this.reasons) if (!checks.has(reason as CheckedPin)) return undefined;
    if (this.pinnedBy?.['temp-table'].has(UNNAMED)) return undefined;
    const [reason] = checks;
    checks.delete(reason!);
    return reason;
  }

  /** The server may be asked about `reason` once the transaction is over (see checks). */
  checkLater(reason: CheckedPin): void {
    if (this.reasons.has(reason)) (this.checks ??= new Set()).add(reason);
  }

  /**
   * A pin went (the server said its state is gone, DISCARD, a rollback): a question about it
   * pending would be about state made since (see checks).
   */
  unpin(reason: PinReason): void {
    this.reasons.delete(reason);
    this.checks?.delete(reason as CheckedPin);
    if (reason === 'temp-table' || reason === 'hold-cursor') this.pinnedBy?.[reason].clear();
  }

  /** Pins the client for `reason`. */
  pin(reason: PinReason): void {
    this.reasons.add(reason);
  }

  // --- statements as they are sent (SessionState.stage) ------------------------------------------

  /** A statement making pinned state is about to be staged: decides whether its pin is tentative (see beforeMade). */
  beforeMade(reason: PinReason, wholeText: boolean): void {
    if (UNDONE_BY_ROLLBACK.has(reason)) this.pinUndoneByRollback(reason, wholeText && !this.rescueStaged);
  }

  /** A statement made pinned state, `name` when it has one. */
  made(reason: PinReason, name: string | undefined): void {
    this.pin(reason);
    if (this.madeUncertain) {
      this.madeUncertain = false;
      if (isChecked(reason)) this.checkLater(reason);
    }
    this.addPinName(reason, name);
    if (reason === 'temp-table') this.noteTempWork();
  }

  /** A rename: the name moves; if the rename is undone, settleTempWork forgets the names and asks. */
  renamed(reason: NamedPin, from: string, to: string): void {
    const names = this.pinnedBy?.[reason];
    if (names?.delete(from)) {
      names.add(to);
      if (reason === 'temp-table') this.noteTempWork();
    }
  }

  /**
   * Whether a DROP may release pinned state, so is worth staging: most DROP TABLEs are of tables
   * that are not the client's temp tables. A CASCADE may take temp relations of any name with it
   * (a view on the table).
   */
  dropMayRelease(e: SessionEffect & { kind: 'drop' }): boolean {
    const names = this.pinnedBy?.[e.reason];
    const mayBeHeld = names !== undefined && (names.has(e.name) || names.has(FORGOTTEN));
    if (!(mayBeHeld || this.tempNamesUnknown(e.reason) || (e.cascade && this.reasons.has(e.reason)))) return false;
    if (e.reason === 'temp-table') this.noteTempWork();
    return true;
  }

  // --- statements as they commit (SessionState.apply) --------------------------------------------

  /** State made again after a release staged before it (see SessionState.releaseStaged). */
  madeAgain(reason: PinReason, name: string | undefined): void {
    this.reasons.add(reason);
    this.addPinName(reason, name);
  }

  /** A DROP committed. */
  dropped(e: SessionEffect & { kind: 'drop' }): void {
    const names = this.pinnedBy?.[e.reason];
    const known = names?.delete(e.name) ?? false;
    if (e.cascade) {
      this.forgetTempNames();
      return;
    }
    if (names === undefined) return;
    // Only cursors pgway no longer names may be left: the server says whether any is.
    if (names.size === 1 && names.has(FORGOTTEN)) this.checkLater(e.reason as 'hold-cursor');
    if (names.size > 0) return;
    // The name may have meant another relation (a search_path with pg_temp later), or a
    // relation made again in the same transaction: the server says whether any is left.
    if (e.reason === 'temp-table') this.checkLater(e.reason);
    else if (known) this.reasons.delete(e.reason);
  }

  /**
   * A search_path just committed (applied in order, so a statement between two SETs was run under
   * it), or the one at startup: one that creates in the temp schema pins (see createsInTempSchema).
   */
  pathApplied(searchPath: string): void {
    if (!createsInTempSchema(searchPath)) return;
    this.pin('temp-table');
    this.addPinName('temp-table', undefined);
    // Committed work made this pin: a ROLLBACK of the transaction before it must not lift it.
    const notTemp = (reason: PinReason): boolean => reason !== 'temp-table';
    if (this.tentativePins?.includes('temp-table')) this.tentativePins = this.tentativePins.filter(notTemp);
    if (this.pendingTentative?.includes('temp-table')) this.pendingTentative = this.pendingTentative.filter(notTemp);
  }

  /**
   * A rollback or an error dropped a staged effect that PostgreSQL does not undo: an advisory lock
   * call, pg_advisory_unlock_all(), a CLOSE. Whether it ran (the lock call may have failed, the
   * CLOSE may have come after the error) is for the server to say; a CLOSE's cursors are no longer
   * named, since any of them may be gone.
   */
  droppedMayHaveRun(e: SessionEffect): void {
    if ((e.kind === 'pin' || e.kind === 'unpin') && e.reason === 'advisory-lock') {
      this.checkLater(e.reason);
    } else if ((e.kind === 'unpin' || e.kind === 'drop') && e.reason === 'hold-cursor') {
      const names = this.pinnedBy?.[e.reason];
      if (names === undefined || !this.reasons.has(e.reason)) return;
      if (e.kind === 'unpin') names.clear();
      else names.delete(e.name);
      names.add(FORGOTTEN);
      this.checkLater(e.reason);
    }
  }

  // --- requests and transactions ----------------------------------------------------------------

  /**
   * Whether a statement staged now is refused (25P02): its request starts in a transaction block
   * the server has failed, and nothing before it in the request ends or rescues that block (as far
   * as the staged transaction control shows: see SessionState.stage). It makes no state, so it pins nothing.
   */
  get refusedNow(): boolean {
    return this.startStatus === TxStatus.Failed && !this.rescueStaged;
  }

  /** Transaction control was staged (see TransactionMarker). */
  markerStaged(e: TransactionMarker): void {
    if (e.kind === 'rollback' || e.kind === 'commit') this.txEndStaged = true;
    if (endsFailedBlock(e)) this.rescueStaged = true;
    if (e.kind === 'commit') this.commitsStaged++;
    else if (e.kind === 'rollback' || e.kind === 'rollback-to') this.rollbacksStaged++;
  }

  /** A request was written to the server (after RequestCounts.sent moved on). */
  requestWritten(): void {
    this.startStatus = 0;
    this.newRequest();
  }

  /** What the request now being written has staged starts from nothing. */
  private newRequest(): void {
    this.rescueStaged = false;
    this.commitsStaged = this.rollbacksStaged = 0;
    if (this.tentativePins === undefined) this.txEndStaged = false;
  }

  /** Nothing is in flight and a request begins from the server's `txStatus`. */
  requestStart(txStatus: number): void {
    this.startStatus = txStatus;
    this.newRequest();
    // No request is left for pins pending a start status (see requestEnded).
    this.pendingTentative = undefined;
  }

  /**
   * A request ended with ReadyForQuery `status` and more are in flight behind it (called before
   * RequestCounts.answered moves on).
   */
  requestEnded(server: ServerConnection, status: number): void {
    const { answered } = this.requests;
    if (status === TxStatus.Idle && this.tentativePins !== undefined) {
      // The server's counts are this request's answers up to here, none of those behind it: the
      // transaction of pins made in this request or before it is settled as at the end of a write.
      // One made behind it is in another transaction, which the counts do not tell apart: they stay.
      if (this.tentativeLast <= answered) this.settleTentativePins(server, server.reported.errors !== this.requests.before.errors);
      else this.tentativePins = undefined;
    }
    const pending = this.pendingTentative;
    if (pending !== undefined && answered + 1 >= this.pendingRequest) {
      // The request before the pending pins' own ended: they start from its status.
      this.pendingTentative = undefined;
      const known = status === TxStatus.Idle || status === TxStatus.InTransaction;
      if (status === TxStatus.Failed && this.pendingRefusable && answered + 1 === this.pendingRequest) {
        // Their request starts in a failed block, and they came before anything that ends it: refused.
        for (const reason of pending) this.unpin(reason);
      } else if (known && answered + 1 === this.pendingRequest) {
        const { commits, rollbacks } = server.reported;
        this.openTentativeWindow(pending, this.pendingRequest, commits + this.pendingCommits, rollbacks + this.pendingRollbacks);
      } else {
        // Their request starts in a failed block that something before them ends (its COMMIT reports ROLLBACK).
        this.confirmLater(pending);
      }
    }
    if (this.tempWorkRollbacks >= 0) {
      if (answered < this.tempWorkRequest) {
        // The temp work is in a later request: what this one reported came before it.
        this.tempWorkRollbacks = server.reported.rollbacks;
        this.tempWorkErrors = server.reported.errors;
      } else if (status === TxStatus.Idle) {
        this.settleTempWork(server);
      }
    }
  }

  /** The last request in flight ended a transaction (ReadyForQuery 'I'); `erred`: with an error. */
  transactionEnded(server: ServerConnection, erred: boolean): void {
    if (this.tentativePins !== undefined) this.settleTentativePins(server, erred);
    if (this.tempWorkRollbacks >= 0) this.settleTempWork(server);
  }

  // --- inside --------------------------------------------------------------------------------------

  /**
   * The server said temp relations are left after the client dropped every one pgway knew of:
   * which they are, pgway cannot name, so a DROP of any relation makes it ask again.
   */
  private tempNamesUnknown(reason: NamedPin): boolean {
    return reason === 'temp-table' && this.reasons.has(reason) && this.pinnedBy?.[reason].size === 0;
  }

  /**
   * State a rollback undoes (a LISTEN, a temp table, a hold cursor, a session user) is made: the pin is tentative
   * while it is the only state of its kind, made in a transaction that may yet roll back, and a
   * ROLLBACK the server reports later must be that transaction's. So a pin is tentative only when
   * its request starts from a known state (nothing in flight, no failed transaction, whose COMMIT
   * would report ROLLBACK) and no COMMIT or ROLLBACK was staged before it; state made after the
   * tentative pins keeps them only when it is surely in their transaction (the same request, or
   * one sent to the transaction the server said was open). Otherwise every pin stays.
   */
  private pinUndoneByRollback(reason: PinReason, refusable: boolean): void {
    const { sent } = this.requests;
    const window = this.tentativePins;
    if (window !== undefined) {
      const sameTransaction = !this.txEndStaged && (sent === this.tentativeRequest || this.startStatus === TxStatus.InTransaction);
      if (!sameTransaction) {
        this.tentativePins = undefined;
        this.keepUncertain(window);
        return;
      }
      this.tentativeLast = sent;
      if (!this.reasons.has(reason)) window.push(reason);
      return;
    }
    const pending = this.pendingTentative;
    if (pending !== undefined) {
      if (this.txEndStaged || sent !== this.pendingRequest) {
        this.pendingTentative = undefined;
        this.keepUncertain(pending);
      } else if (!this.reasons.has(reason)) {
        pending.push(reason);
        this.pendingRefusable &&= refusable;
      }
      return;
    }
    if (this.reasons.has(reason)) return;
    // Made after transaction control in its own request, the state is in the transaction that
    // control left open or began: what the server reports for the control itself comes first.
    this.txEndStaged = false;
    const status = this.startStatus;
    if (status === TxStatus.Idle || status === TxStatus.InTransaction) {
      const { commits, rollbacks } = this.requests.before;
      this.openTentativeWindow([reason], sent, commits + this.commitsStaged, rollbacks + this.rollbacksStaged);
    } else if (status === 0) {
      // Requests are in flight: decided when the one before this ends.
      this.pendingTentative = [reason];
      this.pendingRequest = sent;
      this.pendingCommits = this.commitsStaged;
      this.pendingRollbacks = this.rollbacksStaged;
      this.pendingRefusable = refusable;
    } else {
      // A failed block that something before it in the request ends (its COMMIT reports ROLLBACK).
      this.madeUncertain = true;
    }
  }

  /**
   * Pins whose transaction pgway can no longer follow (state made since in a transaction it cannot
   * tell from theirs): kept, and the server asked about them (and the state being made) once
   * nothing else pins the client, rather than kept while the client lasts.
   */
  private keepUncertain(reasons: readonly PinReason[]): void {
    this.confirmLater(reasons);
    this.madeUncertain = true;
  }

  /** The server is asked about each of these pins it can be asked about (see checks). */
  private confirmLater(reasons: readonly PinReason[]): void {
    for (const reason of reasons) if (isChecked(reason)) this.checkLater(reason);
  }

  private openTentativeWindow(reasons: PinReason[], request: number, commits: number, rollbacks: number): void {
    this.tentativePins = reasons;
    this.tentativeRequest = this.tentativeLast = request;
    this.tentativeCommits = commits;
    this.tentativeRollbacks = rollbacks;
  }

  /**
   * The transaction that made the tentative pins ended (ReadyForQuery 'I'). Rolled back (a ROLLBACK
   * reported, or an error ended its implicit transaction) with no COMMIT reported since they were
   * made, its state is gone and so are the pins; with no ROLLBACK, they stay. Fewer COMMITs than the
   * control staged before them: an error came first, and the statements after it never ran. Both
   * reported: the ROLLBACK may have been a ROLLBACK TO SAVEPOINT that took the state back inside a
   * transaction that then committed, or not; the server is asked (see checks).
   */
  private settleTentativePins(server: ServerConnection, erred: boolean): void {
    const { reported } = server;
    const rolledBack = reported.rollbacks > this.tentativeRollbacks || erred;
    if (rolledBack && reported.commits <= this.tentativeCommits) {
      for (const reason of this.tentativePins!) this.unpin(reason);
    } else if (rolledBack) {
      this.confirmLater(this.tentativePins!);
    }
    this.tentativePins = undefined;
  }

  /** The temp relation or hold cursor behind a pin, by name (undefined: one pgway cannot name). */
  private addPinName(reason: PinReason, name: string | undefined): void {
    if (reason !== 'temp-table' && reason !== 'hold-cursor') return;
    this.pinnedBy ??= { 'temp-table': new Set(), 'hold-cursor': new Set() };
    this.pinnedBy[reason].add(name ?? UNNAMED);
  }

  /**
   * A temp table ON COMMIT DROP was made: at its transaction's end, the temp relations made on it
   * (a view, an owned sequence) go with it, so the names pgway keeps are forgotten and the server asked.
   */
  tempMayGoAtEnd(): void {
    this.noteTempWork();
    this.tempDropsAtEnd = true;
  }

  private noteTempWork(): void {
    if (this.tempWorkRollbacks >= 0) return;
    this.tempWorkRequest = this.requests.sent;
    this.tempWorkRollbacks = this.requests.before.rollbacks;
    this.tempWorkErrors = this.requests.before.errors;
  }

  /**
   * The transaction that did temp work ended (ReadyForQuery 'I'). If a ROLLBACK (also ROLLBACK TO)
   * or an error came in it, the names pgway kept may name relations that are gone: they are
   * forgotten, so that a DROP of any name makes pgway ask again, and the server is asked now.
   */
  private settleTempWork(server: ServerConnection): void {
    const { reported } = server;
    if (reported.rollbacks > this.tempWorkRollbacks || reported.errors > this.tempWorkErrors || this.tempDropsAtEnd) this.forgetTempNames();
    this.tempWorkRollbacks = -1;
    this.tempDropsAtEnd = false;
  }

  /** Which temp relations are left is for the server to say (see tempNamesUnknown); temp functions and types still hold the pin. */
  private forgetTempNames(): void {
    const names = this.pinnedBy?.['temp-table'];
    if (names === undefined || !this.reasons.has('temp-table')) return;
    const unnamed = names.has(UNNAMED);
    names.clear();
    if (unnamed) names.add(UNNAMED);
    this.checkLater('temp-table');
  }
}
