/**
 * A pooled client's requests, from its login to its last byte: frames are held as views of the
 * bytes received until a request is complete (Query, Sync, Flush), then written to a server
 * connection (contiguous frames in one write, no copies), and the responses forwarded as they
 * arrive. The pool mode decides when a server connection is taken and given back: at login and
 * logout (session), or per transaction; statement mode also writes one request at a time, so that
 * a transaction block is refused before anything behind it runs. The session (ClientSession) keeps the socket and the login;
 * this keeps the lease, the client's settings and prepared statements, and the request timers.
 */
import type { PoolMode } from '../config/schema.js';
import {
  GatewayError,
  IdleInTransactionTimeoutError,
  ProtocolViolationError,
  ServerConnectionLostError,
  ShuttingDownError,
  TransactionBlockRefusedError,
} from '../errors.js';
import { nowMs, perfNow, wallClockAt } from '../clock.js';
import { pinChannel, type PinEvent } from '../events.js';
import { Slot } from '../pool/expected-responses.js';
import { ownerOf, type Pool, type PoolWaiter } from '../pool/pool.js';
import { UNKNOWN_SETTINGS, type ServerConnection, type ServerSink } from '../pool/server-connection.js';
import type { PinReason } from '../router/session-effects.js';
import { Frontend, TxStatus } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import { ClientLeaving, type LeavingFlow } from './client-leaving.js';
import { ClientReading, MAX_OWED } from './client-reading.js';
import type { FlowHost } from './flow-host.js';
import { ddlText, effectsOfParse } from './frame-effects.js';
import { HeldFrames } from './held-frames.js';
import { OwnQuestions, type QuestionWaits } from './own-questions.js';
import { PreparedStatements } from './prepared-statements.js';
import { RequestCancels, type CancelledFlow } from './request-cancels.js';
import { RequestWriter } from './request-writer.js';
import type { SessionContext } from './session-context.js';
import type { SessionState } from './session-state.js';
import { SettingsVerdict, type VerdictFlow } from './settings-verdict.js';
import { namesSqlStatement } from './sql-placement.js';
import { reportedParams, startupSettings } from './startup-params.js';

export class RequestFlow implements ServerSink, PoolWaiter, QuestionWaits, CancelledFlow, LeavingFlow, VerdictFlow {
  /** The transaction status the client last saw. */
  txStatus: number = TxStatus.Idle;
  /** When the client began waiting for a server (SHOW CLIENTS). */
  waitingSince = 0;
  private server: ServerConnection | undefined;
  private waiting = false;
  private readonly held: HeldFrames;
  private readonly statements = new PreparedStatements();
  /** The pins reportPins logged and counted that the client still has. */
  private pinsReported: Set<PinReason> | undefined;
  private readonly writer: RequestWriter;
  /** pgway's own questions between transactions (askStillHeld, readSettingBack); made on first use. */
  private ownQuestions: OwnQuestions | undefined;
  /** perfNow() when the current transaction took its server connection (0: none yet) / the current request was sent. */
  private leasedAt = 0;
  private requestAt = 0;
  /**
   * The client has a request written and not yet counted. pgway's own statements (settings laid on
   * again after a RESET, see SessionState.settle) end in a ReadyForQuery too: they count for nobody.
   */
  private requestOpen = false;
  private idleTxTimer: NodeJS.Timeout | undefined;
  /** perfNow() when the client went idle inside its transaction (0: it is not), for a RELOAD's new timeout. */
  private idleInTxSince = 0;
  /** Why the client is read no further (clientHeld and the pauses), and when it is read again. */
  private readonly reading: ClientReading;
  /** The client's CancelRequests, and what each is for (see cancelRunning). */
  private readonly cancels: RequestCancels;
  /** How the client leaves: after the answers to what it sent before its end (see endAfterAnswers). */
  private readonly leaving: ClientLeaving;
  /** The server's verdict on the settings laid on for the client, which its request or login reply waits for; made on first use. */
  private settingsVerdict: SettingsVerdict | undefined;

  constructor(
    private readonly host: FlowHost,
    private readonly ctx: SessionContext,
    private pool: Pool,
    readonly mode: PoolMode,
    /** Settings, SQL-level prepared statements and pins that follow the client across connections. */
    private readonly session: SessionState,
    heldChunkBytes: number,
  ) {
    this.held = new HeldFrames(heldChunkBytes);
    this.writer = new RequestWriter(this.held, this.statements, mode !== 'session' && pool.settings.maxPreparedStatements > 0);
    this.reading = new ClientReading(this, host);
    this.leaving = new ClientLeaving(this, host, this.held);
    this.cancels = new RequestCancels(this, host, ctx, this.held, this.reading, this.leaving);
  }

  // Most clients never need these two: 10,000 idle clients would otherwise carry them.
  private get questions(): OwnQuestions {
    return (this.ownQuestions ??= new OwnQuestions(this, this.host, this.ctx, this.session));
  }

  private get verdict(): SettingsVerdict {
    return (this.settingsVerdict ??= new SettingsVerdict(this, this.host, this.reading, this.leaving));
  }

  get attachedServer(): ServerConnection | undefined {
    return this.server;
  }

  get isWaiting(): boolean {
    return this.waiting;
  }

  get askingOwnQuestion(): boolean {
    return this.ownQuestions?.asking === true;
  }

  get preparedCount(): number {
    return this.statements.size;
  }

  get currentPool(): Pool {
    return this.pool;
  }

  get poolName(): string {
    return this.pool.name;
  }

  /**
   * When the client last sent a request, as a wall-clock time (0: never); SHOW CLIENTS, and SHOW
   * SERVERS for its connection. A request waiting for a connection was sent when the wait began.
   */
  get requestTime(): number {
    if (this.waiting) return this.waitingSince;
    return this.requestAt === 0 ? 0 : wallClockAt(this.requestAt);
  }

  /** Held frames are views of the client's read buffers, and so is a write still queued towards a server. */
  get holdsClientBytes(): boolean {
    return this.held.count > 0 || this.server?.writesPending === true;
  }

  /**
   * Login in a pool whose server parameters are known already: the reply needs no server
   * connection. Otherwise (session mode, or the pool's first client) one is taken now.
   */
  begin(known: ReadonlyMap<string, string> | undefined): void {
    // Not a borrowed report: another database may have another default search_path.
    if (this.pool.serverParams) this.session.serverDefaults(this.pool.serverParams);
    if (this.mode !== 'session' && known) {
      this.host.finishLogin(this.pool.loginParameters(this.session.settingsSql, () => reportedParams(known, startupSettings(this.host.params))));
      return;
    }
    this.acquire();
  }

  /** A CancelRequest carrying this client's key arrived (see RequestCancels.cancelRunning). */
  cancelRunning(): Promise<void> | undefined {
    return this.cancels.cancelRunning();
  }

  // --- pool lease --------------------------------------------------------------------------------

  private acquire(): void {
    // SHUTDOWN waits only for work under way: new work (a client between transactions asking for a
    // connection) is refused, as the shutdown's end would cut it, so a busy client cannot hold it off.
    if (this.ctx.shuttingDown) {
      this.host.fail(new ShuttingDownError());
      return;
    }
    // After a RELOAD that moved the database, new transactions go to the new pool.
    if (this.pool.retired) this.pool = this.ctx.poolFor(this.pool);
    this.waiting = true;
    this.waitingSince = nowMs();
    const conn = this.pool.acquire(this);
    if (conn) this.onLease(conn);
  }

  // Pool and server callbacks run outside the session's onData try/catch: a malformed client frame
  // met while dispatching from here must end this client, never the gateway.
  onLease(conn: ServerConnection): void {
    try {
      this.leased(conn);
    } catch (err) {
      this.host.fail(err);
    }
  }

  onQuerySkipped(query: number): void {
    this.writer.queryNotRun(this.server, query);
  }

  onRequestEnd(status: number): void {
    if (this.server) this.session.requestEnded(this.server, status);
  }

  onRequestsUnanswered(count: number): void {
    this.session.requestsUnanswered(count);
  }

  onServerReady(status: number): void {
    try {
      this.serverReady(status);
    } catch (err) {
      this.host.fail(err);
    }
  }

  /** The request waiting for a server connection was answered without one (RequestCancels): the client waits no more. */
  stopWaiting(): void {
    this.pool.cancelWait(this);
    this.waiting = false;
    if (this.reading.pausedWhileWaiting) this.reading.resumeAfterWait();
  }

  onLeaseError(err: Error): void {
    this.waiting = false;
    if (this.host.state === 'closed') return;
    this.host.fail(err);
  }

  private leased(conn: ServerConnection): void {
    this.waiting = false;
    // A client a RELOAD handed from its retired pool to the successor while it waited (Pool.retire)
    // belongs to the pool that lent the connection: its settings, statements and release are there.
    if (this.pool.retired) this.pool = ownerOf(conn) ?? this.pool;
    if (!this.session.defaultsKnown && this.pool.serverParams) this.session.serverDefaults(this.pool.serverParams);
    if (this.reading.pausedWhileWaiting) this.reading.resumeAfterWait(); // before dispatch(), which may pause it again
    const state = this.host.state;
    if (state === 'closed') {
      this.pool.release(conn, 'clean');
      return;
    }
    if (state === 'connecting' && this.mode !== 'session') {
      this.checkLogin(conn);
      return;
    }
    this.server = conn;
    conn.attach(this);
    conn.clientId = this.host.id;
    // In session mode the connection is taken at login: the first transaction starts with its request.
    this.leasedAt = this.mode === 'session' ? 0 : perfNow();
    this.session.markRequestStart(conn);
    if (conn.statements.deallocateAll) {
      // Plans went stale after DDL somewhere in this pool: start this connection afresh.
      conn.write(msg.query('DEALLOCATE ALL'));
      conn.expectSwallowed(Slot.Query);
      conn.statements.forgetAll();
    }
    if (conn.appliedSettings !== this.session.settingsSql) {
      this.session.resync(conn);
      const sql = this.session.settingsSql;
      // Settings accepted once are accepted again, unless they switch role: a membership revoked since
      // would refuse them, and the request behind them must not run without them.
      if (state === 'ready' && (!this.pool.settingsChecked(sql) || this.session.switchesRole)) {
        this.verdict.dispatchOnceAccepted(conn, sql);
        return;
      }
    }
    if (state === 'connecting') {
      this.verdict.finishLoginOnceIdle(conn);
      return;
    }
    this.dispatch();
  }

  /** A pooled client's first login in a pool took a server connection to learn the server's parameters. */
  private checkLogin(conn: ServerConnection): void {
    const params = reportedParams(conn.params, startupSettings(this.host.params));
    this.pool.release(conn, 'clean');
    this.host.finishLogin(params);
    this.leaving.leaveIfDone();
  }

  /** Sends the held frames on once the server is ready for them; a failure ends the client (see onLease). */
  onServerReadyToSend(): void {
    try {
      this.dispatch();
    } catch (err) {
      this.host.fail(err);
    }
  }

  clientStatementName(serverName: string): string | undefined {
    return this.statements.clientNameOf(serverName);
  }

  definesSqlStatement(name: string): boolean {
    return this.session.sqlPrepared.get(name) !== undefined;
  }

  /** The server refused the client's settings, laid on again (see SettingsVerdict.onSettingsRefused). */
  onSettingsRefused(): void {
    this.verdict.onSettingsRefused();
  }

  // --- client frames -------------------------------------------------------------------------

  /** A frame from the client once logged in (or while its login waits for a server). */
  onFrame(code: number, buf: Buffer, start: number, end: number): void {
    if (this.leaving.terminating) return;
    if (code === Frontend.Terminate) {
      this.leaving.onTerminate(buf, start, end);
      return;
    }
    this.held.push(code, buf, start, end);
    if (this.held.bytes > this.ctx.config().limits.maxMessageBytes * 4) {
      throw new ProtocolViolationError('too much data sent without completing a request');
    }
    // pump() does not run while the login waits for a session-mode connection: the bound holds here too.
    if (this.waiting) this.reading.readNoFurtherPastBound(this.held.bytes);
  }

  /** The client leaves once what it sent before is answered (see ClientLeaving.endAfterAnswers). */
  endAfterAnswers(err?: GatewayError): void {
    this.leaving.endAfterAnswers(err);
  }

  /** Sends held frames on, taking a server connection when a request is complete. */
  pump(): void {
    if (this.held.count === 0) return;
    if (this.reading.clientHeld || this.reading.heldCancelOut) {
      this.host.pauseReading();
      return;
    }
    if (this.server) {
      if (this.pool.retired && this.txStatus === TxStatus.Idle && !this.server.busy && this.leaveRemovedPool()) return;
      this.dispatch();
      return;
    }
    if (this.waiting) {
      this.reading.readNoFurtherPastBound(this.held.bytes);
      return;
    }
    if (!this.held.complete) return;
    if (this.writer.tracked && this.txStatus === TxStatus.Idle && this.answerPrepareLocally()) {
      this.leaving.leaveIfDone();
      return;
    }
    this.acquire();
  }

  /**
   * A client that keeps its connection between transactions (session mode, a pin) and whose
   * database or user a RELOAD removed is ended at its next request, as a transaction-mode client is
   * when it asks the pool for a connection (57P01). Returns true when it was.
   */
  private leaveRemovedPool(): boolean {
    const removed = this.pool.removedBecause;
    if (removed === undefined) return false;
    this.host.fail(removed);
    return true;
  }

  /**
   * A request that only prepares a statement the pool already has (Parse, Sync, as libpq's
   * PQprepare sends) is answered without a server connection. Clients that prepare while other
   * clients on the same thread hold every connection (pgbench -j < -c) would otherwise deadlock.
   */
  private answerPrepareLocally(): boolean {
    const held = this.held;
    if (held.count !== 2 || held.codes[0] !== Frontend.Parse || held.codes[1] !== Frontend.Sync) return false;
    const [buf, start, end] = [held.bufs[0]!, held.starts[0]!, held.ends[0]!];
    // A name already in use goes to the server path, which refuses it as PostgreSQL does.
    const serverName = this.statements.serverNameOf(buf, start, end, this.session.statementContext);
    if (!serverName || !this.pool.knowsStatement(serverName)) return false;
    // Its effects (a SAVEPOINT's, a SET's) are the statement's, staged where it is bound, as on the server path.
    const effects = effectsOfParse(buf, start, end);
    // Its DDL counts where it is bound (RequestWriter.onBind), on the connection that runs it.
    const ddl = ddlText.written;
    ddlText.written = false;
    const [name, stmt] = this.statements.onParse(buf, start, end, this.pool.planEpoch, this.session.statementContext, effects, ddl)!;
    // A SQL-level statement of that name: the server path refuses the Parse (42P05), as PostgreSQL does.
    // One whose text names SQL-level statements: the server path notes that its Binds need them laid on.
    if (this.session.sqlPrepared.get(name) !== undefined || stmt.effects.some(namesSqlStatement)) return false;
    this.statements.define(name, stmt);
    if (!this.host.send(Buffer.concat([msg.PARSE_COMPLETE, msg.READY_IDLE]))) this.reading.pauseUntilClientDrained();
    held.clear();
    return true;
  }

  /** idle_transaction_timeout_ms: a client that sits inside a transaction holds a server connection. */
  private watchIdleTransaction(now: number): void {
    this.idleInTxSince = now;
    const timeoutMs = this.pool.settings.idleTransactionTimeoutMs;
    if (timeoutMs > 0) this.startIdleTransactionTimer(timeoutMs, timeoutMs);
  }

  /**
   * RELOAD: a client already idle in its transaction is timed by the new idle_transaction_timeout_ms
   * (none when 0), still counted from when it went idle, as PgBouncer's janitor reads the setting on
   * each pass.
   */
  rewatchIdleTransaction(): void {
    if (this.idleInTxSince === 0) return;
    clearTimeout(this.idleTxTimer);
    const timeoutMs = this.pool.settings.idleTransactionTimeoutMs;
    if (timeoutMs > 0) this.startIdleTransactionTimer(timeoutMs, Math.max(0, this.idleInTxSince + timeoutMs - perfNow()));
  }

  // Apart from watchIdleTransaction(), which runs after every statement inside a transaction:
  // the timer's closure would make V8 create a context on each call, timeout or not.
  private startIdleTransactionTimer(timeoutMs: number, delayMs: number): void {
    clearTimeout(this.idleTxTimer);
    this.idleTxTimer = setTimeout(() => {
      if (this.server && !this.server.busy && this.txStatus !== TxStatus.Idle) this.host.fail(new IdleInTransactionTimeoutError(timeoutMs));
    }, delayMs);
    this.idleTxTimer.unref();
  }

  /** Writes the held frames to the attached server (see RequestWriter). */
  dispatch(): void {
    clearTimeout(this.idleTxTimer);
    this.idleInTxSince = 0;
    const server = this.server!;
    if (!this.requestOpen) {
      this.requestOpen = true;
      this.requestAt = perfNow();
      // A connection kept between transactions (session mode, a pin): the next one starts here, not at the last one's end.
      if (this.leasedAt === 0) this.leasedAt = this.requestAt;
    }
    const writer = this.writer;
    writer.write(server, this.session, this.mode, this.pool);
    const reading = this.reading;
    if (writer.waitForAnswers) {
      writer.waitForAnswers = false;
      reading.clientHeld = true;
      server.flushAnswers();
    }
    if (writer.waitForDescription) {
      writer.waitForDescription = false;
      reading.clientHeld = true;
      reading.describing = true;
    } else if (server.clientHeldBack) {
      server.clientsTurn();
    }
    if (!server.writable) reading.pauseUntilDrained(server);
    if (server.expected.length >= MAX_OWED && !reading.pausedForAnswers && !server.inCopyIn) reading.pauseUntilAnswered(server);
    server.flushSynthesized();
    if (this.cancels.cancelOnDispatch) this.cancels.sendHeldCancel();
  }

  /**
   * Logs and counts the pins the client has now that everything is answered, no transaction is
   * open and pgway's questions are answered, and had not at the last report: not one its
   * transaction's rollback, the server's refusal or pgway's question took back. A pin that went and
   * came back is counted again.
   */
  private reportPins(): void {
    const held = this.session.pins;
    const reported = (this.pinsReported ??= new Set());
    for (const reason of reported) if (!held.has(reason)) reported.delete(reason);
    for (const reason of held) {
      if (reported.has(reason)) continue;
      reported.add(reason);
      this.ctx.log.debug({ client: this.host.id, reason }, 'client pinned to its server connection');
      if (pinChannel.hasSubscribers) pinChannel.publish({ pool: this.pool.name, reason } satisfies PinEvent);
    }
    if (reported.size === 0) this.pinsReported = undefined;
  }

  // --- server events -------------------------------------------------------------------------

  onServerData(chunk: Buffer): boolean {
    this.pool.counters.bytesToClients += chunk.length;
    if (this.host.forward(chunk)) return true;
    this.reading.pauseUntilClientDrained();
    return false;
  }

  holdsBytes(): boolean {
    return this.host.pendingOut > 0;
  }

  cork(): void {
    this.host.cork();
  }

  uncork(): void {
    this.host.uncork();
  }

  /**
   * The answers to a request without its Sync have all been forwarded (Execute, Flush). A client
   * that sent Terminate behind such a request leaves now, as it does on a direct connection.
   */
  onAwaitingClient(): void {
    const server = this.server;
    if (server?.inCopyIn && this.sendHeldOnceAnswered(server)) {
      // The frames held for the answers (RequestWriter.waitForAnswers) are the COPY's data: the
      // server waits for them before it answers anything.
      return;
    }
    if (server?.expected.length === 0 && this.sendHeldOnceAnswered(server)) return;
    if (this.reading.describing) {
      // The description is in (or the server skips to the Sync): the held frames go on.
      this.reading.releaseClient(this.server!);
      this.onServerReadyToSend();
      return;
    }
    // A request ended by Flush is answered here, with no ReadyForQuery: a cancel for it is spent.
    if (!server?.inCopyIn && !this.held.complete) this.cancels.caughtUp++;
    if (this.leaving.terminating && !this.held.complete) this.leaving.leaveAwaited(server);
  }

  /**
   * Frames held for the answers to what was written (RequestWriter.waitForAnswers; not for pgway's
   * Describe) go on, while the server waits for the rest of the client's group. Returns whether
   * frames were held.
   */
  private sendHeldOnceAnswered(server: ServerConnection): boolean {
    if (!this.reading.clientHeld || this.reading.describing) return false;
    this.reading.releaseClient(server);
    this.onServerReadyToSend();
    return true;
  }

  /** The client took the bytes queued towards it: its server's may flow again. */
  onClientDrained(): void {
    this.server?.resume();
    this.reading.onClientDrained();
  }

  countClientBytes(n: number): void {
    this.pool.counters.bytesFromClients += n;
  }

  /** Everything sent has been answered. Transaction and statement modes give the connection back. */
  private serverReady(status: number): void {
    this.txStatus = status;
    const server = this.server;
    if (!server || this.host.state !== 'ready') return;
    const now = perfNow();
    if (this.requestOpen) this.countRequest(now, status);
    if (!this.held.complete) this.cancels.caughtUp++;
    if (this.session.needsSettle) this.session.settle(server, status);
    if (server.stalePlanSeen) this.onStalePlan(server);
    this.session.markRequestStart(server);
    const leaving = this.leaving;
    if (leaving.terminating && !this.held.complete && server.waitsForClient) {
      // A leaving client's request without its Sync is never finished: it leaves now.
      leaving.leave();
      return;
    }
    if (server.busy) {
      // A Query inside a group the client has not synced yet: what its frames were held for is answered.
      if (server.waitsForClient) this.sendHeldOnceAnswered(server);
      return;
    }
    this.writer.allAnswered();
    if (this.reading.clientHeld) this.reading.releaseClient(server);
    if (leaving.terminating && !this.held.complete) {
      leaving.leave();
      return;
    }
    if (status !== TxStatus.Idle && this.mode === 'statement') {
      this.host.fail(new TransactionBlockRefusedError());
      return;
    }
    if (status !== TxStatus.Idle || this.mode === 'session') {
      // Frames held behind a group that was answered (see clientHeld) go on now.
      if (this.held.count > 0) this.dispatch();
      else if (status !== TxStatus.Idle) this.watchIdleTransaction(now);
      return;
    }
    const check = this.session.takeCheckDue();
    if (check) {
      this.questions.askStillHeld(server, check);
      return;
    }
    this.betweenTransactions(server);
  }

  /** SHOW STATS and /metrics: the client's request is answered, and with status Idle its transaction is over. */
  private countRequest(now: number, status: number): void {
    this.requestOpen = false;
    const counters = this.pool.counters;
    counters.requests++;
    counters.requestTimeUs += (now - this.requestAt) * 1000;
    counters.requestLatency.record(now - this.requestAt);
    if (status === TxStatus.Idle) {
      counters.transactions++;
      counters.transactionTimeUs += (now - this.leasedAt) * 1000;
      counters.transactionLatency.record(now - this.leasedAt);
      this.leasedAt = 0;
    }
  }

  /** Idle, outside a transaction (transaction and statement modes): the next request, or the connection goes back. */
  private betweenTransactions(server: ServerConnection): void {
    // After pgway's questions, which may have lifted a pin the transaction made.
    if (this.session.pinned || this.pinsReported !== undefined) this.reportPins();
    if (this.session.pinned || (this.held.complete && !server.ending)) {
      if (this.held.count > 0) this.dispatch();
      return;
    }
    // A connection whose server is ending asks nothing: the setting is read back on the next one.
    const readBack = server.ending ? undefined : this.session.takeReadBackDue();
    if (readBack !== undefined) {
      this.questions.readSettingBack(server, readBack[0], readBack[1]);
      return;
    }
    this.server = undefined;
    this.pool.release(server, 'clean');
    // The server ended its session behind this answer: the next request takes another connection.
    if (this.held.complete) this.pump();
  }

  /** pgway's question between transactions is asked: the client's next frames wait for its answer (see clientHeld). */
  holdClient(): void {
    this.reading.clientHeld = true;
  }

  /** pgway's question between transactions is answered: the client's frames go on, or it leaves. */
  resumeAfterQuestion(server: ServerConnection): void {
    this.reading.releaseClient(server);
    if (this.leaving.terminating && !this.held.complete) this.leaving.leave();
    else this.betweenTransactions(server);
  }

  /**
   * This client just saw the server's stale-plan error itself; the others that prepared the
   * statement meet a fresh copy, compared with what they prepared (RequestWriter). A request sent
   * before the statement's last invalidation failed for the DDL that caused it: one DDL, one
   * invalidation, or every copy would be made again for nothing.
   */
  private onStalePlan(server: ServerConnection): void {
    server.stalePlanSeen = false;
    const name = server.staleStatement;
    if (name === undefined) {
      // A SQL-level EXECUTE: this connection's statements are made afresh at its next lease.
      server.statements.deallocateAll = true;
      return;
    }
    const since = this.pool.staleSince(name);
    if (since === undefined || since <= this.writer.sentEpoch) this.pool.invalidateStatement(name);
    this.statements.renew(name, this.pool.planEpoch);
  }

  onServerLost(err: Error): void {
    const server = this.server;
    this.server = undefined;
    if (server) this.pool.discard(server);
    if (server?.sentFatal || this.leaving.terminateSent) {
      // The server's own FATAL (pg_terminate_backend, shutdown, the client's Terminate inside a
      // COPY) already reached the client, or the client asked for the end (its COPY had failed).
      this.host.endQuietly();
      return;
    }
    this.host.fail(err instanceof GatewayError ? err : new ServerConnectionLostError({ cause: err }));
  }

  // --- end -----------------------------------------------------------------------------------

  /** The client is gone: its server connection goes back to the pool, cleaned as its state needs. */
  close(): void {
    clearTimeout(this.idleTxTimer);
    this.idleInTxSince = 0;
    if (this.waiting) this.pool.cancelWait(this);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    // A pinned client leaves state behind (LISTEN, temp tables, advisory locks...): DISCARD ALL,
    // even where server_reset_query is empty (as PgBouncer advises for transaction pooling).
    const how = this.mode === 'session' ? 'reset' : this.session.pinned ? 'discard' : 'rollback';
    // A SET in flight may have committed unseen: the next client lays its settings on afresh.
    if (how === 'rollback' && (server.busy || this.session.hasStaged)) server.appliedSettings = UNKNOWN_SETTINGS;
    // So may a PREPARE or DEALLOCATE: what the connection holds of SQL-level statements is unknown.
    if (this.session.sqlPrepared.unsettled) server.statements.deallocateAll = true;
    this.pool.release(server, how);
  }
}
