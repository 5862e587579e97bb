/**
 * One client socket, as an explicit state machine:
 *   startup -> auth -> connecting -> ready        (pooled clients)
 *                   -> admin                      (the admin console)
 *                   -> replication                (a raw pipe to the primary, unpooled)
 * and from anywhere -> closed. Startup packets and the password exchange are ClientLogin's; the
 * session keeps the socket and takes over once the password is right. A pooled client's requests
 * are its RequestFlow's, from the moment its pool is chosen.
 */
import type tls from 'node:tls';
import type { DatabaseConfig, PoolMode, UserConfig } from '../config/schema.js';
import {
  GatewayError,
  InvalidAuthorizationError,
  InvalidPasswordError,
  MessageTooLargeError,
  ProtocolViolationError,
  ServerConnectionLostError,
  ShuttingDownError,
  StartupTimeoutError,
  UnknownDatabaseError,
} from '../errors.js';
import { CANCEL_TIMEOUT_MS } from '../pool/server-cancel.js';
import { ServerConnection } from '../pool/server-connection.js';
import { errorChannel, type ErrorEvent } from '../events.js';
import { Frontend } from '../wire/codes.js';
import { linkFor, type ClientLink, type LinkListener } from '../wire/client-link.js';
import type { AcceptedConnection, DirectReader, ReadBufferSize } from '../wire/direct-reads.js';
import { codeSet, FrameScanner, type FrameHandler } from '../wire/frame-scanner.js';
import * as msg from '../wire/messages.js';
import { randomUint32 } from '../wire/random-pool.js';
import { AdminClient, ADMIN_PARAMS } from './admin-client.js';
import type { AuthStep } from './client-auth.js';
import { ClientLogin, type LoginHost } from './client-login.js';
import type { FlowHost } from './flow-host.js';
import { ReplicationPipe, wantsReplication } from './replication-pipe.js';
import { RequestFlow } from './request-flow.js';
import type { SessionContext } from './session-context.js';
import { SessionState } from './session-state.js';
import { startupSettings } from './startup-params.js';

export type ClientState = 'startup' | 'auth' | 'connecting' | 'ready' | 'replication' | 'admin' | 'closed';

/**
 * Client read buffers: 1 KB holds a login and most requests, so an idle client costs little;
 * bigger senders get up to 64 KB (see directReads).
 */
/** The frontend messages of a logged-in session, as PostgreSQL accepts them (SocketBackend). */
const SESSION_CODES = codeSet([
  Frontend.Query, Frontend.FunctionCall, Frontend.Terminate, Frontend.Bind, Frontend.Close, Frontend.Describe, Frontend.Execute,
  Frontend.Flush, Frontend.Parse, Frontend.Sync, Frontend.CopyData, Frontend.CopyDone, Frontend.CopyFail,
]);

/** PostgreSQL's cap on a message during authentication (PG_MAX_AUTH_TOKEN_LENGTH). */
const MAX_AUTH_MESSAGE_BYTES = 65_535;

const CLIENT_READ_BUFFER: ReadBufferSize = { minBytes: 1024, maxBytes: 64 * 1024 };

let nextClientId = 1;
/** Process ids pgway issues in transaction mode (session mode shows the server's real one). */
let nextVirtualPid = 1 << 22;

export class ClientSession implements FrameHandler, LoginHost, FlowHost, LinkListener, DirectReader {
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

  /** The client's connection (see ClientLink); replaced by its TLS form at STARTTLS. */
  private link: ClientLink;
  /** Startup packets and authentication; gone once the password was checked. */
  private login: ClientLogin | undefined;
  private scanner: FrameScanner | undefined;
  private userConfig: UserConfig | undefined;
  /** Frames of a login reply being assembled, sent as one write (see onAuthStep). */
  private loginReply: Buffer[] | undefined;
  /** Pooled clients: their requests, from the moment the pool is chosen. */
  private flow: RequestFlow | undefined;
  /** Replication clients: the pipe to the primary, once open, and the connection it came from. */
  private replication: ReplicationPipe | undefined;
  private replicationServer: ServerConnection | undefined;
  /** What the client sent before the replication connection opened (see holdForReplication). */
  private replicationHeld: { chunks: Buffer[]; bytes: number } | undefined;
  /** Admin console clients. */
  private admin: AdminClient | undefined;
  /** Until the client is ready; dropped then, so that an idle client keeps no timer (bench:idle). */
  private startupTimer: NodeJS.Timeout | undefined;
  /** The client came in through the Unix-domain socket (LoginHost). */
  readonly unixSocket: boolean;

  constructor(
    accepted: AcceptedConnection,
    private readonly ctx: SessionContext,
  ) {
    this.unixSocket = accepted.unixSocket;
    this.link = linkFor(accepted, this, CLIENT_READ_BUFFER, this, ctx.tlsContext() !== undefined);
    this.login = new ClientLogin(ctx, this);
    const { startupTimeoutMs } = ctx.config().limits;
    this.startupTimer = setTimeout(() => {
      if (this.state !== 'ready' && this.state !== 'replication') {
        this.fail(new StartupTimeoutError('canceling authentication due to timeout'));
      }
    }, startupTimeoutMs);
    this.startupTimer.unref();
  }

  private stopStartupTimer(): void {
    clearTimeout(this.startupTimer);
    this.startupTimer = undefined;
  }

  // --- DirectReader: the client's bytes, read into its ReadBuffer (see linkFor) ------------------

  onChunk(chunk: Buffer): void {
    this.onData(chunk);
  }

  /** Whether the bytes of the last chunk are still referred to (see DirectReader.lent). */
  lent(): boolean {
    return this.flow?.holdsClientBytes === true || this.replication?.holdsClientBytes === true;
  }

  // --- what SHOW CLIENTS and the gateway read ---------------------------------------------------

  get remoteHost(): string {
    return this.link.remoteAddress ?? 'unix';
  }

  get remotePort(): number {
    return this.link.remotePort ?? 0;
  }

  get tls(): boolean {
    return this.link.encrypted;
  }

  /** How the client is pooled; undefined before its pool is chosen, and for the admin console and replication. */
  get mode(): PoolMode | undefined {
    return this.flow?.mode;
  }

  get attachedServer(): ServerConnection | undefined {
    return this.flow?.attachedServer ?? this.replicationServer;
  }

  get isWaiting(): boolean {
    return this.flow?.isWaiting === true;
  }

  /** When the client began waiting for a server. */
  get waitingSince(): number {
    return this.flow?.waitingSince ?? 0;
  }

  /** When the client last sent a request, as a wall-clock time (0: never). */
  get requestTime(): number {
    return this.flow?.requestTime ?? 0;
  }

  get preparedCount(): number {
    return this.flow?.preparedCount ?? 0;
  }

  get poolName(): string | undefined {
    return this.flow?.poolName;
  }

  // --- failing and ending ----------------------------------------------------------------------

  /**
   * Sends a FATAL ErrorResponse and closes the client: `err` as it is when it is a GatewayError or
   * an encoded ErrorResponse, anything else as an unexpected failure (logged).
   */
  fail(err: unknown): void {
    if (this.state === 'closed') return;
    if (!(err instanceof GatewayError) && !Buffer.isBuffer(err)) {
      this.ctx.log.error({ client: this.id, err }, 'unexpected error in client session');
      err = new ServerConnectionLostError({ cause: err });
    }
    this.flushLoginReply();
    let frame: Buffer;
    if (err instanceof GatewayError) {
      frame = err.toFrame();
      this.ctx.log.info({ client: this.id, code: err.code, reason: err.message }, 'client refused');
      if (errorChannel.hasSubscribers) errorChannel.publish({ source: 'gateway', sqlstate: err.sqlstate } satisfies ErrorEvent);
    } else {
      frame = err as Buffer;
    }
    this.link.end(frame);
    this.onClose();
  }

  /** Shutdown or KILL: tells the client why (`err`) and closes it, whatever it is doing. */
  terminate(err: GatewayError = new ShuttingDownError()): void {
    this.fail(err);
  }

  /** Closes the client without an error: it said Terminate, or already heard why. */
  endQuietly(): void {
    this.link.close();
    this.onClose();
  }

  /**
   * A CancelRequest carrying this client's key arrived: cancel what its server (or the console)
   * runs now, if anything. Resolves once the cancel is spent (see RequestFlow.cancelRunning).
   */
  cancelRunning(): Promise<void> | undefined {
    this.admin?.cancelRunning();
    return this.flow?.cancelRunning();
  }

  /** RELOAD applied new pool settings: a client idle in its transaction follows the new timeout. */
  settingsReloaded(): void {
    this.flow?.rewatchIdleTransaction();
  }

  // --- the socket (LoginHost, FlowHost) -------------------------------------------------------

  send(bytes: Buffer): boolean {
    return this.link.write(bytes);
  }

  forward(chunk: Buffer): boolean {
    return this.link.write(chunk);
  }

  get pendingOut(): number {
    return this.link.pending;
  }

  cork(): void {
    this.link.cork();
  }

  uncork(): void {
    this.link.uncork();
  }

  pauseReading(): void {
    this.link.pause();
  }

  resumeReading(): void {
    this.link.resume();
  }

  /** The client took the bytes queued towards it: its server's (or primary's) may flow again. */
  onSocketDrained(): void {
    this.flow?.onClientDrained();
    this.admin?.onClientDrained();
    this.replication?.onClientDrained();
  }

  onLinkClosed(): void {
    this.onClose();
  }

  onLinkError(err: Error): void {
    this.ctx.log.debug({ client: this.id, err: err.message }, 'client socket error');
  }

  get canStartTls(): boolean {
    return this.link.canStartTls;
  }

  startTls(secureContext: tls.SecureContext, requestCert: boolean): void {
    this.link = this.link.startTls(secureContext, requestCert);
  }

  get clientCertificateError(): string | undefined {
    return this.link.clientCertificateError;
  }

  /**
   * PostgreSQL closes a cancel's connection once it has signalled the backend, and clients (libpq's
   * PQcancel) wait for that close to know the cancel is spent: so does pgway, once its own cancel
   * to the server is (`sent`), or after the time that may take. Reads stop meanwhile, so the
   * client's end of its half of the connection does not close it early.
   */
  endAfterCancel(sent: Promise<void> | undefined): void {
    this.stopStartupTimer();
    if (sent === undefined) {
      this.closeAfterCancel();
      return;
    }
    this.link.pause();
    const bound = setTimeout(() => this.closeAfterCancel(), CANCEL_TIMEOUT_MS);
    void sent.finally(() => {
      clearTimeout(bound);
      this.closeAfterCancel();
    });
  }

  private closeAfterCancel(): void {
    if (this.state === 'closed') return;
    this.link.destroy();
    this.onClose();
  }

  identify(params: Map<string, string>): void {
    this.params = params;
    this.user = params.get('user') ?? '';
    this.database = params.get('database') || this.user;
  }

  admit(always?: boolean): boolean {
    return this.ctx.admit(this, always);
  }

  private onData(chunk: Buffer): void {
    try {
      if (this.replication) {
        this.replication.forward(chunk);
      } else if (this.scanner) {
        this.flow?.countClientBytes(chunk.length);
        this.pushFrames(this.scanner, chunk);
        this.pump();
      } else {
        this.onStartupBytes(chunk);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  // --- login -----------------------------------------------------------------------------------

  /** Bytes before the StartupMessage: the login reads them; then frames begin. */
  private onStartupBytes(chunk: Buffer): void {
    // A refused client's socket may still deliver bytes while it closes: they log nobody in.
    if (this.state !== 'startup' || !this.login) return;
    const rest = this.login.onBytes(chunk);
    if (rest === undefined) return;
    this.state = 'auth';
    // A client not yet authenticated cannot make pgway allocate more than an auth message needs.
    this.scanner = new FrameScanner(this, MAX_AUTH_MESSAGE_BYTES, undefined, true);
    this.onAuthStep(this.login.beginAuth());
    if (rest.length === 0) return;
    this.pushFrames(this.scanner, rest);
    this.pump();
  }

  /**
   * Reads frames from `bytes`. A frame PostgreSQL would end the session at (a type it does not
   * accept, too long) ends a logged-in client once what it sent before has run and been answered
   * (RequestFlow.endAfterAnswers); nothing after it is read.
   */
  private pushFrames(scanner: FrameScanner, bytes: Buffer): void {
    try {
      scanner.push(bytes);
    } catch (err) {
      if (!scanner.refusedFrame || !(err instanceof GatewayError) || (!this.flow && !this.admin)) throw err;
      this.scanner = undefined;
      if (this.flow) this.flow.endAfterAnswers(err);
      else this.admin!.endAfterAnswers(() => this.fail(err));
    }
  }

  /** Sends on what the client sent once it is logged in (see RequestFlow.pump). */
  private pump(): void {
    if (this.state === 'ready') this.flow?.pump();
  }

  private onAuthStep(step: AuthStep): void {
    if (step.kind === 'fail') {
      throw step.error instanceof GatewayError ? step.error : new ProtocolViolationError(step.error.message);
    }
    if (step.kind === 'send') {
      this.link.write(step.frame);
      return;
    }
    // The last auth frames and, when no server is needed, the whole login tail go out in one write.
    this.loginReply = [...step.frames];
    try {
      // The user's entry as it stands now: a RELOAD during the password exchange may have removed
      // or changed it (its admin right, its server_user), and the login completes under the new one.
      this.userConfig = this.ctx.user(this.user);
      this.login = undefined;
      if (!this.userConfig) throw new InvalidPasswordError(this.user);
      this.scanner!.authenticated(this.ctx.config().limits.maxMessageBytes, SESSION_CODES);
      this.onAuthenticated();
    } finally {
      this.flushLoginReply();
    }
  }

  private flushLoginReply(): void {
    const frames = this.loginReply;
    this.loginReply = undefined;
    if (frames && frames.length > 0) this.link.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  private onAuthenticated(): void {
    const user = this.userConfig!;
    if (this.ctx.isAdminDatabase(this.database)) {
      if (!user.admin) throw new InvalidAuthorizationError(`user "${this.user}" may not use the admin console`);
      this.state = 'admin';
      this.admin = new AdminClient((sql, signal) => this.ctx.adminQuery(sql, signal), {
        isOpen: () => this.state === 'admin',
        send: (bytes) => this.send(bytes),
        pauseReading: () => this.pauseReading(),
        resumeReading: () => this.resumeReading(),
        failWith: (err) => this.fail(err),
      });
      this.finishLogin(ADMIN_PARAMS);
      this.state = 'admin';
      return;
    }
    const db = this.ctx.database(this.database);
    if (!db) throw new UnknownDatabaseError(this.database);
    if (wantsReplication(this.params.get('replication'))) {
      this.startReplication(db, user);
      return;
    }
    // From here on the pool's own wait timeout applies, not the login timeout.
    this.stopStartupTimer();
    this.state = 'connecting';
    const pool = this.ctx.primaryPool(db, user);
    const mode = user.poolMode ?? db.pool.mode;
    const session = new SessionState(startupSettings(this.params), mode === 'session');
    this.flow = new RequestFlow(this, this.ctx, pool, mode, session, CLIENT_READ_BUFFER.minBytes);
    // A pool of the same server user knows what the server reports; a new pool borrows that.
    this.flow.begin(pool.serverParams ?? this.ctx.serverParamsFor(pool));
  }

  /**
   * Sends the login reply: `params` are the ParameterStatus values, or those messages already
   * encoded; `pid` the server's process id (session mode), or pgway issues one.
   */
  finishLogin(params: ReadonlyMap<string, string> | Buffer, pid = (nextVirtualPid = (nextVirtualPid + 1) & 0x7fffffff)): void {
    this.pid = pid;
    this.ctx.registerCancelKey(this, this.pid, this.secret);
    const frames = this.loginReply ?? [];
    if (params instanceof Map) for (const [name, value] of params) frames.push(msg.parameterStatus(name, value));
    else frames.push(params as Buffer);
    frames.push(msg.backendKeyData(this.pid, this.secret), msg.READY_IDLE);
    this.loginReply = frames;
    // Sent before anything a request the client already sent may answer.
    this.flushLoginReply();
    this.state = 'ready';
    this.stopStartupTimer();
    try {
      this.pump();
    } catch (err) {
      this.fail(err);
    }
  }

  // --- client frames -------------------------------------------------------------------------

  onFrame(code: number, buf: Buffer | undefined, start: number, end: number): void {
    if (!buf) return;
    // PostgreSQL reads nothing after a Terminate: a bad frame behind it gets no FATAL.
    if (code === Frontend.Terminate) this.scanner?.end();
    switch (this.state) {
      case 'auth':
        if (!this.login) throw new ProtocolViolationError('unexpected message during authentication');
        this.onAuthStep(this.login.onFrame(code, buf, start, end));
        return;
      case 'admin':
        if (code === Frontend.Terminate) this.admin!.endAfterAnswers(() => this.endQuietly());
        else this.admin!.onFrame(code, buf, start, end);
        return;
      case 'ready':
      case 'connecting':
        this.flow!.onFrame(code, buf, start, end);
        return;
      case 'replication':
        this.holdForReplication(buf.subarray(start, end));
        return;
      default:
        return;
    }
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
        this.replicationServer = conn;
        this.pid = conn.pid;
        this.ctx.registerCancelKey(this, this.pid, this.secret);
        const frames = [...conn.params].map(([name, value]) => msg.parameterStatus(name, value));
        frames.push(msg.backendKeyData(this.pid, this.secret), msg.READY_IDLE);
        this.link.write(Buffer.concat(frames));
        this.stopStartupTimer();
        this.replication = new ReplicationPipe(this.link, conn.takeSocket());
        // What the client sent meanwhile: whole frames, then a frame's first part.
        const held = this.replicationHeld?.chunks ?? [];
        const unread = this.scanner?.takeUnread();
        if (unread) held.push(unread);
        this.replicationHeld = undefined;
        this.scanner = undefined;
        if (held.length > 0) this.replication.forward(Buffer.concat(held));
      })
      .catch((err: unknown) => this.fail(err));
  }

  /**
   * A frame a replication client sent before its connection to the primary is open (a client need
   * not wait for ReadyForQuery to send its first command): copied, as the read buffer is reused,
   * and bounded as a message is.
   */
  private holdForReplication(chunk: Buffer): void {
    const held = (this.replicationHeld ??= { chunks: [], bytes: 0 });
    held.bytes += chunk.length;
    const max = this.ctx.config().limits.maxMessageBytes;
    if (held.bytes > max) throw new MessageTooLargeError(held.bytes, max);
    held.chunks.push(Buffer.from(chunk));
  }

  // --- end -----------------------------------------------------------------------------------

  private onClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.login = undefined;
    this.stopStartupTimer();
    this.flow?.close();
    this.replicationServer?.close();
    this.replicationServer = undefined;
    this.replication?.close();
    this.link.close();
    this.ctx.closed(this);
  }
}
