/**
 * One client socket, as an explicit state machine:
 *   startup -> auth -> connecting -> ready        (pooled clients)
 *                                 -> replication  (a raw pipe to the primary, unpooled)
 * and from anywhere -> closed. In `ready`, whole client frames are forwarded to the attached
 * server connection as views of the bytes received (contiguous frames in one write, no copies);
 * the server's bytes come back unchanged. The pool policy (session mode now) decides only when a
 * server connection is taken and given back.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { DatabaseConfig, UserConfig } from '../config/schema.js';
import {
  GatewayError,
  InvalidAuthorizationError,
  ProtocolViolationError,
  ServerConnectionLostError,
  ShuttingDownError,
  StartupTimeoutError,
  TooManyClientsError,
  UnknownDatabaseError,
} from '../errors.js';
import type { Pool, PoolWaiter } from '../pool/pool.js';
import { ServerConnection, type ServerSink } from '../pool/server-connection.js';
import { Frontend } from '../wire/codes.js';
import { decodeStartupPacket, type StartupPacket } from '../wire/decode.js';
import { FrameScanner, type FrameHandler } from '../wire/frame-scanner.js';
import * as msg from '../wire/messages.js';
import { ClientAuth, type AuthStep } from './client-auth.js';
import type { SessionContext } from './session-context.js';
import { applySettingsSql, startupSettings } from './startup-params.js';

export type ClientState = 'startup' | 'auth' | 'connecting' | 'ready' | 'replication' | 'closed';

/** PostgreSQL's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_PACKET = 10_000;

let nextClientId = 1;

export class ClientSession implements FrameHandler, ServerSink, PoolWaiter {
  readonly id = nextClientId++;
  state: ClientState = 'startup';
  readonly connectedAt = Date.now();
  user = '';
  database = '';
  /** Startup parameters as the client sent them. */
  params = new Map<string, string>();
  /** The process id and secret this client was given in BackendKeyData. */
  pid = 0;
  readonly secret = randomBytes(4).readUInt32BE(0);
  admitted = false;

  private socket: net.Socket;
  private isTls = false;
  private startupBuf: Buffer = Buffer.alloc(0);
  private scanner: FrameScanner | undefined;
  private auth: ClientAuth | undefined;
  private userConfig: UserConfig | undefined;
  private db: DatabaseConfig | undefined;
  private pool: Pool | undefined;
  private server: ServerConnection | undefined;
  /** Frames that arrived before a server was attached, bounded by max_message_bytes in total. */
  private early: Buffer[] = [];
  private earlyBytes = 0;
  private batchBuf: Buffer | undefined;
  private batchStart = 0;
  private batchEnd = 0;
  private readonly startupTimer: NodeJS.Timeout;

  constructor(
    socket: net.Socket,
    private readonly ctx: SessionContext,
  ) {
    this.socket = socket;
    this.listen(socket);
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

  get attachedServer(): ServerConnection | undefined {
    return this.server;
  }

  /** Sends `err` (a FATAL ErrorResponse) and closes the client. */
  fail(err: GatewayError | Buffer): void {
    if (this.state === 'closed') return;
    let frame: Buffer;
    if (err instanceof GatewayError) {
      frame = err.toFrame();
      this.ctx.log.info({ client: this.id, code: err.code, reason: err.message }, 'client refused');
    } else {
      frame = err;
    }
    if (this.socket.writable) this.socket.end(frame);
    this.onClose();
  }

  private failWith(err: unknown): void {
    if (err instanceof GatewayError) this.fail(err);
    else {
      this.ctx.log.error({ client: this.id, err }, 'unexpected error in client session');
      this.fail(new ServerConnectionLostError({ cause: err }));
    }
  }

  /** Shutdown: tells the client and closes it, whatever it is doing. */
  terminate(): void {
    this.fail(new ShuttingDownError());
  }

  /** A CancelRequest carrying this client's key arrived: cancel what its server runs now. */
  cancelRunning(): void {
    this.server?.cancel().catch((err: unknown) => this.ctx.log.warn({ err }, 'cancel request failed'));
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.ctx.log.debug({ client: this.id, err: err.message }, 'client socket error'));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.server?.resume());
  }

  private onData(chunk: Buffer): void {
    try {
      if (this.scanner) {
        this.scanner.push(chunk);
        this.flushBatch();
      } else {
        this.onStartupBytes(chunk);
      }
    } catch (err) {
      this.failWith(err);
    }
  }

  // --- startup packets -----------------------------------------------------------------------

  private onStartupBytes(chunk: Buffer): void {
    let data = this.startupBuf.length ? Buffer.concat([this.startupBuf, chunk]) : chunk;
    while (data.length >= 4 && !this.scanner && this.state === 'startup') {
      const len = data.readInt32BE(0);
      if (len < 8 || len > MAX_STARTUP_PACKET) throw new ProtocolViolationError(`invalid length of startup packet: ${len}`);
      if (data.length < len) break;
      const packet = decodeStartupPacket(data.subarray(0, len));
      data = data.subarray(len);
      if (packet.kind === 'ssl' && data.length > 0) {
        // Bytes sent before the TLS handshake would be read as if they were protected.
        throw new ProtocolViolationError('received unencrypted data after SSL request');
      }
      this.onStartupPacket(packet);
    }
    this.startupBuf = Buffer.from(data);
    if (this.scanner && data.length) {
      this.startupBuf = Buffer.alloc(0);
      this.scanner.push(data);
    }
  }

  private onStartupPacket(packet: StartupPacket): void {
    switch (packet.kind) {
      case 'ssl': {
        const secureContext = this.ctx.tlsContext();
        if (!secureContext || this.isTls) {
          this.socket.write(msg.SSL_NO);
          return;
        }
        this.socket.write(msg.SSL_YES);
        this.upgradeToTls(secureContext);
        return;
      }
      case 'gssenc':
        this.socket.write(msg.SSL_NO);
        return;
      case 'cancel':
        this.ctx.cancel(packet.pid, packet.secret);
        this.socket.destroy();
        this.onClose();
        return;
      case 'startup':
        this.onStartupMessage(packet.params, packet.minor, packet.protocolOptions);
    }
  }

  private upgradeToTls(secureContext: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
    this.socket = secure;
    this.isTls = true;
    this.listen(secure);
  }

  private onStartupMessage(params: Map<string, string>, minor: number, protocolOptions: string[]): void {
    const config = this.ctx.config();
    this.params = params;
    this.user = params.get('user') ?? '';
    this.database = params.get('database') || this.user;
    if (this.ctx.shuttingDown) throw new ShuttingDownError();
    if (!this.user) throw new InvalidAuthorizationError('no PostgreSQL user name specified in startup packet');
    if (config.listen.tls?.mode === 'require' && !this.isTls) {
      throw new InvalidAuthorizationError('pgway requires TLS: connect with sslmode=require');
    }
    if (!this.ctx.admit(this)) throw new TooManyClientsError(config.limits.maxClientConn);
    // We speak 3.0 and no protocol extensions; tell a client that asked for more, as PostgreSQL does.
    if (minor > 0 || protocolOptions.length > 0) this.socket.write(msg.negotiateProtocolVersion(0, protocolOptions));

    this.state = 'auth';
    this.scanner = new FrameScanner(this, config.limits.maxMessageBytes);
    this.userConfig = this.ctx.user(this.user);
    this.auth = new ClientAuth(this.user, this.userConfig ? this.ctx.userSecret(this.user) : undefined);
    this.onAuthStep(this.auth.begin());
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
    for (const frame of step.frames) this.socket.write(frame);
    this.auth = undefined;
    this.onAuthenticated();
  }

  private onAuthenticated(): void {
    const db = this.ctx.database(this.database);
    if (!db) throw new UnknownDatabaseError(this.database);
    this.db = db;
    const user = this.userConfig!;
    if (isReplication(this.params.get('replication'))) {
      this.startReplication(db, user);
      return;
    }
    this.state = 'connecting';
    this.pool = this.ctx.primaryPool(db, user);
    const conn = this.pool.acquire(this);
    if (conn) this.onLease(conn);
  }

  // --- pool lease --------------------------------------------------------------------------------

  onLease(conn: ServerConnection): void {
    if (this.state !== 'connecting') {
      this.pool!.release(conn);
      return;
    }
    this.server = conn;
    const sql = applySettingsSql(startupSettings(this.params));
    if (!sql) {
      this.finishLogin(conn);
      return;
    }
    conn.query(sql).then(
      () => this.finishLogin(conn),
      (err: Error & { serverError?: { fields: Map<string, string> } }) => {
        if (this.state !== 'connecting') return;
        const fields = err.serverError?.fields;
        this.fail(msg.errorResponse({
          severity: 'FATAL',
          sqlstate: fields?.get('C') ?? '08P01',
          message: fields?.get('M') ?? err.message,
          detail: fields?.get('D'),
          hint: fields?.get('H'),
        }));
      },
    ).catch((err: unknown) => this.failWith(err));
  }

  onLeaseError(err: Error): void {
    if (this.state !== 'connecting') return;
    this.failWith(err);
  }

  private finishLogin(conn: ServerConnection): void {
    if (this.state !== 'connecting') return;
    // Session mode: the client sees its server's real process id, so pg_backend_pid() and
    // pg_terminate_backend() mean what they mean on a direct connection.
    this.pid = conn.pid;
    this.ctx.registerCancelKey(this, this.pid, this.secret);
    this.socket.cork();
    for (const [name, value] of conn.params) this.socket.write(msg.parameterStatus(name, value));
    this.socket.write(msg.backendKeyData(this.pid, this.secret));
    this.socket.write(msg.READY_IDLE);
    this.socket.uncork();
    conn.attach(this);
    this.state = 'ready';
    clearTimeout(this.startupTimer);
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const frame of early) this.onFrame(frame[0]!, frame, 0, frame.length);
    this.flushBatch();
  }

  // --- client frames -------------------------------------------------------------------------

  onFrame(code: number, buf: Buffer | undefined, start: number, end: number): void {
    if (!buf) return;
    switch (this.state) {
      case 'ready':
        this.forward(code, buf, start, end);
        return;
      case 'auth':
        if (code !== Frontend.Password || !this.auth) {
          throw new ProtocolViolationError(`expected password response, got message type ${String.fromCharCode(code)}`);
        }
        this.onAuthStep(this.auth.onPassword(buf, start, end));
        return;
      case 'connecting':
        if (code === Frontend.Terminate) {
          this.socket.end();
          this.onClose();
          return;
        }
        this.earlyBytes += end - start;
        if (this.earlyBytes > this.ctx.config().limits.maxMessageBytes) {
          throw new ProtocolViolationError('too much data sent before the connection was ready');
        }
        this.early.push(Buffer.from(buf.subarray(start, end)));
        return;
      default:
        return;
    }
  }

  private forward(code: number, buf: Buffer, start: number, end: number): void {
    const server = this.server!;
    if (code === Frontend.Terminate) {
      this.flushBatch();
      this.socket.end();
      this.onClose();
      return;
    }
    server.noteClientFrame(code);
    if (buf === this.batchBuf && start === this.batchEnd) {
      this.batchEnd = end;
      return;
    }
    this.flushBatch();
    this.batchBuf = buf;
    this.batchStart = start;
    this.batchEnd = end;
  }

  private flushBatch(): void {
    const buf = this.batchBuf;
    if (!buf) return;
    this.batchBuf = undefined;
    const server = this.server;
    if (!server || server.state === 'closed') return;
    if (!server.write(buf.subarray(this.batchStart, this.batchEnd))) {
      this.socket.pause();
      server.whenDrained(() => this.socket.resume());
    }
  }

  // --- server events -------------------------------------------------------------------------

  onServerData(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onServerReady(_status: number): void {
    // Session mode keeps the connection until the client leaves.
  }

  onServerLost(err: Error): void {
    const server = this.server;
    this.server = undefined;
    if (server) this.pool?.discard(server);
    this.failWith(err instanceof GatewayError ? err : new ServerConnectionLostError({ cause: err }));
  }

  // --- replication ---------------------------------------------------------------------------

  private startReplication(db: DatabaseConfig, user: UserConfig): void {
    this.state = 'replication';
    const params = new Map(this.params);
    params.delete('user');
    params.delete('database');
    const conn = new ServerConnection(db.primary, this.ctx.serverCredentials(db, user), params);
    const { serverConnectTimeoutMs } = db.pool;
    conn.connect(serverConnectTimeoutMs).then(
      () => {
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
        const serverSocket = conn.takeSocket();
        this.socket.removeAllListeners('data');
        this.socket.removeAllListeners('drain');
        this.socket.pipe(serverSocket);
        serverSocket.pipe(this.socket);
        serverSocket.on('close', () => this.socket.destroy());
        serverSocket.on('error', () => this.socket.destroy());
        this.socket.on('close', () => serverSocket.destroy());
      },
      (err: unknown) => this.failWith(err),
    ).catch((err: unknown) => this.failWith(err));
  }

  // --- end -----------------------------------------------------------------------------------

  private onClose(): void {
    if (this.state === 'closed') return;
    const wasWaiting = this.state === 'connecting' && !this.server;
    this.state = 'closed';
    clearTimeout(this.startupTimer);
    if (wasWaiting) this.pool?.cancelWait(this);
    const server = this.server;
    this.server = undefined;
    if (server && this.pool) this.pool.release(server);
    else if (server) server.close();
    if (!this.socket.destroyed) this.socket.destroySoon();
    this.ctx.closed(this);
  }
}

function isReplication(value: string | undefined): boolean {
  if (value === undefined) return false;
  return ['true', 'on', 'yes', '1', 'database'].includes(value.toLowerCase());
}
