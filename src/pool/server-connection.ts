/**
 * One server socket. Logs in (SCRAM-SHA-256, md5 or cleartext, whatever the server asks), then
 * either forwards the server's bytes to the attached client unchanged, scanning frames only to
 * see ReadyForQuery, ParameterStatus and COPY boundaries, or runs pgway's own queries (session
 * setup, reset) while no client is attached. Transaction state comes only from ReadyForQuery.
 */
import type net from 'node:net';
import type { ServerTarget } from '../config/schema.js';
import { FeatureNotSupportedError, ServerConnectError, ServerConnectionLostError, type GatewayError } from '../errors.js';
import { errorChannel, type ErrorEvent } from '../events.js';
import { Backend, Frontend, TxStatus } from '../wire/codes.js';
import { commandRows, dataRowFirstText, decodeErrorFields, decodeParameterStatus } from '../wire/decode.js';
import { ALL_CODES, codeSet } from '../wire/frame-scanner.js';
import * as msg from '../wire/messages.js';
import { ResponseStream, type ResponseHandler } from '../wire/response-stream.js';
import { SocketWriter } from '../wire/socket-writer.js';
import type { ServerCredentials } from './server-auth.js';
import { Action, COPY_ENDED, ExpectedResponses, EXTENDED_SLOTS, GROUP_QUERIES_SHIFT, Slot, SYNC_AFTER, SYNC_AFTER_DATA, type DescriptionWatcher, type SlotExtra, type SlotUndo } from './expected-responses.js';
import { nowMs } from '../clock.js';
import { ReportedCounts } from './reported-counts.js';
import { ServerLogin } from './server-login.js';
import { CANCEL_TIMEOUT_MS, ServerCancel } from './server-cancel.js';
import { openServerSocket } from './server-socket.js';
import { schemaChanged, ServerStatements } from './server-statements.js';

export type { ServerCredentials } from './server-auth.js';

/** What the attached client side hears from its server connection. */
export interface ServerSink {
  /** Bytes to forward to the client. Returns false when the client wants us to pause. */
  onServerData(chunk: Buffer): boolean;
  /** Whether bytes handed to onServerData may still be referenced (queued, not yet written). */
  holdsBytes(): boolean;
  /** Several writes are coming for one server chunk: coalesce them. */
  cork(): void;
  uncork(): void;
  /** Every request sent so far has been answered; `status` is the ReadyForQuery byte. */
  onServerReady(status: number): void;
  /**
   * A Query of the client's was skipped by the server (behind an error in a group not synced yet):
   * it ran nothing. `query`: its number (see noteClientFrame), 0 for one pgway answered itself.
   */
  onQuerySkipped(query: number): void;
  /** A client request (Query, Sync) ended with ReadyForQuery `status` while more are in flight. */
  onRequestEnd(status: number): void;
  /**
   * `count` client requests, the oldest in flight, will get no ReadyForQuery: Syncs the server read
   * inside a COPY, a Query it skipped behind an error. The next request's ends them too.
   */
  onRequestsUnanswered(count: number): void;
  /** Everything sent has been answered, but the server waits for the client's Sync (or COPY data). */
  onAwaitingClient(): void;
  /** The server connection failed while attached. */
  onServerLost(err: Error): void;
  /** The server refused the client's settings (see expectSettings): nothing more reaches the client. */
  onSettingsRefused(): void;
  /** The client's name for the shared statement `serverName`, for errors that name it. */
  clientStatementName(serverName: string): string | undefined;
  /** Whether the client has a SQL-level statement `name` (see passRewritten). */
  definesSqlStatement(name: string): boolean;
}

export type ServerState = 'connecting' | 'idle' | 'attached' | 'internal' | 'closed';

export interface ServerError {
  sqlstate: string;
  message: string;
  fields: Map<string, string>;
}

/** PostgreSQL's 26000 message for an EXECUTE of a name it does not hold. */
const MISSING_STATEMENT = /^prepared statement "(.*)" does not exist$/;

/** Marks the swallowed slot of pgway's own question between requests (see ask). */
const QUESTION = '\u0000question';

/** What the server answered pgway's question (see ask). */
export interface Answer {
  /** How many rows the answer had. */
  rows: number;
  /** The first column of the first row, as text; undefined with no rows or a NULL. */
  first: string | undefined;
}

/** appliedSettings of a connection whose settings pgway cannot tell: the next client lays its own on afresh. */
export const UNKNOWN_SETTINGS = '\u0000unknown';

/** Marks the swallowed slot of a settings statement (see expectSettings). */
const SETTINGS = '\u0000settings';
/** The slot of pgway's own PREPAREs and DEALLOCATEs of SQL-level statements (GroupPlacement.placeSqlPrepared). */
const SQL_PREPARED = '\u0000sql-prepared';
/**
 * A Parse the server refuses (a syntax error), sent by abortRequest(): the server fails the request
 * as it would have failed it at the message pgway answered with an error itself.
 */
const ABORT = 'pgway_abort';
const ABORT_PARSE = msg.parse(ABORT, 'pgway: the request failed');
/** A Query that fails as it is parsed (see refuseQueryInGroup). */
const ABORT_QUERY = msg.query('pgway: the request failed');

/**
 * Codes whose bodies matter while forwarding (the descriptions for pgway's own Describe, see
 * describeOwn); anything else split across chunks is skipped uncopied.
 */
const FORWARD_INTEREST = codeSet([
  Backend.ReadyForQuery, Backend.ParameterStatus, Backend.ErrorResponse, Backend.CommandComplete,
  Backend.ParameterDescription, Backend.RowDescription, Backend.NoData,
]);
/** Messages the server may send at any time, outside any request's response. */
const ASYNC = codeSet([Backend.NoticeResponse, Backend.NotificationResponse, Backend.ParameterStatus]);
const MAX_SERVER_FRAME = 1 << 30;

let nextId = 1;

/** An Error carrying the server's ErrorResponse fields, for pgway's own statements that failed. */
export function serverFailure(error: ServerError): Error & { serverError: ServerError } {
  return Object.assign(new Error(error.message), { serverError: error });
}

export class ServerConnection implements ResponseHandler {
  readonly id = nextId++;
  state: ServerState = 'connecting';
  /** ParameterStatus values as the server last reported them. */
  readonly params = new Map<string, string>();
  pid = 0;
  secret = 0;
  txStatus: number = TxStatus.Idle;
  readonly createdAt = nowMs();
  lastUsedAt = nowMs();
  /** Told when the server ends the connection while nobody uses it (see Pool's idleLost). */
  idleLost: ((conn: ServerConnection) => void) | undefined;
  /** The client session attached now (0: none), for SHOW SERVERS / SHOW CLIENTS. */
  clientId = 0;

  private socket!: net.Socket;
  private out!: SocketWriter;
  /** The prepared statements this connection holds, as pgway took it to hold them. */
  readonly statements = new ServerStatements();
  /**
   * The schema epoch at which DDL was first written in the transaction open here (-1: none): at
   * its end, other sessions see the change, and copies prepared here since may have read it (a
   * temporary table that shadowed a table until then).
   */
  ddlFrom = -1;
  /** The settings statement last applied here, so a client with the same settings needs none. */
  appliedSettings = '';
  /** Errors and transaction-control tags the attached clients saw (see SessionState.settle). */
  readonly reported = new ReportedCounts();
  /** A COPY from the client began in the chunk being read: the sink hears it waits (onAwaitingClient). */
  private copyInBegan = false;
  /** pgway's question is on its way (see ask): the forwarding path looks for its answer only then. */
  private asked = false;
  /** The answer to the last question, once its CommandComplete came; taken by takeAnswer. */
  private answer: Answer | undefined;
  /** The first column of the question's first row, until its CommandComplete. */
  private firstColumn: string | undefined;
  /** The attached client's next messages wait for answers the server may keep until asked (see flushAnswers). */
  private answersWanted = false;
  /** Reads stopped because the attached client's socket was full. */
  private pausedForClient = false;
  /** The attached client just got 'cached plan must not change result type' from the server. */
  stalePlanSeen = false;
  /** The shared statement whose Bind got that error; undefined when it was not one (SQL EXECUTE). */
  staleStatement: string | undefined;
  private readonly stream = new ResponseStream(this, ALL_CODES, MAX_SERVER_FRAME);
  private sink: ServerSink | undefined;
  /**
   * The client this connection served last, while bytes of a chunk forwarded to it may still be
   * queued in its socket: the chunk that ended its transaction can still be on its way to it.
   */
  private detachedSink: ServerSink | undefined;
  /** What the server owes, one slot per request message: the expected-response FIFO. */
  readonly expected = new ExpectedResponses();
  private inPush = false;
  private settingsError: ServerError | undefined;
  /**
   * The attached client's settings were refused: what the server says after that (the answers to
   * the client's requests written behind them) never reaches the client, which is ending.
   */
  private settingsRefused = false;
  /** The ErrorResponse being read is the client's, held to be passed on changed (see passRewritten). */
  private errorRewritten = false;
  /** The error of pgway's own PREPARE of a client's SQL-level statement, in the request it failed (see passRewritten). */
  private layOnError: { frame: Buffer; sqlstate: string } | undefined;
  private idleCallback: (() => void) | undefined;
  /** The attached client waits to be read until the server owes it at most `owedResumeAt` answers (see whenOwedAtMost). */
  private owedCallback: (() => void) | undefined;
  private owedResumeAt = 0;
  /** The client is streaming COPY data: its Syncs are ignored by the server until CopyDone/CopyFail. */
  private clientInCopy = false;
  /** Extended-protocol messages were sent without a Sync after them. */
  private unsynced = false;
  private readyAfterChunk = false;
  private internalError: ServerError | undefined;
  private internalDone: ((err?: Error) => void) | undefined;
  /** The login under way, until the server's first ReadyForQuery. */
  private login: ServerLogin | undefined;
  /** Why the server refused the login, with where it is: for the log, not for clients. */
  loginRefusal: string | undefined;
  /** The server sent a FATAL error to the attached client: it already knows the connection is gone. */
  sentFatal = false;
  /**
   * The server ended its session (an error with nothing asked, behind the last ReadyForQuery: a
   * pg_terminate_backend, a shutdown): the connection is never lent again (Pool.release).
   */
  ending = false;
  /**
   * Queries (and FunctionCalls) that ran inside an extended-protocol group not synced yet, counted
   * when written and taken back when the server skips them. PostgreSQL 18 can leave the session
   * broken after one (the next statement fails with XX000 "StartTransactionCommand: unexpected
   * state STARTED"): the connection is closed when its client gives it back, not lent.
   */
  private groupQueries = 0;

  /**
   * What the server holds is not known for sure: frames went to it unseen by pgway (see
   * passUnseen). The connection is closed when its client gives it back, not lent.
   */
  private unsure = false;
  /** The server is inside a COPY from the client: from its CopyInResponse to the COPY's end. */
  private copyRunning = false;
  /**
   * The client sent a Sync during the running COPY (see syncInCopy), or after COPY data before the
   * server said it began (beginCopyIn): if the COPY fails, whether the server answers that Sync
   * depends on where it failed, which pgway cannot tell.
   */
  private copySynced = false;
  /** The COPY failed behind such a Sync: the client ends with this once it has the chunk (see onData). */
  private copySyncRefusal: GatewayError | undefined;

  /** The connection must not be lent again (see groupQueries, unsure). */
  get queryInsideGroup(): boolean {
    return this.groupQueries > 0 || this.unsure;
  }

  /**
   * A frame the client sent during a COPY from it, other than the COPY's own, passed as it is (see
   * RequestWriter): the server ends the session on it, unless the COPY failed before and a Sync
   * the client sent during it was answered, and then it runs, unseen by pgway.
   */
  passUnseen(code: number, query: number): void {
    this.unsure = true;
    this.noteClientFrame(code, query);
  }

  /**
   * The client sent a Sync during the COPY from it: not passed on, as the server ignores it there.
   * Should the COPY fail, the server would have answered it had it read it after the failure: the
   * client is ended then (see copySynced).
   */
  syncInCopy(): void {
    this.copySynced = true;
  }
  /**
   * Such an error read in the same chunk as the ReadyForQuery that ended the attached client's
   * request: whether it is the client's is known only once the client has kept or given back the
   * connection at the chunk's end (see passErrorBehindReady).
   */
  private errorBehindReady = false;
  private heldError: Buffer | undefined;
  /** Cancel requests sent for this connection (see ServerCancel). */
  private readonly cancels = new ServerCancel();
  /** ReadyForQuery and ErrorResponse messages seen: unchanged while one request runs (see ServerCancel). */
  answered = 0;

  constructor(
    readonly target: ServerTarget,
    private readonly credentials: ServerCredentials,
    private readonly startupParams: ReadonlyMap<string, string> = new Map(),
  ) {}

  get busy(): boolean {
    return this.expected.length > 0 || this.unsynced || this.clientInCopy;
  }

  /**
   * The server works on what was sent, or waits inside a COPY for the client's data: a cancel has
   * something to stop. PostgreSQL drops one that comes while it waits for the client's next message
   * (idle, or a request answered up to its Flush).
   */
  get running(): boolean {
    return this.expected.length > 0 || this.clientInCopy;
  }

  /** The server is in a COPY from the client. */
  get inCopyIn(): boolean {
    return this.clientInCopy;
  }

  /**
   * The server cannot finish without more from the client: an extended-protocol request without
   * its Sync, and nothing queued that ReadyForQuery would answer.
   */
  get waitsForClient(): boolean {
    return (this.unsynced || this.clientInCopy) && !this.expected.readyOwed;
  }

  /** Connects and logs in; resolves once the server sent its first ReadyForQuery. */
  async connect(timeoutMs: number): Promise<void> {
    // One deadline for every step: the socket's opening (TCP, SSLRequest, TLS), then the login.
    const opening = new AbortController();
    let expired: ServerConnectError | undefined;
    const deadline = setTimeout(() => {
      expired = new ServerConnectError(`login to ${this.describe()} timed out after ${timeoutMs} ms`);
      opening.abort(expired);
      this.fail(expired);
    }, timeoutMs);
    try {
      // Replication pipes take the raw socket over later, so they read through the stream API.
      const reader = this.startupParams.size === 0 ? { onChunk: (c: Buffer) => this.onData(c), lent: () => this.chunkStillSent() } : undefined;
      const { socket, direct } = await openServerSocket(this.target, timeoutMs, reader, opening.signal);
      if (expired) {
        // The deadline passed as the socket opened: it is no use to a connection already failed.
        socket.destroy();
        throw expired;
      }
      this.socket = socket;
      this.out = new SocketWriter(socket);
      await new Promise<void>((resolve, reject) => {
        this.internalDone = (err) => (err ? reject(err) : resolve());
        if (!direct) this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
        this.socket.on('error', (err) => this.fail(new ServerConnectionLostError({ cause: err })));
        this.socket.on('close', () => this.fail(new ServerConnectionLostError()));
        this.login = new ServerLogin(this.credentials, this.params, () => this.describe());
        const params: [string, string][] = [['user', this.credentials.user], ['database', this.target.dbname]];
        for (const [k, v] of this.startupParams) params.push([k, v]);
        this.socket.write(msg.startupMessage(params));
      });
      this.state = 'idle';
    } catch (err) {
      this.close();
      throw expired ?? err;
    } finally {
      clearTimeout(deadline);
    }
  }

  describe(): string {
    return `${this.target.host}:${this.target.port}/${this.target.dbname} as ${this.credentials.user}`;
  }

  // --- attached: forwarding --------------------------------------------------------------------

  attach(sink: ServerSink): void {
    this.sink = sink;
    this.state = 'attached';
    this.settingsRefused = false;
    this.stream.interest = FORWARD_INTEREST;
    this.lastUsedAt = nowMs();
  }

  detach(): void {
    this.detachedSink = this.sink;
    this.sink = undefined;
    // What the client waited for (see whenIdle) is no business of the next client's.
    this.idleCallback = undefined;
    this.owedCallback = undefined;
    this.clientHeldBack = false;
    this.answersWanted = false;
    if (this.state === 'attached') this.state = 'idle';
    // Reads waited for this client to take its bytes; the next client must not wait for that.
    if (this.pausedForClient) this.resume();
    this.stream.interest = ALL_CODES;
    this.lastUsedAt = nowMs();
  }

  /**
   * Notes a client frame about to be forwarded unchanged: its response slot in the FIFO, and the
   * COPY / Sync bookkeeping that tells when the connection is free again. `query`: the number of the
   * client's last Query written, this one's if it is a Query (see UnnamedStatement.written).
   */
  noteClientFrame(code: number, query = 0): void {
    switch (code) {
      case Frontend.Query:
        // Behind an error in a group not synced yet: the server skips it. Its slot carries its
        // number among the client's Queries (`query`), for onQuerySkipped.
        if (!this.expected.push(Slot.Query, Action.Forward, query)) {
          this.sink?.onQuerySkipped(query);
          this.sink?.onRequestsUnanswered(1);
        } else if (this.unsynced) this.groupQueries++;
        return;
      case Frontend.FunctionCall:
        // Inside a group not synced yet, as a Query there (see queryInsideGroup).
        if (!this.expected.push(Slot.FunctionCall)) this.sink?.onRequestsUnanswered(1);
        else if (this.unsynced) this.groupQueries++;
        return;
      case Frontend.Sync:
        // The server ignores a Sync during a COPY from the client (RequestWriter does not pass one on).
        if (this.clientInCopy) return;
        this.unsynced = false;
        this.expected.push(Slot.Sync);
        return;
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        // Ended before the server said the COPY began: its Syncs up to here will be ignored.
        if (!this.clientInCopy && this.expected.length > 0) this.expected.push(Slot.CopyEnd);
        this.clientInCopy = false;
        return;
      case Frontend.CopyData:
        // Before the server said a COPY began: a Sync after it may be answered (see beginCopyIn).
        if (!this.clientInCopy) this.expected.noteCopyData();
        return;
      case Frontend.Terminate:
      case Frontend.Flush:
        return;
      default: {
        // Parse, Bind, Describe, Execute, Close each owe one response; anything else unknown, none.
        this.unsynced = true;
        const slot = EXTENDED_SLOTS[code];
        if (slot) this.expected.push(slot);
      }
    }
  }

  /** A response pgway answers itself, in its place among the server's responses. */
  expectSynthesized(kind: Slot, frame: Buffer | SlotUndo): void {
    this.expect(kind, Action.Synthesize, frame);
  }

  /**
   * Queues a slot; one for a message the server will discard (after an error, until Sync) is
   * taken back, and false returned.
   */
  private expect(kind: Slot, action: Action, extra: SlotExtra): boolean {
    if (this.expected.push(kind, action, extra)) return true;
    this.notDone(extra, kind, false);
    return false;
  }

  /**
   * pgway answered a client's message with an error of its own: the server must fail the request
   * there too, so that the work before it in the request is rolled back and a transaction block
   * is aborted, as the server would have done. The Parse sent fails; its error is swallowed, and
   * the server skips to the client's Sync.
   */
  abortRequest(): void {
    this.write(ABORT_PARSE);
    this.unsynced = true;
    this.expect(Slot.Parse, Action.Swallow, ABORT);
  }

  /**
   * pgway answers a client's Query inside a group the client has not synced with `error` (see
   * RequestWriter): the server's implicit transaction fails there as it would have with the
   * client's Query failing (pgway's own failing Query, its answers swallowed), and the rest of the
   * group runs, as after a Query's error. The ReadyForQuery pgway answers with is the one the
   * server gives after such an error: 'E' in a transaction block, 'I' otherwise.
   */
  refuseQueryInGroup(error: Buffer): void {
    this.write(ABORT_QUERY);
    // Counted first: a slot refused (the server skips it) is taken back at once (notDone).
    this.groupQueries++;
    this.expect(Slot.Query, Action.Swallow, ABORT);
    const ready = this.txStatus === TxStatus.Idle ? msg.READY_IDLE : msg.READY_FAILED;
    this.expectSynthesized(Slot.Query, Buffer.concat([error, ready]));
  }

  /**
   * A message pgway sends on its own: its response is swallowed. `statement` is forgotten if a
   * Parse fails, and kept if a Close is skipped (or its undo runs then).
   */
  expectSwallowed(kind: Slot, statement?: string | SlotUndo): void {
    if (kind <= Slot.Close) this.unsynced = true;
    if (kind === Slot.Query) this.internalError = undefined;
    this.expect(kind, Action.Swallow, statement);
  }

  /** pgway's own PREPAREs and DEALLOCATEs of a client's SQL-level statements, just written. */
  expectSqlPrepared(): void {
    this.expectSwallowed(Slot.Query, SQL_PREPARED);
  }

  /**
   * Asks the server a question of pgway's own between requests: `question` is a Query of one
   * SELECT (whether the session still holds some state; what it stored for a setting). Its rows are
   * swallowed; their count and the first column of the first one are taken with takeAnswer once the
   * server is idle.
   */
  ask(question: Buffer): void {
    this.asked = true;
    this.answer = undefined;
    this.firstColumn = undefined;
    // The row and the tag are read even if they come split across chunks.
    this.stream.interest = ALL_CODES;
    this.write(question);
    this.expectSwallowed(Slot.Query, QUESTION);
  }

  /** The answer to ask; undefined when pgway's question failed. Taken once. */
  takeAnswer(): Answer | undefined {
    const answer = this.answer;
    this.answer = undefined;
    this.firstColumn = undefined;
    this.asked = false;
    if (this.state === 'attached') this.stream.interest = FORWARD_INTEREST;
    return answer;
  }

  /**
   * Asks the server to describe the shared statement `name` pgway just prepared here: `watcher`
   * hears the description, which the client never sees. Returns false when the server will skip
   * the Describe (an earlier message of the request failed), so no answer comes.
   */
  describeOwn(name: string, watcher: DescriptionWatcher): boolean {
    this.write(msg.describeStatement(name));
    this.unsynced = true;
    return this.expect(Slot.Describe, Action.Swallow, watcher);
  }

  /**
   * An extended-protocol group is open here: messages went out with no Sync after them that the
   * server heeds (one sent during a COPY an Execute began is ignored).
   */
  get groupOpen(): boolean {
    return this.unsynced;
  }

  /** The server discards every message until the client's Sync (an earlier one failed). */
  get skippingToSync(): boolean {
    return this.expected.awaitingSync;
  }

  /**
   * pgway holds the attached client's next messages back until its own Describe is answered (see
   * RequestWriter.waitForDescription): the server will wait for them, idle.
   */
  clientHeldBack = false;

  /** The client's held-back messages have gone out: a cancel waiting for them goes now. */
  clientsTurn(): void {
    this.clientHeldBack = false;
    if (this.cancels.waitingForTurn && !this.ownStatementFirst) this.cancels.takeTurn();
  }

  /**
   * pgway's statement laying a client's settings on this connection (SessionState.resync); its
   * failure is the client's to hear. The statement leaves a failed transaction block behind when
   * refused, so the requests written behind it fail too (25P02) rather than run without the
   * settings; their answers are dropped, and the client ends at the end of the chunk with the
   * refusal (ServerSink.onSettingsRefused).
   */
  expectSettings(): void {
    this.expectSwallowed(Slot.Query, SETTINGS);
  }

  /** The server refused a client's settings (see expectSettings); taken once. */
  takeSettingsError(): ServerError | undefined {
    const error = this.settingsError;
    this.settingsError = undefined;
    return error;
  }

  /** A client message sent in a form pgway chose (a renamed Parse); `change` is undone if it fails. */
  expectForwarded(kind: Slot, change?: SlotExtra): void {
    if (kind <= Slot.Close) this.unsynced = true;
    this.expect(kind, Action.Forward, change);
  }

  /**
   * pgway waits for the answers to what it wrote of a group the client has not ended yet (neither
   * Sync nor Flush): the server keeps them until asked, so pgway's own Flush asks. A group pgway
   * took for synced may yet go on: a Sync sent before an extended COPY began is ignored, which
   * pgway learns only when the COPY begins (CopyInResponse), and asks then (answersWanted).
   */
  flushAnswers(): void {
    this.answersWanted = false;
    if (this.unsynced && this.expected.length > 0 && !this.clientInCopy) this.write(msg.FLUSH);
    else this.answersWanted = true;
  }

  /** Runs `onIdle` once everything sent has been answered; `onError` if pgway's own statement failed. */
  whenIdle(onIdle: () => void, onError: (err: Error) => void): void {
    const settle = (): void => {
      const error = this.internalError;
      this.internalError = undefined;
      if (error) onError(serverFailure(error));
      else onIdle();
    };
    if (this.expected.length === 0) settle();
    else this.idleCallback = settle;
  }

  get isTls(): boolean {
    return this.socket !== undefined && 'encrypted' in this.socket;
  }

  get localPort(): number {
    return this.socket?.localPort ?? 0;
  }

  /** Bytes written to this connection still wait in its socket's queue (they may be views of a client's read buffer). */
  get writesPending(): boolean {
    return this.out.pending > 0;
  }

  get writable(): boolean {
    return !this.out.full;
  }

  /** Emits synthesized responses that are due (everything before them has been answered). */
  flushSynthesized(): void {
    while (this.expected.length > 0 && this.expected.headAction === Action.Synthesize) {
      const extra = this.expected.headExtra;
      const frame = extra instanceof Uint8Array ? extra : (extra as { frame: Buffer }).frame;
      this.expected.shift();
      if (this.settingsRefused) continue;
      if (errorChannel.hasSubscribers) publishOwnErrors(frame);
      if (this.inPush) this.stream.inject(frame);
      else this.emit(frame);
    }
    if (this.expected.length === 0 && !this.inPush && this.state === 'attached' && !this.busy) {
      this.sink?.onServerReady(this.txStatus);
    }
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  write(data: Buffer): boolean {
    return this.out.write(data);
  }

  whenDrained(callback: () => void): void {
    this.out.whenDrained(callback);
  }

  /**
   * Calls `callback` once the server owes at most `answers` responses, or is in a COPY from the
   * client (whose data it then waits for), after a chunk of the server's answers was read.
   */
  whenOwedAtMost(answers: number, callback: () => void): void {
    this.owedResumeAt = answers;
    this.owedCallback = callback;
  }

  /** Hands the raw socket over (replication pipes); this object no longer reads or owns it. */
  takeSocket(): net.Socket {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('error');
    this.socket.removeAllListeners('close');
    this.state = 'closed';
    return this.socket;
  }

  /** The client's socket is full: reads stop until it drains (see resume). */
  private pauseForClient(): void {
    this.pausedForClient = true;
    this.socket.pause();
  }

  resume(): void {
    this.pausedForClient = false;
    this.socket.resume();
  }

  // --- detached: pgway's own queries ----------------------------------------------------------

  /**
   * Brings the connection back to idle after a client left: finishes what the client left
   * half-done (COPY, an unsynced extended request), waits for every answer, rolls back an open
   * transaction and runs `resetQuery`. Rejects when the connection cannot be trusted again.
   */
  async reset(resetQuery: string): Promise<void> {
    this.ensureOpen();
    this.state = 'internal';
    if (this.clientInCopy) this.failDepartedCopy();
    // Elsewhere a Sync would commit what the client executed but never synced; PostgreSQL aborts
    // it when a client leaves like that, so the connection is closed instead (which aborts it too).
    if (this.unsynced) throw new Error('client left with an unsynced extended-protocol request');
    // A statement the departed client left running is cancelled rather than waited for.
    const cancelTimer = setTimeout(() => {
      if (this.expected.length > 0) this.cancel(() => this.state === 'internal').catch(() => undefined);
    }, 100);
    try {
      await this.drain();
    } finally {
      clearTimeout(cancelTimer);
    }
    await this.settleCancel();
    if (this.txStatus !== TxStatus.Idle) await this.query('ROLLBACK');
    if (resetQuery) {
      await this.query(resetQuery);
      // DISCARD ALL (the default) drops prepared statements and settings; assume any reset does.
      this.statements.forgetAll();
      this.appliedSettings = '';
    }
    await this.settleCancel(); // one sent while this ran, for the departed client's statement
    this.ensureOpen();
    this.state = 'idle';
  }

  /**
   * Ends a COPY from a client that left (see reset). One an Execute began without a Sync after
   * it gets one here: the server skips to a Sync after the CopyFail's error, and that Sync commits
   * nothing, the error having aborted the transaction.
   */
  private failDepartedCopy(): void {
    this.clientInCopy = false;
    this.socket.write(msg.copyFail('client disconnected'));
    if (!this.unsynced) return;
    this.unsynced = false;
    this.expected.push(Slot.Sync);
    this.socket.write(msg.SYNC);
  }

  /**
   * pgway's own work stops on a connection closed meanwhile (a reset past its timeout, waiting for
   * a cancel to be confirmed): a query written there would wait for an answer that never comes.
   */
  private ensureOpen(): void {
    if (this.state === 'closed') throw new ServerConnectionLostError();
  }

  /** Runs one simple query whose output nobody sees; rejects with the server's error, if any. */
  async query(sql: string): Promise<void> {
    this.ensureOpen();
    this.state = 'internal';
    this.expectSwallowed(Slot.Query);
    this.socket.write(msg.query(sql));
    await this.drain();
    const error = this.internalError as ServerError | undefined;
    this.internalError = undefined;
    if (this.state === 'internal') this.state = 'idle';
    if (error) throw serverFailure(error);
  }

  private drain(): Promise<void> {
    if (this.expected.length === 0) return Promise.resolve();
    this.socket.resume();
    return new Promise((resolve, reject) => {
      this.internalDone = (err) => (err ? reject(err) : resolve());
    });
  }

  /**
   * Asks the server to cancel whatever this connection runs, on a separate socket, once the
   * client's statement is next. `stillWanted` is asked again then, so a connection that has
   * meanwhile moved on to another client is not cancelled.
   */
  cancel(stillWanted: () => boolean = () => true, timeoutMs = CANCEL_TIMEOUT_MS, justSent = false): Promise<void> {
    return this.cancels.send(this, stillWanted, timeoutMs, justSent);
  }

  /** A cancel sent for this connection may still be pending: reuse waits for it (see reset). */
  get cancelPending(): boolean {
    return this.cancels.sent !== undefined;
  }

  /**
   * A cancel sent now would miss the client's statement (see ServerCancel): pgway's own query runs
   * ahead of it (the client's settings, which a cancel would seem to refuse), or pgway holds the
   * client's messages back (clientHeldBack), so the server will soon wait for them idle, and a
   * cancel that finds it waiting is dropped. pgway's own Parse or Describe ahead of the client's
   * queued messages is no reason to wait: the cancel fails the request wherever it lands.
   */
  get ownStatementFirst(): boolean {
    return this.clientHeldBack || (this.expected.headAction === Action.Swallow && this.expected.headKind === Slot.Query);
  }

  private settleCancel(): Promise<void> {
    return this.cancels.settle(() => this.query('SELECT 1'));
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.cancels.takeTurn();
    this.sink = undefined;
    if (this.socket && !this.socket.destroyed) {
      if (this.socket.writable) this.socket.end(msg.TERMINATE);
      this.socket.destroySoon();
    }
    // pgway's own work on the connection (connect, reset, a query) ends here, not at the socket's close,
    // which fail() no longer hears: the pool would count the connection as in use for ever.
    const done = this.internalDone;
    this.internalDone = undefined;
    done?.(new ServerConnectionLostError());
  }

  // --- incoming bytes ----------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    const sink = this.sink;
    const cork = sink !== undefined && this.expected.special > 0;
    if (cork) sink.cork();
    this.inPush = true;
    try {
      this.stream.push(chunk);
    } catch (err) {
      this.fail(new ServerConnectionLostError({ cause: err }));
      return;
    } finally {
      this.inPush = false;
      if (cork) sink.uncork();
    }
    if (this.owedCallback !== undefined && (this.expected.length <= this.owedResumeAt || this.clientInCopy)) {
      const owed = this.owedCallback;
      this.owedCallback = undefined;
      owed();
    }
    const refusal = this.copySyncRefusal;
    if (refusal) {
      // The COPY's error went to the client with this chunk: the client ends now, the connection with it.
      this.copySyncRefusal = undefined;
      this.fail(refusal);
      return;
    }
    if (this.settingsRefused && this.settingsError) {
      // The client ends now, whatever its requests behind the settings still owe (see expectSettings).
      this.readyAfterChunk = false;
      this.idleCallback = undefined;
      this.sink?.onSettingsRefused();
    } else if (this.readyAfterChunk) {
      this.readyAfterChunk = false;
      const idle = this.idleCallback;
      this.idleCallback = undefined;
      if (idle) idle();
      else this.sink?.onServerReady(this.txStatus);
      if (this.heldError) this.passErrorBehindReady();
    } else if ((this.unsynced && this.expected.length === 0) || this.copyInBegan) {
      this.copyInBegan = false;
      this.sink?.onAwaitingClient();
    }
  }

  /**
   * The server's last word, read behind the ReadyForQuery that ended the attached client's request:
   * a client that kept the connection (a transaction block, a pin, session mode) hears it and ends,
   * as on a direct connection; one that gave it back has no part in it, and its next transaction
   * runs on another connection (the pool discards this one, see ending).
   */
  private passErrorBehindReady(): void {
    const frame = this.heldError;
    this.heldError = undefined;
    if (frame === undefined || this.state !== 'attached' || this.settingsRefused) return;
    this.sentFatal = true;
    if (this.inPush) this.stream.inject(frame);
    else this.emit(frame);
  }

  /** Whether the last chunk read is still referenced by a client's write queue (see directReads). */
  private chunkStillSent(): boolean {
    if (this.detachedSink) {
      if (this.detachedSink.holdsBytes()) return true;
      this.detachedSink = undefined;
    }
    return this.sink?.holdsBytes() ?? false;
  }

  emit(data: Buffer): void {
    if (this.sink && !this.sink.onServerData(data)) this.pauseForClient();
  }

  onFrameStart(code: number): boolean {
    if (this.state !== 'attached' || this.login || this.settingsRefused) return false;
    // A notice raised by pgway's own statement (its settings under another client's client_min_messages
    // = debug5, say) is none of the client's; ParameterStatus and NotificationResponse are.
    if (ASYNC[code]) return code !== Backend.NoticeResponse || this.expected.headAction !== Action.Swallow;
    if (this.expected.length === 0) {
      if (code !== Backend.ErrorResponse || !this.readyAfterChunk) return true;
      this.ending = true;
      this.errorBehindReady = true;
      return false;
    }
    // An error about a statement pgway renamed reaches the client naming it as the client does.
    if (code === Backend.ErrorResponse && this.expected.headAction === Action.Forward) {
      this.errorRewritten = this.layOnError !== undefined || this.boundStatement() !== undefined;
      if (this.errorRewritten) return false;
    }
    // pgway's own messages are swallowed, but a failed injected Parse must reach the client.
    return this.expected.headAction !== Action.Swallow ||
      (code === Backend.ErrorResponse && this.expected.headKind !== Slot.Query && this.expected.headExtra !== ABORT);
  }

  onFrameEnd(code: number, buf: Buffer | undefined, start: number, end: number): void {
    if (this.login) {
      if (buf) this.onLoginFrame(this.login, code, buf, start, end);
      return;
    }
    switch (code) {
      case Backend.ReadyForQuery:
        if (buf) this.txStatus = buf[start + 5]!;
        this.answered++;
        if (this.ddlFrom >= 0 && this.txStatus === TxStatus.Idle) this.ddlEnded();
        break;
      case Backend.ParameterStatus:
        if (buf) {
          const [name, value] = decodeParameterStatus(buf, start, end);
          this.params.set(name, value);
        }
        return;
      case Backend.CopyInResponse: {
        // The server ignores Sync until the copy ends, so Syncs already sent get no ReadyForQuery.
        // A COPY an Execute began then needs a Sync of its own: until the client sends one after
        // the COPY's end, its transaction is open and unsynced (a client leaving now must not
        // hand it to the next one).
        const extended = this.expected.headKind === Slot.Execute;
        const sent = this.expected.beginCopyIn();
        if (this.expected.syncsIgnored > 0) this.sink?.onRequestsUnanswered(this.expected.syncsIgnored);
        if (extended && (sent & SYNC_AFTER) === 0) this.unsynced = true;
        if (extended) this.groupQueries += sent >> GROUP_QUERIES_SHIFT;
        this.copyRunning = true;
        this.copySynced = (sent & SYNC_AFTER_DATA) !== 0;
        // The client's CopyDone (or CopyFail) already went out: the COPY is over as far as its
        // messages go, and a Sync it sends now is answered. Messages of the client's held for the
        // answers now need the Flush the Sync it sent before stood for (see flushAnswers).
        if ((sent & COPY_ENDED) !== 0) {
          if (this.answersWanted && this.unsynced) this.flushAnswers();
          return;
        }
        this.clientInCopy = true;
        this.copyInBegan = true;
        // The client left before the COPY began (its reset is under way): nobody else will end it.
        if (this.state === 'internal') this.failDepartedCopy();
        return;
      }
      case Backend.ErrorResponse:
        this.onErrorResponse(buf, start, end);
        return;
      case Backend.CommandComplete:
        this.clientInCopy = false;
        // The COPY ended as the client asked: a Sync sent during it was ignored there.
        this.copyRunning = false;
        // The BEGIN and COMMITs of pgway's settings statement are none of the client's.
        if (buf && this.expected.headExtra !== SETTINGS) this.countTransactionEnd(buf, start, end);
        if (this.asked && buf && this.expected.headExtra === QUESTION) {
          this.answer = { rows: commandRows(buf, start, end), first: this.firstColumn };
        }
        break;
      case Backend.NoticeResponse:
      case Backend.NotificationResponse:
        return;
      case Backend.DataRow:
        if (this.asked && buf && this.expected.headExtra === QUESTION && this.firstColumn === undefined) {
          this.firstColumn = dataRowFirstText(buf, start, end);
        }
        break;
      case Backend.ParameterDescription:
      case Backend.RowDescription:
      case Backend.NoData:
        if (this.expected.special > 0 && buf) this.watchDescription(code, buf, start, end);
        break;
    }
    if (this.expected.length === 0 || !this.expected.endsHead(code)) return;
    const clientReady = code === Backend.ReadyForQuery && this.expected.headAction === Action.Forward;
    if (clientReady) this.layOnError = undefined;
    this.expected.shift();
    if (this.expected.length > 0) {
      if (clientReady) this.sink?.onRequestEnd(this.txStatus);
      if (this.cancels.waitingForTurn && !this.ownStatementFirst) this.cancels.takeTurn();
      this.flushSynthesized();
      // Answers pgway gave itself (a Close) were all that was left after this ReadyForQuery: idle too.
      if (this.expected.length > 0 || code !== Backend.ReadyForQuery) return;
    }
    if (code === Backend.ReadyForQuery) this.onIdle();
  }

  /** The server-side name of the shared statement the Bind at the head binds, if pgway renamed it. */
  private boundStatement(): string | undefined {
    if (this.expected.headKind !== Slot.Bind) return undefined;
    const extra = this.expected.headExtra;
    if (typeof extra === 'string') return extra;
    return typeof extra === 'object' && 'undo' in extra ? extra.statement : undefined;
  }

  /**
   * A client's error that onFrameStart held: one about the shared statement a Bind named, as the
   * client names it; where pgway failed to lay on a client's own SQL-level definition, as the error
   * that failed it (PostgreSQL's EXECUTE of a statement that no longer plans gives the planner's
   * error): the client's statement missing (26000), or its transaction block, which the failure
   * aborted (25P02). Returns the SQLSTATE of a substituted error.
   */
  private passRewritten(buf: Buffer, start: number, end: number): string | undefined {
    const layOnError = this.layOnError;
    this.layOnError = undefined;
    if (this.state !== 'attached') return undefined;
    const substitute = layOnError !== undefined && this.layOnFailed(decodeErrorFields(buf, start, end)) ? layOnError : undefined;
    let frame = substitute?.frame;
    if (frame === undefined) {
      // The head is still the failing Bind (the slot goes when the error has been read).
      const serverName = this.boundStatement();
      const name = serverName === undefined ? undefined : this.sink?.clientStatementName(serverName);
      frame = name === undefined ? Buffer.from(buf.subarray(start, end)) : msg.renameInError(buf, start, end, serverName!, name);
    }
    if (this.inPush) this.stream.inject(frame);
    else this.emit(frame);
    return substitute?.sqlstate;
  }

  /** Whether the client's error `fields` follows from pgway's failed PREPARE of its statement (see passRewritten). */
  private layOnFailed(fields: Map<string, string>): boolean {
    const code = fields.get('C');
    if (code === '25P02') return true;
    const missing = code === '26000' ? MISSING_STATEMENT.exec(fields.get('M') ?? '') : null;
    return missing !== null && this.sink?.definesSqlStatement(missing[1]!) === true;
  }

  /** A description answering pgway's own Describe goes to its watcher (see describeOwn). */
  private watchDescription(code: number, buf: Buffer, start: number, end: number): void {
    const extra = this.expected.headExtra;
    if (this.expected.headKind !== Slot.Describe || this.expected.headAction !== Action.Swallow) return;
    if (typeof extra === 'object' && 'described' in extra) extra.described(code, buf, start, end);
  }

  /**
   * Counts the tags of transaction control, and those of SQL-level statements a client's request
   * changed (not pgway's own PREPAREs); most tags (SELECT, INSERT, ...) fail the first byte test.
   */
  private countTransactionEnd(buf: Buffer, start: number, end: number): void {
    const first = buf[start + 5];
    if (first === 0x53 /* S */) {
      if (buf[start + 6] === 0x41 /* A: SAVEPOINT, the only tag starting SA */) this.reported.savepoints++;
      return;
    }
    // DISCARD ALL runs only outside a transaction block and commits at once, as a COMMIT would.
    const discard = first === 0x44 /* D */ && buf[start + 6] === 0x49; /* I: DISCARD, the only tag starting DI */
    const deallocate = first === 0x44 && buf[start + 6] === 0x45 && buf[start + 7] === 0x41; /* DEA: DEALLOCATE, not DELETE */
    if (first !== 0x52 /* R */ && first !== 0x43 /* C */ && first !== 0x50 /* P */ && !discard && !deallocate) return;
    const tag = buf.toString('latin1', start + 5, end - 1);
    const client = this.expected.headAction === Action.Forward;
    if (tag === 'ROLLBACK') this.reported.rollbacks++;
    else if (tag === 'COMMIT' || tag === 'PREPARE TRANSACTION') this.reported.commits++;
    else if (tag === 'DISCARD ALL') {
      this.reported.commits++;
      if (client) this.reported.sqlNames++;
    } else if (tag === 'RELEASE') this.reported.releases++;
    else if (client && (tag === 'PREPARE' || tag === 'DEALLOCATE' || tag === 'DEALLOCATE ALL')) this.reported.sqlNames++;
  }

  private ddlEnded(): void {
    this.statements.markStaleSince(this.ddlFrom);
    this.ddlFrom = -1;
    schemaChanged();
  }

  // Apart from onFrameEnd: a closure there would cost every frame an allocation (V8 makes the
  // function's context on entry), and errors are rare.
  private onErrorResponse(buf: Buffer | undefined, start: number, end: number): void {
    this.clientInCopy = false;
    if (this.copyRunning && this.copySynced) {
      this.copySyncRefusal = new FeatureNotSupportedError('a COPY FROM STDIN that fails after a Sync sent during it is not supported through pgway: whether the server answers that Sync depends on where the COPY failed');
    }
    this.copyRunning = false;
    this.answered++;
    if (this.errorBehindReady) {
      this.errorBehindReady = false;
      // The body is always collected (ALL_CODES, FORWARD_INTEREST): a copy, as the chunk goes on.
      if (buf) this.heldError = Buffer.from(buf.subarray(start, end));
      // Split over two chunks: the first one's end decided already.
      if (!this.readyAfterChunk) this.passErrorBehindReady();
      return;
    }
    let sent: string | undefined;
    if (this.errorRewritten) {
      this.errorRewritten = false;
      if (buf) sent = this.passRewritten(buf, start, end);
    }
    const swallowed = this.expected.headAction === Action.Swallow;
    // The abort's error stands for the one pgway answered the client with (see abortRequest): the
    // client's request failed, and what it staged goes, as after an error of the server's.
    // One that answers nothing (a FATAL after the last ReadyForQuery, read in the same chunk: a
    // pg_terminate_backend of the connection just after the request ended) fails no request.
    if (this.expected.length > 0 && (!swallowed || this.expected.headExtra === ABORT)) this.reported.errors++;
    let sqlstate: string | undefined;
    if (buf) {
      const fields = decodeErrorFields(buf, start, end);
      sqlstate = fields.get('C');
      const severity = fields.get('V') ?? fields.get('S');
      if (severity === 'FATAL' || severity === 'PANIC') {
        this.sentFatal = this.state === 'attached';
        // The session ends, whatever pgway's own message at the head: where onFrameStart swallowed
        // the error, the client still hears why, as on a direct connection (pg_terminate_backend's 57P01).
        const forwarded = !swallowed || (this.expected.headKind !== Slot.Query && this.expected.headExtra !== ABORT);
        if (this.sentFatal && !forwarded && !this.settingsRefused) this.stream.inject(Buffer.from(buf.subarray(start, end)));
      }
      // After DDL a shared statement's plan may no longer fit; drop them all before reuse.
      if (fields.get('C') === '0A000' && fields.get('M')?.startsWith('cached plan must not change')) {
        this.stalePlanSeen = true;
        // DDL came from somewhere: what else it changed (a parameter's type) no error tells.
        schemaChanged();
        this.staleStatement = this.boundStatement();
      }
      // Counted when a client gets it: not pgway's own statements, nor a departed client's cleanup.
      if (!swallowed && this.state === 'attached' && errorChannel.hasSubscribers) {
        errorChannel.publish({ source: 'server', sqlstate: sent ?? fields.get('C') ?? 'XX000' } satisfies ErrorEvent);
      }
      if (swallowed && !this.internalError && this.expected.headExtra !== ABORT) {
        this.internalError = { sqlstate: fields.get('C') ?? 'XX000', message: fields.get('M') ?? '', fields };
        // What pgway took the connection to hold of SQL-level statements may be wrong: its next lease starts afresh.
        if (this.expected.headExtra === SQL_PREPARED) {
          this.statements.deallocateAll = true;
          this.layOnError = { frame: Buffer.from(buf.subarray(start, end)), sqlstate: this.internalError.sqlstate };
        }
        if (this.expected.headExtra === SETTINGS) {
          // Refused: the connection does not carry the settings its appliedSettings names.
          this.settingsError = this.internalError;
          this.settingsRefused = this.state === 'attached';
          this.appliedSettings = UNKNOWN_SETTINGS;
        }
      }
    }
    this.expected.failHead((extra, kind, failed) => this.notDone(extra, kind, failed, failed ? sqlstate : undefined));
    // The server now skips everything up to the client's Sync, even if a Sync it ignored during a
    // COPY let pgway think the request was synced: the connection is not free before that Sync.
    if (this.expected.awaitingSync) this.unsynced = true;
    this.flushSynthesized();
  }

  /** The server skipped or refused a message: what writing it assumed is taken back. */
  private notDone(extra: SlotExtra, kind: number, failed: boolean, sqlstate?: string): void {
    // A client's Query, forwarded or answered by pgway (only those are ever inside a group behind an
    // error: pgway writes its own between groups, and refuseQueryInGroup's failing Query is not the client's).
    if (kind === Slot.Query && (extra === undefined || typeof extra === 'number' || extra instanceof Uint8Array)) {
      this.sink?.onQuerySkipped(typeof extra === 'number' ? extra : 0);
    }
    // A request of the client's (pgway's failing Query in its place too) that gets no ReadyForQuery.
    if ((kind === Slot.Query || kind === Slot.FunctionCall) && (extra === undefined || typeof extra === 'number' || extra instanceof Uint8Array || extra === ABORT)) {
      this.sink?.onRequestsUnanswered(1);
    }
    // Only one inside a group is ever skipped: one written there, counted (see groupQueries), ran nothing.
    if ((kind === Slot.Query || kind === Slot.FunctionCall) && (extra === undefined || typeof extra === 'number' || extra === ABORT)) this.groupQueries--;
    if (extra === undefined || typeof extra === 'number' || extra instanceof Uint8Array) return;
    if (typeof extra === 'string') {
      if (kind === Slot.Parse) this.statements.parseNotDone(extra);
      else if (kind === Slot.Close) this.statements.closeNotDone(extra);
      return;
    }
    if (kind === Slot.Parse && extra.statement !== undefined) this.statements.parseNotDone(extra.statement);
    extra.undo(failed, sqlstate);
  }

  private onIdle(): void {
    if (!this.clientHeldBack) this.cancels.takeTurn();
    if (this.state === 'attached') {
      this.readyAfterChunk = true;
      return;
    }
    const done = this.internalDone;
    this.internalDone = undefined;
    done?.();
  }

  private fail(err: Error): void {
    if (this.state === 'closed') return;
    const idle = this.state === 'idle';
    const sink = this.sink;
    const done = this.internalDone;
    this.internalDone = undefined;
    this.close();
    this.socket?.destroy();
    sink?.onServerLost(err);
    done?.(err);
    if (idle) this.idleLost?.(this);
  }

  // --- login ---------------------------------------------------------------------------------

  private onLoginFrame(login: ServerLogin, code: number, buf: Buffer, start: number, end: number): void {
    const step = login.onFrame(code, buf, start, end);
    if (step === undefined) return;
    if (step instanceof Error) {
      this.loginRefusal = login.refusal;
      this.fail(step);
      return;
    }
    if (step !== 'ready') {
      this.socket.write(step);
      return;
    }
    this.login = undefined;
    this.pid = login.pid;
    this.secret = login.secret;
    this.txStatus = login.txStatus;
    const done = this.internalDone;
    this.internalDone = undefined;
    done?.();
  }
}

/** Counts the ErrorResponses among the messages of `frames` that pgway answers a client with itself. */
function publishOwnErrors(frames: Buffer): void {
  for (let at = 0; at + 5 <= frames.length; at += 1 + frames.readInt32BE(at + 1)) {
    if (frames[at] !== Backend.ErrorResponse) continue;
    const end = at + 1 + frames.readInt32BE(at + 1);
    errorChannel.publish({ source: 'gateway', sqlstate: decodeErrorFields(frames, at, end).get('C') ?? 'XX000' } satisfies ErrorEvent);
  }
}
