/**
 * What a pooled client's session consists of beyond its socket: settings (startup parameters
 * plus its SETs), SQL-level prepared statements and pins (state that cannot move to another
 * server connection). Effects of statements are staged when sent and applied when the server
 * says the work committed (ReadyForQuery 'I' without an error); an error or a failed transaction
 * drops them, as PostgreSQL rolls them back. Each request (Query or Sync) is settled at its own
 * ReadyForQuery, so pipelined requests commit or fail one by one as they do in PostgreSQL. A
 * COMMIT or ROLLBACK the server reports settles what was staged before it. It also lays the
 * settings on whichever server connection serves the client (resync). Settings are ClientSettings', pins Pins'.
 */
import { Slot } from '../pool/expected-responses.js';
import { UNKNOWN_SETTINGS, type ServerConnection } from '../pool/server-connection.js';
import { clientOnlyEncoding, foldGucName, parseBool } from '../router/guc-value.js';
import { isTransactionMarker, type PinReason, type SessionEffect } from '../router/session-effects.js';
import { changesReading } from '../router/setting-effects.js';
import { TxStatus } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import { ClientSettings } from './client-settings.js';
import { LocalRole } from './local-role.js';
import { SqlStatements } from './sql-statements.js';
import { Pins, RequestCounts, type CheckedPin } from './pins.js';

/** Staged entries beyond which a client is pinned rather than followed (see stage). */
const MAX_STAGED = 10_000;
/**
 * The pin of a client whose SQL pgway cannot read as the server does, so that a SET or a temp table
 * could go unseen or a value be laid on wrong: with standard_conforming_strings off (a backslash
 * escapes a quote, 'it\'s', which PostgreSQL's parser at its defaults does not know), a value
 * beyond ASCII in a client_encoding other than UTF-8 (pgway reads text as UTF-8), or a client-only
 * client_encoding (see CLIENT_ONLY_ENCODINGS).
 */
const UNREADABLE: PinReason = 'unparseable-session-statement';
/** client_encoding values meaning UTF-8, as PostgreSQL's encoding names match them (case and punctuation aside). */
const UTF8_NAMES = /^[\s_-]*(?:u[\s_-]*t[\s_-]*f[\s_-]*8|unicode)[\s_-]*$/i;
/** Text beyond ASCII, which the client_encoding in force decides how PostgreSQL reads. */
const NON_ASCII = /[^\x00-\x7f]/;
/**
 * What a server connection goes back to before a client's settings. RESET ALL leaves the role
 * alone, so it is reset on its own: one client's SET ROLE must never reach the next client.
 */
const RESET = 'RESET ALL; RESET ROLE';
/** The reset before settings beyond ASCII, which are read in the client_encoding in force (see resync). */
const RESET_TO_UTF8 = `${RESET}; SET client_encoding = 'UTF8'`;
/** A Query answering the UTF-8 of setting `name` in hex: ASCII, whatever the client_encoding (see settingReadBack). */
function readBackQuestion(name: string): Buffer {
  return msg.query(`SELECT pg_catalog.encode(pg_catalog.convert_to(pg_catalog.current_setting('${name}'), 'UTF8'), 'hex')`);
}

/**
 * Settings the server stores in a form that depends on the session's state at the SET, and does
 * not report (ParameterStatus): default_text_search_config is stored schema-qualified as resolved
 * under the search_path of that moment. Each is read back once a SET of it commits, by its question.
 */
const READ_BACK_QUESTIONS: ReadonlyMap<string, Buffer> = new Map([
  ['default_text_search_config', readBackQuestion('default_text_search_config')],
]);

/** The value the server last reported (ParameterStatus) for setting `name`: those flagged GUC_REPORT only. */
function reportedValue(params: ReadonlyMap<string, string>, name: string): string | undefined {
  for (const [key, value] of params) if (foldGucName(key) === name) return value;
  return undefined;
}

let nextOwnContext = 1;

export class SessionState {
  /** Current settings: the startup ones with the client's committed SETs laid over them. */
  private readonly settings: ClientSettings;
  /** SQL-level prepared statements (pooled modes). */
  readonly sqlPrepared = new SqlStatements();
  private readonly requests = new RequestCounts();
  private readonly pinBook = new Pins(this.requests);
  /** Marks this client's reading context while it is under SET SESSION AUTHORIZATION (see readingContext). */
  private ownContext: string | undefined;
  private staged: SessionEffect[] = [];
  /** Per staged effect, the number of the request that runs it (see requestsSent). */
  private stagedIn: number[] = [];
  /** Leading staged entries a settle has walked: their savepoints ran (see settle). */
  private walked = 0;
  /** Settings applied with their own text, whose stored form is read from the server's reports once the transaction ends (see apply). */
  private reportDue: Set<string> | undefined;
  /** The SET LOCAL ROLE in force in the transaction being written (see stage); made at the first (most clients never send one). */
  private localRole: LocalRole | undefined;
  /** A request of the current transaction failed: its settings are laid on afresh when it ends (see settle). */
  private uncertain = false;
  /**
   * The staged work RESET these settings ('all': RESET ALL). The server put back its own defaults
   * for them, not the client's startup values: the settings are laid on again (see settle).
   */
  private resetNames: Set<string> | 'all' | undefined;
  /** A request committed settings while others were in flight: the last one records them on the connection. */
  private layAfter = false;
  /** Settings committed whose stored form the server is to be asked for (see READ_BACK_QUESTIONS). Made on first use. */
  private readBackDue: Set<string> | undefined;
  /** Marks the statement context while the open transaction reads statements otherwise (see statementContext). */
  private rereadContext: string | undefined;
  /** The server's default search_path for the client's role and database ('' when not reported; see serverDefaults). */
  private defaultPath: string | undefined;
  /**
   * `keepsConnection`: session mode, where the client holds its server connection to the end, and
   * whatever the server holds for it (what a function or DO block set, too) is its own.
   */
  constructor(startup: ReadonlyMap<string, string>, private readonly keepsConnection = false) {
    this.settings = new ClientSettings(startup);
    if (this.startupUnreadable) this.pinBook.pin(UNREADABLE);
    this.pinBook.pathApplied(this.pathInForce);
  }

  /** The settings laid on include a role (see ClientSettings.sql), which the server may refuse any time. */
  get switchesRole(): boolean {
    return this.settings.switchesRole;
  }

  /** The client's text is UTF-8 as pgway reads it: its client_encoding says so, or it never set one (the server's default). */
  private get sendsUtf8(): boolean {
    let encoding = this.settings.get('client_encoding');
    // One set by an earlier request of this transaction (or pipelined ahead) is in force already; one
    // in the same query string is not: PostgreSQL reads the whole text in the encoding it arrived in.
    const { staged, stagedIn } = this;
    for (let i = 0; i < staged.length && stagedIn[i]! < this.requests.sent; i++) {
      const e = staged[i]!;
      if ((e.kind === 'set' || e.kind === 'reset') && e.name === 'client_encoding') encoding = e.kind === 'set' ? e.value : this.settings.startupValue(e.name);
    }
    return encoding === undefined || UTF8_NAMES.test(encoding);
  }

  /** The client starts with standard_conforming_strings off, or a client-only encoding (see UNREADABLE). */
  private get startupUnreadable(): boolean {
    const scs = this.settings.startupValue('standard_conforming_strings');
    const encoding = this.settings.startupValue('client_encoding');
    return (scs !== undefined && parseBool(scs) === false) || (encoding !== undefined && clientOnlyEncoding(encoding));
  }

  /** One statement that brings a server connection's settings to this session's ('' = defaults). */
  get settingsSql(): string {
    return this.settings.sql;
  }

  /**
   * The search_path in force: the client's, or the server's default for its role and database
   * (undefined until known; PostgreSQL 18 reports it at login: see serverDefaults).
   */
  private get pathInForce(): string {
    return this.settings.get('search_path') ?? this.defaultPath ?? '';
  }

  /** Whether serverDefaults has been told the server's login parameters. */
  get defaultsKnown(): boolean {
    return this.defaultPath !== undefined;
  }

  /**
   * The parameters a server connection of the client's pool reported at login: a default
   * search_path (ALTER ROLE ... SET search_path) that lists pg_temp first pins as the client's own would.
   */
  serverDefaults(params: ReadonlyMap<string, string>): void {
    this.defaultPath = params.get('search_path') ?? '';
    this.pinBook.pathApplied(this.pathInForce);
  }

  /**
   * The settings PostgreSQL reads a statement's text under (see ClientSettings.readingContext):
   * prepared statements are shared per context. Under SET SESSION AUTHORIZATION the session user
   * decides what "$user" resolves to as well, and may be anyone: the client's statements are its
   * own then (it holds its connection: see Pins), neither reading another's nor left for another.
   */
  get readingContext(): string {
    const context = this.settings.readingContext;
    if (!this.pinBook.pinned || !this.pinBook.reasons.has('session-authorization')) return context;
    this.ownContext ??= `\u0000session_authorization=#${nextOwnContext++}`;
    return context + this.ownContext;
  }

  /**
   * The context a named statement is prepared and shared under (see PreparedStatements). Where the
   * open transaction changed a reading setting (SET LOCAL ROLE, a SET search_path not yet committed,
   * RESET ALL), what a statement reads depends on what ran before it in the transaction, which
   * pgway does not follow statement by statement (a ROLLBACK TO, an error): until it ends, the
   * client's statements are its own, shared with no one.
   */
  get statementContext(): string {
    const context = this.readingContext;
    return this.rereadContext === undefined ? context : context + this.rereadContext;
  }

  /** The pinned state's kinds. */
  get pins(): ReadonlySet<PinReason> {
    return this.pinBook.reasons;
  }

  get pinned(): boolean {
    return this.pinBook.pinned;
  }

  /** The pin to ask the server about now (see Pins.takeCheckDue). */
  takeCheckDue(): CheckedPin | undefined {
    return this.pinBook.takeCheckDue();
  }

  checkLater(reason: CheckedPin): void {
    this.pinBook.checkLater(reason);
  }

  unpin(reason: PinReason): void {
    this.pinBook.unpin(reason);
  }

  get hasStaged(): boolean {
    return this.staged.length > 0;
  }

  /** The last ReadyForQuery of a request must settle something (see settle). */
  get needsSettle(): boolean {
    return this.staged.length > 0 || this.layAfter || this.uncertain || this.pinBook.awaitsSettle || this.sqlPrepared.unsettled ||
      this.rereadContext !== undefined || this.localRole?.followed === true || this.reportDue !== undefined;
  }

  /**
   * Notes the effects of statements just sent. Pins take effect at once (holding a connection a
   * little too long is harmless; releasing one too early is not), and so do PREPARE and
   * DEALLOCATE, which PostgreSQL does not roll back. `wholeText`: the effects of a Query's whole
   * text, transaction control included, so that one refused in a failed block is known to pin
   * nothing (a Query's text of COMMIT alone is not classified: see effect-precheck).
   */
  stage(effects: readonly SessionEffect[], wholeText = false): void {
    // A statement of a Query's text refused in a failed block fails the whole text: nothing after it runs.
    let textRefused = false;
    for (const e of effects) {
      if (changesReading(e)) this.rereadContext ??= `\u0000reread=#${nextOwnContext++}`;
      switch (e.kind) {
        case 'set-local':
          // Not carried: SET LOCAL ends with the transaction.
          this.unreportEarlier(e.name === '' ? undefined : e.name);
          // SET LOCAL role TO DEFAULT ('', as no role is named so) is the server connection's own
          // default: none (a startup role of the client's is laid on with set_config; see README).
          if (e.name === 'role') (this.localRole ??= new LocalRole()).set(e.value === '' ? 'none' : e.value, this.requests.sent);
          break;
        case 'pin':
          if (wholeText && (textRefused ||= this.pinBook.refusedNow)) break;
          this.pinBook.beforeMade(e.reason, wholeText);
          if (this.staged.length > 0 && this.releaseStaged(e.reason, e.name)) this.stageAfterRelease(e);
          // Staged as well: if the call fails, the server is asked whether a lock is held (see discard).
          else if (e.reason === 'advisory-lock') this.stageOne(e);
          this.pinBook.made(e.reason, e.name);
          break;
        case 'rename':
          this.pinBook.renamed(e.reason, e.from, e.to);
          break;
        case 'drop':
          if (this.pinBook.dropMayRelease(e)) this.stageOne(e);
          break;
        case 'prepare':
          this.sqlPrepared.prepare(this.requests.sent, e.name, e.sql, e.paramTypes, this.readingContext);
          break;
        case 'deallocate':
          this.sqlPrepared.deallocate(this.requests.sent, e.name);
          break;
        case 'deallocate-all':
          this.sqlPrepared.deallocateAll(this.requests.sent);
          break;
        case 'execute': {
          // An EXECUTE does what its statement does (a set_config, an advisory lock), each time it
          // runs; a value passed as $n is one pgway does not see, and pins (set-param, below).
          const body = e.runs ? this.sqlPrepared.bodyOf(e.name) : undefined;
          if (body !== undefined) this.stage(body, wholeText);
          break;
        }
        case 'recheck':
          if (e.reason === 'temp-table') this.pinBook.tempMayGoAtEnd();
          else this.pinBook.checkLater(e.reason);
          break;
        case 'set':
          if (e.name === 'standard_conforming_strings' && parseBool(e.value) === false) this.pinBook.pin(UNREADABLE);
          // pgway reads the client's text as UTF-8: in another client_encoding a value beyond ASCII is not the one the server set.
          if (NON_ASCII.test(e.value) && !this.sendsUtf8) this.pinBook.pin(UNREADABLE);
          if (e.name === 'client_encoding' && clientOnlyEncoding(e.value)) this.pinBook.pin(UNREADABLE);
          this.unreportEarlier(e.name);
          this.stageOne(this.localRole?.madeUnder(e) ?? e);
          if (e.name === 'role') this.localRole?.replaced();
          break;
        case 'reset':
          this.unreportEarlier(e.name);
          if (e.name === 'role') this.localRole?.replaced();
          this.stageOne(e);
          break;
        case 'reset-all':
          this.unreportEarlier(undefined);
          this.stageOne(e);
          break;
        case 'set-param':
          // A parameter's value pgway did not see (SQL-level EXECUTE, session mode's Parse): unknown.
          this.pinBook.pin('unparseable-session-statement');
          break;
        default:
          if (isTransactionMarker(e)) {
            this.pinBook.markerStaged(e);
            this.localRole?.marker(e);
          }
          this.stageOne(e);
      }
    }
    if (this.staged.length > MAX_STAGED) {
      // Past any reasonable transaction: the client stays where its settings are, and pgway stops
      // following them (its SETs are on that connection; DISCARD ALL, the only way out, resets them).
      this.pinBook.pin('unparseable-session-statement');
      this.staged = [];
      this.stagedIn = [];
      this.walked = 0;
    }
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
    this.pinBook.checkLater(e.reason);
  }

  /**
   * pgway stopped following some of the client's session effects (too many statements or portals
   * with effects at once): it stays on its connection, whatever becomes of the transaction.
   */
  stopFollowing(): void {
    this.pinBook.pin('unparseable-session-statement');
  }

  /**
   * Whether a Query's text of COMMIT alone must be classified (effect-precheck skips it): it ends
   * the SET LOCAL ROLE a SET staged after it must not be laid on under.
   */
  get followsCommits(): boolean {
    return this.localRole?.followed === true;
  }

  /**
   * SETs of `name` (undefined: of any setting) staged before: the value the server reports at the
   * end of the request that commits one may be this later change's (a SET LOCAL, a SET in a block
   * left open), so each keeps the value it set until the transaction ends (see apply).
   */
  private unreportEarlier(name: string | undefined): void {
    const { staged } = this;
    for (let i = staged.length - 1; i >= 0; i--) {
      const e = staged[i]!;
      if (e.kind === 'set' && e.unreported !== true && (name === undefined || e.name === name)) staged[i] = { ...e, unreported: true };
    }
  }

  private stageOne(e: SessionEffect): void {
    if (e.kind === 'set' || e.kind === 'reset') this.dropSuperseded(e.name);
    this.staged.push(e);
    this.stagedIn.push(this.requests.sent);
  }

  /**
   * Forgets an earlier SET or RESET of `name` that the new one overrides: one from a request
   * already answered inside this transaction, with no transaction control since, shares the new
   * one's fate. A transaction that sets the same thing over and over stages it once.
   */
  private dropSuperseded(name: string): void {
    // A request in flight before this one may end the transaction (a Query's COMMIT alone is not
    // classified): which transaction the earlier SET is in is not known yet.
    if (this.requests.answered < this.requests.sent) return;
    const { staged, stagedIn } = this;
    for (let i = staged.length - 1; i >= 0; i--) {
      const e = staged[i]!;
      if (stagedIn[i]! >= this.requests.answered || isTransactionMarker(e)) return;
      if ((e.kind === 'set' || e.kind === 'reset') && e.name === name) {
        this.unstage(i);
        return;
      }
      // A setting staged after a SET ROLE was made under that role (see noteRole): the SET ROLE stays.
      if (name === 'role' && (e.kind === 'set' || e.kind === 'reset')) return;
    }
  }

  /**
   * Staged entries [from, to) will never apply (a rollback or an error took their work back). Some
   * of what they stand for PostgreSQL does not undo, and may have run: see Pins.droppedMayHaveRun.
   */
  private discard(from: number, to: number): void {
    for (let i = from; i < to; i++) this.pinBook.droppedMayHaveRun(this.staged[i]!);
  }

  /** Takes staged entry `i` out, keeping the walked part's count (see settle). */
  private unstage(i: number): void {
    this.staged.splice(i, 1);
    this.stagedIn.splice(i, 1);
    if (i < this.walked) this.walked--;
  }

  /** A request (Query, Sync or FunctionCall) was written to the server: effects staged from here on belong to the next. */
  requestWritten(): void {
    this.requests.sent++;
    this.pinBook.requestWritten();
  }

  /**
   * Applies effects[from, to) as committed on `server`; a RESET among them is noted in resetNames.
   * A setting is kept as the server stored it, which is not always the SET's text (SET DateStyle =
   * 'ISO' keeps the order of days and months set before): the value the server reported for it, or
   * one to read back (see takeReadBackDue). Its reports of a request come before its ReadyForQuery,
   * which gave `status`.
   */
  private apply(server: ServerConnection, effects: readonly SessionEffect[], from: number, to: number, status: number): void {
    for (let i = from; i < to; i++) {
      const e = effects[i]!;
      switch (e.kind) {
        case 'set':
        {
          // A report is of the value at the request's end: an earlier SET of the same name applied
          // here gets the last one's value, which is the one that stays. Where a change after it
          // may be local or not over yet (unreported, in a transaction still open), the report is
          // not this SET's: its own text stands until the transaction ends (see takeReports).
          const unsure = e.unreported === true && status !== TxStatus.Idle;
          if (unsure) (this.reportDue ??= new Set()).add(e.name);
          this.settings.set(e.name, (unsure ? undefined : reportedValue(server.params, e.name)) ?? e.value, e.as);
          // A RESET before it is superseded: its startup value is not laid back over this one.
          if (this.resetNames === 'all') this.resetNames = this.settings.startupNames();
          this.resetNames?.delete(e.name);
          if (READ_BACK_QUESTIONS.has(e.name)) (this.readBackDue ??= new Set()).add(e.name);
          // Each path set decides where a CREATE after it lands (PostgreSQL 18 reports search_path too).
          if (e.name === 'search_path') this.pinBook.pathApplied(e.value);
          break;
        }
        case 'reset':
          if (this.resetNames === undefined) this.resetNames = new Set([e.name]);
          else if (this.resetNames !== 'all') this.resetNames.add(e.name);
          this.settings.reset(e.name);
          this.readBackDue?.delete(e.name);
          if (e.name === 'search_path') this.pinBook.pathApplied(this.pathInForce);
          break;
        case 'reset-all':
          this.resetNames = 'all';
          this.settings.resetAll();
          this.readBackDue = undefined;
          this.pinBook.pathApplied(this.pathInForce);
          break;
        case 'unpin':
          // DISCARD ALL goes back to the startup value of standard_conforming_strings: off keeps the client unreadable.
          if (e.reason === UNREADABLE && this.startupUnreadable) break;
          this.pinBook.unpin(e.reason);
          // DISCARD TEMP empties the temp schema, not the search_path that creates in it.
          if (e.reason === 'temp-table') this.pinBook.pathApplied(this.pathInForce);
          break;
        case 'pin':
          // State made again after a release staged before it (see releaseStaged).
          this.pinBook.madeAgain(e.reason, e.name);
          break;
        case 'drop':
          this.pinBook.dropped(e);
          break;
      }
    }
  }

  // --- against a server connection ------------------------------------------------------------

  /**
   * `restore` runs if the request being written fails (what it changed in the client's other
   * records), unless the DEALLOCATE of `deallocated` (or DEALLOCATE ALL) that made the change ran.
   */
  takeBackIfFails(restore: () => void, deallocated?: string): void {
    this.sqlPrepared.onTakeBack(restore, this.requests.sent, deallocated);
  }

  /** The request being written runs in a failed block that it does not end: it changes no statement on the server. */
  sqlLeftAsIs(): void {
    this.sqlPrepared.leftAsIs(this.requests.sent);
  }

  /** The server answered every request written so far: counts errors, rollbacks and commits from here on. */
  markRequestStart(server: ServerConnection): void {
    this.requests.answered = this.requests.sent;
    this.requests.before.copyFrom(server.reported);
    this.pinBook.requestStart(server.txStatus);
  }

  /** The oldest requests in flight get no ReadyForQuery: what they staged settles with the next one's. */
  requestsUnanswered(count: number): void {
    this.requests.answered += count;
  }

  /** A request ended with ReadyForQuery `status` and more are in flight behind it: settles its work alone. */
  requestEnded(server: ServerConnection, status: number): void {
    if (status === TxStatus.Idle) {
      this.localRole?.end();
      if (this.localRole !== undefined) LocalRole.endedAt(this.requests.answered, this.staged, this.stagedIn);
    }
    if (this.staged.length > 0 || this.sqlPrepared.unsettled) this.settle(server, status, false);
    this.pinBook.requestEnded(server, status);
    this.requests.answered++;
    this.requests.before.copyFrom(server.reported);
  }

  /**
   * A setting whose stored form the server is to be asked for (see READ_BACK_QUESTIONS), and the
   * question; asked before the client leaves the connection its SET ran on.
   */
  takeReadBackDue(): [name: string, question: Buffer] | undefined {
    const due = this.readBackDue;
    if (due === undefined) return undefined;
    const [name] = due;
    due.delete(name!);
    if (due.size === 0) this.readBackDue = undefined;
    return [name!, READ_BACK_QUESTIONS.get(name!)!];
  }

  /** The server's answer to takeReadBackDue's question, in hex: `server` holds these settings as before. */
  settingReadBack(server: ServerConnection, name: string, hex: string): void {
    const before = this.settingsSql;
    this.settings.stored(name, Buffer.from(hex, 'hex').toString('utf8'));
    if (server.appliedSettings === before) server.appliedSettings = this.settingsSql;
  }

  /**
   * A client that keeps `server` (session mode, or pinned) RESET these settings there: the server is
   * the truth about what the client holds, settings pgway never saw included (the very state a pin
   * keeps), and is not reset; only the client's startup values the RESET replaced with the server's
   * own defaults are put back, as on a direct connection. The connection's settings are unknown
   * from here on: when the client leaves it, the next client's are laid on afresh.
   */
  private restoreStartupValues(server: ServerConnection, reset: ReadonlySet<string> | 'all' | undefined): void {
    const sql = reset === undefined ? '' : this.settings.startupValuesSql(reset);
    if (NON_ASCII.test(sql) && !this.sendsUtf8) {
      // The server would read pgway's UTF-8 in the client's encoding: laid on the way any client's are.
      this.resync(server);
      return;
    }
    if (sql) {
      server.write(msg.query(`BEGIN; ${sql}; COMMIT`));
      server.expectSettings();
    }
    server.appliedSettings = UNKNOWN_SETTINGS;
  }

  /**
   * Back to defaults on `server`, then this session's settings, before the client's own request,
   * which may be written behind them before the server answers. The reset commits on its own and
   * the settings go in a transaction block of their own: if the server refuses them now (a role
   * revoked, a placeholder's prefix reserved since), the block is left failed, so the request
   * behind fails too rather than running without them, and never under the last client's role or
   * search_path (see ServerConnection.expectSettings).
   */
  resync(server: ServerConnection): void {
    const sql = this.settingsSql;
    if (!sql) {
      server.write(msg.query(RESET));
    } else if (NON_ASCII.test(sql)) {
      // PostgreSQL reads a Query's text in the client_encoding in force when it arrives: the last
      // client's, or after the reset the database's (LATIN1, say). The settings, in UTF-8, go in a
      // Query of their own after a reset that ends in UTF8; a client that never set client_encoding
      // goes back to the server's default inside the block.
      server.write(msg.query(RESET_TO_UTF8));
      server.expectSwallowed(Slot.Query);
      const encoding = this.settings.get('client_encoding') === undefined ? ' RESET client_encoding;' : '';
      server.write(msg.query(`BEGIN; ${sql};${encoding} COMMIT`));
    } else {
      // An explicit block around the reset: one that began at the settings' BEGIN would take the
      // reset in, and a refusal would undo it.
      server.write(msg.query(`BEGIN; ${RESET}; COMMIT; BEGIN; ${sql}; COMMIT`));
    }
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
    // Everything answered and no transaction open: the committed settings say how statements read.
    if (last && status === TxStatus.Idle) this.rereadContext = undefined;
    if (status === TxStatus.Idle) this.localRole?.end();
    if (this.sqlPrepared.unsettled) {
      const { reported } = server;
      const { before } = this.requests;
      this.sqlPrepared.settle(server, reported.errors !== before.errors, reported.sqlNames - before.sqlNames, last ? undefined : this.requests.answered);
    }
    const { staged, stagedIn } = this;
    const current = this.requests.answered;
    let upTo = staged.length;
    if (!last) {
      upTo = 0;
      while (upTo < staged.length && stagedIn[upTo]! <= current) upTo++;
      if (upTo === 0) return;
    }
    const { reported } = server;
    const { before } = this.requests;
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
        case 'rollback-to': {
          if (rollbacks === 0) break walk;
          rollbacks--;
          // The savepoint stays; one not found was made before anything staged.
          const to = lastSavepoint(staged, kept, e.name) + 1;
          this.discard(to, kept);
          kept = to;
          continue;
        }
        case 'commit':
          if (commits > 0) {
            commits--;
            this.apply(server, staged, 0, kept, status);
            applied = true;
          } else if (rollbacks > 0) {
            rollbacks--; // a COMMIT of a failed transaction
            this.discard(0, kept);
          } else {
            break walk;
          }
          kept = 0;
          continue;
        case 'rollback':
          if (rollbacks === 0) break walk;
          rollbacks--;
          this.discard(0, kept);
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
      this.apply(server, staged, 0, earlier, status);
      applied ||= earlier > 0;
      staged.copyWithin(0, earlier, kept);
      stagedIn.copyWithin(0, earlier, kept);
      kept -= earlier;
    }
    const failed = rollbacks > 0 || erred || status === TxStatus.Failed;
    if (failed) {
      // Past the last savepoint (and from the error on) all is lost, whatever the client does next;
      // before it, a ROLLBACK TO may still keep it. Outside a transaction block all is lost.
      const to = status === TxStatus.Failed && rollbacks === 0 ? lastSavepoint(staged, kept) + 1 : 0;
      this.discard(to, kept);
      this.discard(i, upTo);
      kept = to;
      i = upTo;
    }
    this.walked = kept;
    // Entries not walked (after an error) wait for the transaction's end, then those of later requests.
    staged.copyWithin(kept, i, staged.length);
    stagedIn.copyWithin(kept, i, stagedIn.length);
    staged.length = stagedIn.length = kept + staged.length - i;
    if (!failed && status === TxStatus.Idle) {
      const end = kept + upTo - i;
      this.apply(server, staged, 0, end, status);
      applied ||= end > 0;
      staged.splice(0, end);
      stagedIn.splice(0, end);
      this.walked = 0;
    }
    if (status === TxStatus.Idle && this.reportDue !== undefined) this.takeReports(server);
    if (last && status === TxStatus.Idle) this.pinBook.transactionEnded(server, erred);
    if (failed) {
      // PostgreSQL undoes these with the transaction. What the connection holds is uncertain
      // until the transaction ends, whatever comes after. A RESET applied (resetNames) committed
      // before the failure (a COMMIT earlier in the text) and stays done.
      this.layAfter = false;
      this.uncertain = status !== TxStatus.Idle;
      server.appliedSettings = UNKNOWN_SETTINGS;
      if (last && status === TxStatus.Idle && this.resetNames !== undefined) this.layAgain(server);
    } else if (status !== TxStatus.Idle) {
      if (applied) server.appliedSettings = UNKNOWN_SETTINGS; // settings committed, more to come
    } else if (!last) {
      // Requests behind this one are on their way: the settings are recorded when the last one ends.
      this.layAfter = true;
      server.appliedSettings = UNKNOWN_SETTINGS;
    } else {
      this.layAfter = false;
      if (this.resetNames !== undefined || this.uncertain) this.layAgain(server);
      else server.appliedSettings = this.settingsSql;
    }
  }

  /**
   * The transaction is over: the values the server reports now are the session's, for the settings
   * whose reports could not be trusted when their SETs applied (see apply).
   */
  private takeReports(server: ServerConnection): void {
    for (const name of this.reportDue!) {
      const value = reportedValue(server.params, name);
      if (value !== undefined) this.settings.stored(name, value);
    }
    this.reportDue = undefined;
  }

  /**
   * After a RESET, or a transaction that failed and went on past a ROLLBACK TO: the settings are
   * laid on `server` again rather than trusted, unless the connection stays the client's.
   */
  private layAgain(server: ServerConnection): void {
    const reset = this.resetNames;
    this.resetNames = undefined;
    this.uncertain = false;
    if (this.keepsConnection || this.pinned) this.restoreStartupValues(server, reset);
    // A connection whose server is ending is never lent again: nothing is laid on it (the client
    // goes on elsewhere, and must not hear of its end through pgway's statement).
    else if (server.ending) server.appliedSettings = UNKNOWN_SETTINGS;
    else this.resync(server);
  }
}

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

