/**
 * One client socket, as an explicit state machine:
 *   startup -> auth -> connecting -> ready        (pooled clients)
 *                                 -> replication  (a raw pipe to the primary, unpooled)
 * and from anywhere -> closed. Startup packets and the password exchange are ClientLogin's; the
 * session keeps the socket and takes over once the password is right. In `ready`, whole client
 * frames are held as views of the bytes received until a request is complete (Query, Sync,
 * Flush), then written to a server connection (contiguous frames in one write, no copies). The
 * pool mode decides only when a server connection is taken and given back: at login and logout
 * (session), or per transaction.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { DatabaseConfig, PoolMode, UserConfig } from '../config/schema.js';
import {
  FeatureNotSupportedError,
  GatewayError,
  IdleInTransactionTimeoutError,
  InvalidAuthorizationError,
  ProtocolViolationError,
  QueryCanceledError,
  ServerConnectionLostError,
  ShuttingDownError,
  StartupTimeoutError,
  UnknownDatabaseError,
} from '../errors.js';
import { nowMs, perfNow, wallClockAt } from '../clock.js';
import { Slot } from '../pool/expected-responses.js';
import type { Pool, PoolWaiter } from '../pool/pool.js';
import { ServerConnection, type ServerSink } from '../pool/server-connection.js';
import { errorChannel, pinChannel, type ErrorEvent, type PinEvent } from '../events.js';
import type { PinReason } from '../router/session-effects.js';
import { Frontend, TxStatus } from '../wire/codes.js';
import { socketFor, type AcceptedConnection, type ReadBufferSize } from '../wire/direct-reads.js';
import { SocketWriter, type DrainListener } from '../wire/socket-writer.js';
import { FrameScanner, type FrameHandler } from '../wire/frame-scanner.js';
import * as msg from '../wire/messages.js';
import { randomUint32 } from '../wire/random-pool.js';
import { AdminClient, ADMIN_PARAMS } from './admin-client.js';
import type { AuthStep } from './client-auth.js';
import { ClientLogin, type LoginHost } from './client-login.js';
import { HeldFrames } from './held-frames.js';
import { PreparedStatements } from './prepared-statements.js';
import { ReplicationPipe, wantsReplication } from './replication-pipe.js';
import { RequestWriter } from './request-writer.js';
import type { SessionContext } from './session-context.js';
import { SessionState } from './session-state.js';
import { reportedParams, startupSettings } from './startup-params.js';

export type ClientState = 'startup' | 'auth' | 'connecting' | 'ready' | 'replication' | 'admin' | 'closed';

/**
 * Client read buffers: 1 KB holds a login and most requests, so an idle client costs little;
 * bigger senders get up to 64 KB (see directReads).
 */
const CLIENT_READ_BUFFER: ReadBufferSize = { minBytes: 1024, maxBytes: 64 * 1024 };

/** What a server connection's settings are after a client left in the middle of changing them. */
const UNKNOWN_SETTINGS = '\u0000unknown';

const isRequestEnd = (code: number): boolean =>
  code === Frontend.Query || code === Frontend.Sync || code === Frontend.Flush || code === Frontend.FunctionCall;

/** Every client's session state until login gives it its own (nothing changes it before then). */
const BEFORE_LOGIN = new SessionState(new Map());

let nextClientId = 1;
/** Process ids pgway issues in transaction mode (session mode shows the server's real one). */
let nextVirtualPid = 1 << 22;

export class ClientSession implements FrameHandler, ServerSink, PoolWaiter, LoginHost, DrainListener {
  readonly id = nextClientId++;
  state: ClientState = 'startup';
  readonly connectedAt = Date.now();
  user = '';
  database = '';
  /** Startup parameters as the client sent them. */
  params = new Map<string, string>();
  /** The process id and secret this client was given in BackendKeyData. */
  pid = 0;
  readonly secret = randomUint32();
  admitted = false;
  mode: PoolMode = 'session';
  /** The transaction status the client last saw. */
  txStatus: number = TxStatus.Idle;

  private socket: net.Socket;
  /** Writes towards the client (see SocketWriter); replaced with the socket by STARTTLS. */
  private out: SocketWriter;
  private isTls = false;
  /** Startup packets and authentication; gone once the password was checked. */
  private login: ClientLogin | undefined;
  private scanner: FrameScanner | undefined;
  private userConfig: UserConfig | undefined;
  private pool: Pool | undefined;
  private server: ServerConnection | undefined;
  private waiting = false;
  /** A cancel came while pipelined requests waited: it is sent on once they reach a server connection. */
  private cancelOnDispatch = false;
  /** The client sent Terminate after requests not yet answered: it leaves once they are. */
  private terminating = false;
  /** Frames of a login reply being assembled, sent as one write (see onAuthStep). */
  private loginReply: Buffer[] | undefined;
  /** Replication clients: the pipe to the primary, once open. */
  private replication: ReplicationPipe | undefined;
  /** Admin console clients. */
  private admin: AdminClient | undefined;
  private readonly held = new HeldFrames(CLIENT_READ_BUFFER.minBytes);
  private readonly statements = new PreparedStatements();
  private readonly writer = new RequestWriter(this.held, this.statements);
  /** Settings, SQL-level prepared statements and pins that follow the client across connections. */
  private session = BEFORE_LOGIN;
  private readonly startupTimer: NodeJS.Timeout;
  /** perfNow() when the current server connection was taken / the current request sent. */
  private leasedAt = 0;
  private idleTxTimer: NodeJS.Timeout | undefined;
  private requestAt = 0;
  /** When the client began waiting for a server (SHOW CLIENTS). */
  waitingSince = 0;

  constructor(
    accepted: AcceptedConnection,
    private readonly ctx: SessionContext,
  ) {
    this.socket = socketFor(accepted, {
      onChunk: (chunk) => this.onData(chunk),
      // Held frames are views of the chunk, and so is a write still queued towards a server.
      lent: () => this.held.count > 0 || this.server?.writesPending === true || this.replication?.holdsClientBytes === true,
    }, CLIENT_READ_BUFFER);
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 60_000);
    this.out = this.listen(this.socket);
    this.login = new ClientLogin(ctx, this);
    const { startupTimeoutMs } = ctx.config().limits;
    this.startupTimer = setTimeout(() => {
      if (this.state !== 'ready' && this.state !== 'replication') {
        this.fail(new StartupTimeoutError('canceling authentication due to timeout'));
      }
    }, startupTimeoutMs);
    this.startupTimer.unref();
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? 'unix'}:${this.socket.remotePort ?? ''}`;
  }

  /** When the client last sent a request, as a wall-clock time (0: never); SHOW CLIENTS. */
  get requestTime(): number {
    return this.requestAt === 0 ? 0 : wallClockAt(this.requestAt);
  }

  get attachedServer(): ServerConnection | undefined {
    return this.server;
  }

  get remoteHost(): string {
    return this.socket.remoteAddress ?? 'unix';
  }

  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  get isWaiting(): boolean {
    return this.waiting;
  }

  get tls(): boolean {
    return this.isTls;
  }

  get preparedCount(): number {
    return this.statements.size;
  }

  get poolName(): string | undefined {
    return this.pool?.name;
  }

  /** Sends `err` (a FATAL ErrorResponse) and closes the client. */
  fail(err: GatewayError | Buffer): void {
    if (this.state === 'closed') return;
    this.flushLoginReply();
    let frame: Buffer;
    if (err instanceof GatewayError) {
      frame = err.toFrame();
      this.ctx.log.info({ client: this.id, code: err.code, reason: err.message }, 'client refused');
      if (errorChannel.hasSubscribers) errorChannel.publish({ source: 'gateway', sqlstate: err.sqlstate } satisfies ErrorEvent);
    } else {
      frame = err;
    }
    if (this.socket.writable) this.socket.end(frame);
    this.onClose();
  }

  private failWith(err: unknown): void {
    if (err instanceof GatewayError) {
      this.fail(err);
      return;
    }
    this.ctx.log.error({ client: this.id, err }, 'unexpected error in client session');
    this.fail(new ServerConnectionLostError({ cause: err }));
  }

  /** Shutdown or KILL: tells the client why (`err`) and closes it, whatever it is doing. */
  terminate(err: GatewayError = new ShuttingDownError()): void {
    this.fail(err);
  }

  /** A CancelRequest carrying this client's key arrived: cancel what its server runs now, if anything. */
  cancelRunning(): void {
    const server = this.server;
    if (!server) {
      if (this.waiting && !this.cancelWaitingRequest()) this.cancelOnDispatch = true;
      return;
    }
    server
      .cancel(() => this.server === server && server.busy)
      .catch((err: unknown) => this.ctx.log.warn({ err }, 'cancel request failed'));
  }

  /**
   * The request waiting for a server connection never reached PostgreSQL: it is answered as a
   * cancelled statement would be (57014, then ReadyForQuery). Only a single held request ended by
   * a Query or Sync is answered here (returns true). Several pipelined requests run as they would
   * on a direct connection, where a cancel stops the statement running, not those queued behind
   * it: the cancel is sent on as soon as they reach a server connection.
   */
  private cancelWaitingRequest(): boolean {
    const held = this.held;
    const last = held.count - 1;
    const end = held.codes[last];
    if (end !== Frontend.Query && end !== Frontend.Sync) return false;
    for (let i = 0; i < last; i++) if (isRequestEnd(held.codes[i]!)) return false;
    this.pool!.cancelWait(this);
    this.waiting = false;
    held.clear();
    this.socket.write(Buffer.concat([new QueryCanceledError().toFrame(), msg.READY_IDLE]));
    return true;
  }

  // --- LoginHost (see ClientLogin) ----------------------------------------------------------

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  startTls(secureContext: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
    this.socket = secure;
    this.isTls = true;
    this.out = this.listen(secure);
  }

  endAfterCancel(): void {
    this.socket.destroy();
    this.onClose();
  }

  identify(params: Map<string, string>): void {
    this.params = params;
    this.user = params.get('user') ?? '';
    this.database = params.get('database') || this.user;
  }

  admit(): boolean {
    return this.ctx.admit(this);
  }

  private listen(socket: net.Socket): SocketWriter {
    // A plain socket reads through directReads; a TLS socket wrapped around it emits its plaintext.
    if (this.isTls) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.ctx.log.debug({ client: this.id, err: err.message }, 'client socket error'));
    socket.on('close', () => this.onClose());
    return new SocketWriter(socket, this);
  }

  /** The client took the bytes queued towards it: its server's may flow again. */
  onSocketDrained(): void {
    this.server?.resume();
  }

  private onData(chunk: Buffer): void {
    try {
      if (this.replication) {
        this.replication.forward(chunk);
      } else if (this.scanner) {
        if (this.pool) this.pool.counters.bytesFromClients += chunk.length;
        this.scanner.push(chunk);
        if (this.state === 'ready') this.pump();
      } else {
        this.onStartupBytes(chunk);
      }
    } catch (err) {
      this.failWith(err);
    }
  }

  // --- startup packets -----------------------------------------------------------------------

  /** Bytes before the StartupMessage: the login reads them; then frames begin. */
  private onStartupBytes(chunk: Buffer): void {
    // A refused client's socket may still deliver bytes while it closes: they log nobody in.
    if (this.state !== 'startup' || !this.login) return;
    const rest = this.login.onBytes(chunk);
    if (rest === undefined) return;
    this.state = 'auth';
    this.scanner = new FrameScanner(this, this.ctx.config().limits.maxMessageBytes);
    this.onAuthStep(this.login.beginAuth());
    if (rest.length === 0) return;
    this.scanner.push(rest);
    this.pump();
  }

  // --- authentication ------------------------------------------------------------------------

  private onAuthStep(step: AuthStep): void {
    if (step.kind === 'fail') {
      throw step.error instanceof GatewayError ? step.error : new ProtocolViolationError(step.error.message);
    }
    if (step.kind === 'send') {
      this.socket.write(step.frame);
      return;
    }
    // The last auth frames and, when no server is needed, the whole login tail go out in one write.
    this.loginReply = [...step.frames];
    try {
      this.userConfig = this.login!.userConfig;
      this.login = undefined;
      this.onAuthenticated();
    } finally {
      this.flushLoginReply();
    }
  }

  private flushLoginReply(): void {
    const frames = this.loginReply;
    this.loginReply = undefined;
    if (frames && frames.length > 0) this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  private onAuthenticated(): void {
    if (this.ctx.isAdminDatabase(this.database)) {
      if (!this.userConfig!.admin) throw new InvalidAuthorizationError(`user "${this.user}" may not use the admin console`);
      this.state = 'admin';
      this.admin = new AdminClient((sql) => this.ctx.adminQuery(sql), {
        isOpen: () => this.state === 'admin',
        send: (bytes) => this.send(bytes),
        failWith: (err) => this.failWith(err),
      });
      this.finishLogin(ADMIN_PARAMS, (nextVirtualPid = (nextVirtualPid + 1) & 0x7fffffff));
      this.state = 'admin';
      return;
    }
    const db = this.ctx.database(this.database);
    if (!db) throw new UnknownDatabaseError(this.database);
    const user = this.userConfig!;
    if (wantsReplication(this.params.get('replication'))) {
      this.startReplication(db, user);
      return;
    }
    this.mode = user.poolMode ?? db.pool.mode;
    // From here on the pool's own wait timeout applies, not the login timeout.
    clearTimeout(this.startupTimer);
    const settings = startupSettings(this.params);
    this.session = new SessionState(settings);
    this.state = 'connecting';
    this.pool = this.ctx.primaryPool(db, user);
    // Any pool of this database knows what the server reports; a new user's pool borrows that.
    const known = this.pool.serverParams ?? this.ctx.serverParamsFor(db.name);
    if (this.mode !== 'session' && known) {
      const block = this.pool.loginParameters(this.session.settingsSql, () => reportedParams(known, settings));
      this.finishLogin(block, (nextVirtualPid = (nextVirtualPid + 1) & 0x7fffffff));
      return;
    }
    // Session mode holds a server for the whole session; a pooled client's first login in a
    // pool needs one server connection to learn the server's parameters.
    this.acquire();
  }

  /** `params`: the ParameterStatus values, or those messages already encoded. */
  private finishLogin(params: ReadonlyMap<string, string> | Buffer, pid: number): void {
    this.pid = pid;
    this.ctx.registerCancelKey(this, this.pid, this.secret);
    const frames = this.loginReply ?? [];
    if (params instanceof Map) for (const [name, value] of params) frames.push(msg.parameterStatus(name, value));
    else frames.push(params as Buffer);
    frames.push(msg.backendKeyData(this.pid, this.secret), msg.READY_IDLE);
    this.loginReply = frames;
    // Sent before anything a request the client already sent may answer (see pump).
    this.flushLoginReply();
    this.state = 'ready';
    clearTimeout(this.startupTimer);
    try {
      this.pump();
    } catch (err) {
      this.failWith(err);
    }
  }

  // --- pool lease --------------------------------------------------------------------------------

  private acquire(): void {
    // After a RELOAD that moved the database, new transactions go to the new pool.
    if (this.pool!.retired) this.pool = this.ctx.poolFor(this.pool!);
    this.waiting = true;
    this.waitingSince = nowMs();
    const conn = this.pool!.acquire(this);
    if (conn) this.onLease(conn);
  }

  // Pool and server callbacks run outside onData's try/catch: a malformed client frame met while
  // dispatching from here must end this client, never the gateway.
  onLease(conn: ServerConnection): void {
    try {
      this.leased(conn);
    } catch (err) {
      this.failWith(err);
    }
  }

  onRequestEnd(status: number): void {
    if (this.server) this.session.requestEnded(this.server, status);
  }

  onServerReady(status: number): void {
    try {
      this.serverReady(status);
    } catch (err) {
      this.failWith(err);
    }
  }

  private leased(conn: ServerConnection): void {
    this.waiting = false;
    if (this.state === 'closed') {
      this.pool!.release(conn, 'clean');
      return;
    }
    if (this.state === 'connecting' && this.mode !== 'session') {
      this.checkLogin(conn);
      return;
    }
    this.server = conn;
    conn.attach(this);
    conn.clientId = this.id;
    this.leasedAt = perfNow();
    this.session.markRequestStart(conn);
    if (conn.deallocateAll) {
      // Plans went stale after DDL somewhere in this pool: start this connection afresh.
      conn.write(msg.query('DEALLOCATE ALL'));
      conn.expectSwallowed(Slot.Query);
      conn.prepared.clear();
      conn.sqlPrepared.clear();
      conn.deallocateAll = false;
    }
    if (conn.appliedSettings !== this.session.settingsSql) {
      this.session.resync(conn);
      const sql = this.session.settingsSql;
      if (this.state === 'ready' && !this.pool!.settingsChecked(sql)) {
        this.dispatchOnceAccepted(conn, sql);
        return;
      }
    }
    if (this.state === 'connecting') {
      this.finishLoginOnceIdle(conn);
      return;
    }
    this.dispatch();
  }

  // The closures of these two live apart from leased(): there, V8 would make their context on
  // every lease (once per transaction), not just when they are needed.

  /**
   * Settings the server has not accepted yet: the client's request waits for the verdict, so it
   * never runs without them; a refusal ends the client as it would have at login.
   */
  private dispatchOnceAccepted(conn: ServerConnection, sql: string): void {
    conn.whenIdle(
      () => {
        this.pool!.markSettingsChecked(sql);
        if (this.server === conn) this.onServerReadyToSend();
      },
      (err) => this.failOnServerError(err),
    );
  }

  /**
   * Session mode: the client sees its server's real process id, so pg_backend_pid() and
   * pg_terminate_backend() mean what they mean on a direct connection. A startup setting the
   * server refuses (a bad value, an unknown parameter) ends the login with the server's own
   * error, as on a direct connection.
   */
  private finishLoginOnceIdle(conn: ServerConnection): void {
    conn.whenIdle(
      () => this.finishLogin(conn.params, conn.pid),
      (err) => this.failOnServerError(err),
    );
  }

  /** A pooled client's first login in a pool took a server connection to learn the server's parameters. */
  private checkLogin(conn: ServerConnection): void {
    const params = reportedParams(conn.params, startupSettings(this.params));
    this.pool!.release(conn, 'clean');
    this.finishLogin(params, (nextVirtualPid = (nextVirtualPid + 1) & 0x7fffffff));
  }

  private onServerReadyToSend(): void {
    try {
      this.dispatch();
    } catch (err) {
      this.failWith(err);
    }
  }

  /** Ends the client with the server's refusal of pgway's statement on its behalf, as a FATAL. */
  private failOnServerError(err: Error & { serverError?: { fields: Map<string, string> } }): void {
    const fields = err.serverError?.fields;
    this.server?.takeSettingsError();
    this.fail(msg.errorResponse({
      severity: 'FATAL',
      sqlstate: fields?.get('C') ?? '08P01',
      message: fields?.get('M') ?? err.message,
      detail: fields?.get('D'),
      hint: fields?.get('H'),
    }));
  }

  onLeaseError(err: Error): void {
    this.waiting = false;
    if (this.state === 'closed') return;
    this.failWith(err);
  }

  // --- client frames -------------------------------------------------------------------------

  onFrame(code: number, buf: Buffer | undefined, start: number, end: number): void {
    if (!buf) return;
    switch (this.state) {
      case 'auth':
        if (!this.login) throw new ProtocolViolationError('unexpected message during authentication');
        this.onAuthStep(this.login.onFrame(code, buf, start, end));
        return;
      case 'admin':
        if (code === Frontend.Terminate) this.endQuietly();
        else this.admin!.onFrame(code, buf, start, end);
        return;
      case 'ready':
      case 'connecting':
        if (this.terminating) return;
        if (code === Frontend.Terminate) {
          // As PostgreSQL does: what the client sent before Terminate still runs.
          if (this.held.complete || this.waiting || this.server?.busy === true) this.terminating = true;
          else this.endQuietly();
          return;
        }
        this.held.push(code, buf, start, end);
        if (this.held.bytes > this.ctx.config().limits.maxMessageBytes * 4) {
          throw new ProtocolViolationError('too much data sent without completing a request');
        }
        return;
      default:
        return;
    }
  }

  /** Sends held frames on, taking a server connection when a request is complete. */
  private pump(): void {
    if (this.held.count === 0 || this.state !== 'ready') return;
    if (this.server) {
      this.dispatch();
      return;
    }
    if (this.waiting || !this.held.complete) return;
    if (this.mode !== 'session' && this.txStatus === TxStatus.Idle && this.answerPrepareLocally()) return;
    this.acquire();
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
    const serverName = this.statements.serverNameOf(buf, start, end, this.session.searchPath);
    if (!serverName || !this.pool!.knowsStatement(serverName)) return false;
    const [name, stmt] = this.statements.onParse(buf, start, end, this.pool!.planEpoch, this.session.searchPath, [])!;
    this.statements.define(name, stmt);
    this.socket.cork();
    this.socket.write(msg.PARSE_COMPLETE);
    this.socket.write(msg.READY_IDLE);
    this.socket.uncork();
    held.clear();
    return true;
  }

  /** idle_transaction_timeout_ms: a client that sits inside a transaction holds a server connection. */
  private watchIdleTransaction(): void {
    const timeoutMs = this.pool!.settings.idleTransactionTimeoutMs;
    if (timeoutMs > 0) this.startIdleTransactionTimer(timeoutMs);
  }

  // Apart from watchIdleTransaction(), which runs after every statement inside a transaction:
  // the timer's closure would make V8 create a context on each call, timeout or not.
  private startIdleTransactionTimer(timeoutMs: number): void {
    clearTimeout(this.idleTxTimer);
    this.idleTxTimer = setTimeout(() => {
      if (this.server && !this.server.busy && this.txStatus !== TxStatus.Idle) this.fail(new IdleInTransactionTimeoutError(timeoutMs));
    }, timeoutMs);
    this.idleTxTimer.unref();
  }

  /** Writes the held frames to the attached server (see RequestWriter). */
  private dispatch(): void {
    clearTimeout(this.idleTxTimer);
    const server = this.server!;
    if (!server.busy) {
      this.requestAt = perfNow();
    }
    const pins = this.writer.write(server, this.session, this.mode !== 'session', this.pool!);
    if (pins.length > 0) this.reportPins(pins);
    if (!server.writable) this.pauseUntilDrained(server);
    server.flushSynthesized();
    if (this.cancelOnDispatch) {
      this.cancelOnDispatch = false;
      this.cancelRunning();
    }
  }

  private reportPins(pins: readonly PinReason[]): void {
    for (const reason of pins) {
      this.ctx.log.debug({ client: this.id, reason }, 'client pinned to its server connection');
      if (pinChannel.hasSubscribers) pinChannel.publish({ pool: this.pool!.name, reason } satisfies PinEvent);
    }
  }

  /** The server's socket is full: the client's socket waits, and with it the client's bytes. */
  private pauseUntilDrained(server: ServerConnection): void {
    this.socket.pause();
    server.whenDrained(() => this.socket.resume());
  }

  // --- server events -------------------------------------------------------------------------

  onServerData(chunk: Buffer): boolean {
    this.pool!.counters.bytesToClients += chunk.length;
    return this.out.write(chunk);
  }

  holdsBytes(): boolean {
    return this.out.pending > 0;
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  /** Everything sent has been answered. Transaction and statement modes give the connection back. */
  private serverReady(status: number): void {
    this.txStatus = status;
    const server = this.server;
    if (!server || this.state !== 'ready') return;
    const refused = server.takeSettingsError();
    if (refused) {
      // The client's startup settings cannot be applied: as PostgreSQL would have at login.
      this.fail(msg.errorResponse({ severity: 'FATAL', sqlstate: refused.sqlstate, message: refused.message, detail: refused.fields.get('D') }));
      return;
    }
    const now = perfNow();
    const counters = this.pool!.counters;
    counters.requests++;
    counters.requestTimeUs += (now - this.requestAt) * 1000;
    counters.requestLatency.record(now - this.requestAt);
    if (status === TxStatus.Idle) {
      counters.transactions++;
      counters.transactionTimeUs += (now - this.leasedAt) * 1000;
      counters.transactionLatency.record(now - this.leasedAt);
      this.leasedAt = now;
    }
    if (this.session.needsSettle) this.session.settle(server, status);
    if (server.stalePlanSeen) {
      // This client just saw the stale-plan error itself; the others see it once each (RequestWriter).
      // A request sent before the pool's last invalidation failed for the DDL that caused it: one
      // DDL, one invalidation, or clients already renewed would hear of it a second time.
      server.stalePlanSeen = false;
      if (this.writer.sentEpoch === this.pool!.planEpoch) this.pool!.invalidatePlans();
      this.statements.renew(this.pool!.planEpoch);
    }
    this.session.markRequestStart(server);
    if (server.busy) return;
    if (this.terminating && !this.held.complete) {
      this.endQuietly();
      return;
    }
    if (status !== TxStatus.Idle) this.watchIdleTransaction();
    if (this.mode === 'session') return;
    if (status !== TxStatus.Idle) {
      if (this.mode === 'statement') {
        this.fail(new FeatureNotSupportedError('transaction blocks are not allowed in statement pooling mode'));
      }
      return;
    }
    if (this.held.complete || this.session.pinned) {
      if (this.held.count > 0) this.dispatch();
      return;
    }
    this.server = undefined;
    this.pool!.release(server, 'clean');
  }

  onServerLost(err: Error): void {
    const server = this.server;
    this.server = undefined;
    if (server) this.pool?.discard(server);
    if (server?.sentFatal) {
      // The server's own FATAL (pg_terminate_backend, shutdown) already reached the client.
      this.endQuietly();
      return;
    }
    this.failWith(err instanceof GatewayError ? err : new ServerConnectionLostError({ cause: err }));
  }

  // --- replication ---------------------------------------------------------------------------

  private startReplication(db: DatabaseConfig, user: UserConfig): void {
    this.state = 'replication';
    const params = new Map(this.params);
    params.delete('user');
    params.delete('database');
    const conn = new ServerConnection(db.primary, this.ctx.serverCredentials(db, user), params);
    conn
      .connect(db.pool.serverConnectTimeoutMs)
      .then(() => {
        if (this.state !== 'replication') {
          conn.close();
          return;
        }
        this.server = conn;
        this.pid = conn.pid;
        this.ctx.registerCancelKey(this, this.pid, this.secret);
        for (const [name, value] of conn.params) this.socket.write(msg.parameterStatus(name, value));
        this.socket.write(msg.backendKeyData(this.pid, this.secret));
        this.socket.write(msg.READY_IDLE);
        clearTimeout(this.startupTimer);
        this.replication = new ReplicationPipe(this.socket, conn.takeSocket());
      })
      .catch((err: unknown) => this.failWith(err));
  }

  // --- end -----------------------------------------------------------------------------------

  /** Closes the client without an error: it said Terminate, or already heard why. */
  private endQuietly(): void {
    this.socket.end();
    this.onClose();
  }

  private onClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.login = undefined;
    clearTimeout(this.startupTimer);
    clearTimeout(this.idleTxTimer);
    if (this.waiting) this.pool?.cancelWait(this);
    const server = this.server;
    this.server = undefined;
    // A pinned client leaves state behind (LISTEN, temp tables, advisory locks...): DISCARD it.
    const how = this.mode === 'session' || this.session.pinned ? 'reset' : 'rollback';
    // A SET in flight may have committed unseen: the next client lays its settings on afresh.
    if (server && how === 'rollback' && (server.busy || this.session.hasStaged)) server.appliedSettings = UNKNOWN_SETTINGS;
    if (server && this.pool) this.pool.release(server, how);
    else if (server) server.close();
    if (!this.socket.destroyed) this.socket.destroySoon();
    this.ctx.closed(this);
  }
}
