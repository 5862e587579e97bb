/**
 * One server socket. Logs in (SCRAM-SHA-256, md5 or cleartext, whatever the server asks), then
 * either forwards the server's bytes to the attached client unchanged, scanning frames only to
 * see ReadyForQuery, ParameterStatus and COPY boundaries, or runs pgway's own queries (session
 * setup, reset) while no client is attached. Transaction state comes only from ReadyForQuery.
 */
import type net from 'node:net';
import type { ServerTarget } from '../config/schema.js';
import { ServerAuthError, ServerConnectError, ServerConnectionLostError } from '../errors.js';
import { AuthCode, Backend, Frontend, TxStatus } from '../wire/codes.js';
import { decodeErrorFields, decodeParameterStatus, readCString } from '../wire/decode.js';
import { codeSet, FrameScanner, ALL_CODES, type FrameHandler } from '../wire/frame-scanner.js';
import * as msg from '../wire/messages.js';
import { md5Response, md5Stored, ScramClientExchange } from '../wire/scram.js';
import { openServerSocket } from './server-socket.js';

export interface ServerCredentials {
  user: string;
  /** Plaintext, or PostgreSQL's stored "md5..." form (usable only for md5 challenges). */
  password?: string | undefined;
}

/** What the attached client side hears from its server connection. */
export interface ServerSink {
  /** Bytes to forward to the client unchanged. Returns false when the client wants us to pause. */
  onServerData(chunk: Buffer): boolean;
  /** Every request sent so far has been answered; `status` is the ReadyForQuery byte. */
  onServerReady(status: number): void;
  /** The server connection failed while attached. */
  onServerLost(err: Error): void;
}

export type ServerState = 'connecting' | 'idle' | 'attached' | 'internal' | 'closed';

export interface ServerError {
  sqlstate: string;
  message: string;
  fields: Map<string, string>;
}

/** Codes whose bodies matter while forwarding; anything else split across chunks is skipped uncopied. */
const FORWARD_INTEREST = codeSet([Backend.ReadyForQuery, Backend.ParameterStatus, Backend.ErrorResponse]);
const MAX_SERVER_FRAME = 1 << 30;

let nextId = 1;

export class ServerConnection implements FrameHandler {
  readonly id = nextId++;
  state: ServerState = 'connecting';
  /** ParameterStatus values as the server last reported them. */
  readonly params = new Map<string, string>();
  pid = 0;
  secret = 0;
  txStatus: number = TxStatus.Idle;
  readonly createdAt = Date.now();
  lastUsedAt = Date.now();

  private socket!: net.Socket;
  private readonly scanner = new FrameScanner(this, MAX_SERVER_FRAME, ALL_CODES);
  private sink: ServerSink | undefined;
  /** Requests sent whose ReadyForQuery has not come back yet, oldest first: Q, F or S codes. */
  private readonly pending: number[] = [];
  /** The client is streaming COPY data: its Syncs are ignored by the server until CopyDone/CopyFail. */
  private clientInCopy = false;
  /** Extended-protocol messages were sent without a Sync after them. */
  private unsynced = false;
  private readyAfterChunk = false;
  private internalError: ServerError | undefined;
  private internalDone: ((err?: Error) => void) | undefined;
  private loginStep: ((code: number, buf: Buffer, start: number, end: number) => void) | undefined;

  constructor(
    readonly target: ServerTarget,
    private readonly credentials: ServerCredentials,
    private readonly startupParams: ReadonlyMap<string, string> = new Map(),
  ) {}

  get busy(): boolean {
    return this.pending.length > 0 || this.unsynced || this.clientInCopy;
  }

  /** Connects and logs in; resolves once the server sent its first ReadyForQuery. */
  async connect(timeoutMs: number): Promise<void> {
    const deadline = setTimeout(() => {
      this.fail(new ServerConnectError(`login to ${this.describe()} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      this.socket = await openServerSocket(this.target, timeoutMs);
      await new Promise<void>((resolve, reject) => {
        this.internalDone = (err) => (err ? reject(err) : resolve());
        this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
        this.socket.on('error', (err) => this.fail(new ServerConnectionLostError({ cause: err })));
        this.socket.on('close', () => this.fail(new ServerConnectionLostError()));
        this.loginStep = this.onLoginFrame;
        const params: [string, string][] = [['user', this.credentials.user], ['database', this.target.dbname]];
        for (const [k, v] of this.startupParams) params.push([k, v]);
        this.socket.write(msg.startupMessage(params));
      });
      this.state = 'idle';
    } catch (err) {
      this.close();
      throw err;
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
    this.scanner.interest = FORWARD_INTEREST;
    this.lastUsedAt = Date.now();
  }

  detach(): void {
    this.sink = undefined;
    if (this.state === 'attached') this.state = 'idle';
    this.scanner.interest = ALL_CODES;
    this.lastUsedAt = Date.now();
  }

  /** Notes a client frame about to be forwarded, so ReadyForQuery can be matched to requests. */
  noteClientFrame(code: number): void {
    switch (code) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        this.pending.push(code);
        return;
      case Frontend.Sync:
        this.unsynced = false;
        if (!this.clientInCopy) this.pending.push(code);
        return;
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        this.clientInCopy = false;
        return;
      case Frontend.CopyData:
      case Frontend.Terminate:
        return;
      default:
        this.unsynced = true;
    }
  }

  write(data: Buffer): boolean {
    return this.socket.write(data);
  }

  whenDrained(callback: () => void): void {
    this.socket.once('drain', callback);
  }

  /** Hands the raw socket over (replication pipes); this object no longer reads or owns it. */
  takeSocket(): net.Socket {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('error');
    this.socket.removeAllListeners('close');
    this.state = 'closed';
    return this.socket;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  // --- detached: pgway's own queries ----------------------------------------------------------

  /**
   * Brings the connection back to idle after a client left: finishes what the client left
   * half-done (COPY, an unsynced extended request), waits for every answer, rolls back an open
   * transaction and runs `resetQuery`. Rejects when the connection cannot be trusted again.
   */
  async reset(resetQuery: string): Promise<void> {
    this.state = 'internal';
    if (this.clientInCopy) {
      this.clientInCopy = false;
      this.socket.write(msg.copyFail('client disconnected'));
    }
    if (this.unsynced) this.sendInternal(msg.SYNC, Frontend.Sync);
    await this.drain();
    if (this.txStatus !== TxStatus.Idle) await this.query('ROLLBACK');
    if (resetQuery) await this.query(resetQuery);
    this.state = 'idle';
  }

  /** Runs one simple query whose output nobody sees; rejects with the server's error, if any. */
  async query(sql: string): Promise<void> {
    this.state = 'internal';
    this.internalError = undefined;
    this.sendInternal(msg.query(sql), Frontend.Query);
    await this.drain();
    const error = this.internalError as ServerError | undefined;
    if (error) throw Object.assign(new Error(error.message), { serverError: error });
  }

  private sendInternal(frame: Buffer, code: number): void {
    this.pending.push(code);
    this.socket.write(frame);
  }

  private drain(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    this.socket.resume();
    return new Promise((resolve, reject) => {
      this.internalDone = (err) => (err ? reject(err) : resolve());
    });
  }

  /** Asks the server to cancel whatever this connection is running, on a separate socket. */
  async cancel(timeoutMs = 5000): Promise<void> {
    const socket = await openServerSocket(this.target, timeoutMs);
    socket.on('error', () => undefined);
    socket.end(msg.cancelRequest(this.pid, this.secret));
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.sink = undefined;
    if (this.socket && !this.socket.destroyed) {
      if (this.socket.writable) this.socket.end(msg.TERMINATE);
      this.socket.destroySoon();
    }
  }

  // --- incoming bytes ----------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    try {
      this.scanner.push(chunk);
    } catch (err) {
      this.fail(new ServerConnectionLostError({ cause: err }));
      return;
    }
    const sink = this.sink;
    if (!sink) return;
    if (!sink.onServerData(chunk)) this.socket.pause();
    if (this.readyAfterChunk) {
      this.readyAfterChunk = false;
      sink.onServerReady(this.txStatus);
    }
  }

  onFrame(code: number, buf: Buffer | undefined, start: number, end: number): void {
    if (this.loginStep) {
      if (buf) this.loginStep(code, buf, start, end);
      return;
    }
    switch (code) {
      case Backend.ReadyForQuery:
        if (buf) this.txStatus = buf[start + 5]!;
        this.pending.shift();
        if (this.pending.length === 0) this.onIdle();
        return;
      case Backend.ParameterStatus:
        if (buf) {
          const [name, value] = decodeParameterStatus(buf, start, end);
          this.params.set(name, value);
        }
        return;
      case Backend.CopyInResponse:
        // The server now ignores Sync until the copy ends, so Syncs sent after the request that
        // started it get no ReadyForQuery of their own; a simple Query still gets exactly one.
        this.pending.length = this.pending[0] === Frontend.Query ? 1 : 0;
        this.clientInCopy = true;
        return;
      case Backend.ErrorResponse:
        this.clientInCopy = false;
        if (this.state === 'internal' && buf && !this.internalError) {
          const fields = decodeErrorFields(buf, start, end);
          this.internalError = { sqlstate: fields.get('C') ?? 'XX000', message: fields.get('M') ?? '', fields };
        }
        return;
      case Backend.CommandComplete:
        this.clientInCopy = false;
        return;
    }
  }

  private onIdle(): void {
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
    const sink = this.sink;
    const done = this.internalDone;
    this.internalDone = undefined;
    this.close();
    this.socket?.destroy();
    sink?.onServerLost(err);
    done?.(err);
  }

  // --- login ---------------------------------------------------------------------------------

  private scram: ScramClientExchange | undefined;

  private onLoginFrame(code: number, buf: Buffer, start: number, end: number): void {
    switch (code) {
      case Backend.Authentication:
        this.onAuthentication(buf, start, end);
        return;
      case Backend.ParameterStatus: {
        const [name, value] = decodeParameterStatus(buf, start, end);
        this.params.set(name, value);
        return;
      }
      case Backend.BackendKeyData:
        this.pid = buf.readInt32BE(start + 5);
        this.secret = buf.readUInt32BE(start + 9);
        return;
      case Backend.ReadyForQuery: {
        this.txStatus = buf[start + 5]!;
        this.loginStep = undefined;
        const done = this.internalDone;
        this.internalDone = undefined;
        done?.();
        return;
      }
      case Backend.ErrorResponse: {
        const fields = decodeErrorFields(buf, start, end);
        const sqlstate = fields.get('C') ?? 'XX000';
        const text = `${this.describe()}: ${fields.get('M') ?? 'login failed'}`;
        this.fail(sqlstate.startsWith('28') ? new ServerAuthError(text) : new ServerConnectError(text));
        return;
      }
      case Backend.NoticeResponse:
      case Backend.NegotiateProtocolVersion:
        return;
      default:
        this.fail(new ServerConnectError(`unexpected message '${String.fromCharCode(code)}' during login`));
    }
  }

  private onAuthentication(buf: Buffer, start: number, end: number): void {
    const type = buf.readInt32BE(start + 5);
    const password = this.credentials.password;
    const needPassword = (): string | undefined => {
      if (password !== undefined) return password;
      this.fail(new ServerAuthError(
        `${this.describe()} asks for a password and pgway has none for user "${this.credentials.user}" ` +
          '(give the user a plaintext password or server_password in the config)',
      ));
      return undefined;
    };
    switch (type) {
      case AuthCode.Ok:
        return;
      case AuthCode.CleartextPassword: {
        const pw = needPassword();
        if (pw === undefined) return;
        if (pw.startsWith('md5') && pw.length === 35) {
          this.fail(new ServerAuthError(`${this.describe()} asks for a cleartext password; pgway only has an md5 hash`));
          return;
        }
        this.socket.write(msg.passwordMessage(pw));
        return;
      }
      case AuthCode.MD5Password: {
        const pw = needPassword();
        if (pw === undefined) return;
        const stored = pw.startsWith('md5') && pw.length === 35 ? pw : md5Stored(pw, this.credentials.user);
        this.socket.write(msg.passwordMessage(md5Response(stored, buf.subarray(start + 9, start + 13))));
        return;
      }
      case AuthCode.SASL: {
        const mechanisms: string[] = [];
        let pos = start + 9;
        while (pos < end && buf[pos] !== 0) {
          const [mech, next] = readCString(buf, pos, end);
          mechanisms.push(mech);
          pos = next;
        }
        if (!mechanisms.includes('SCRAM-SHA-256')) {
          this.fail(new ServerAuthError(`${this.describe()} offers no supported SASL mechanism (${mechanisms.join(', ')})`));
          return;
        }
        const pw = needPassword();
        if (pw === undefined) return;
        this.scram = new ScramClientExchange(pw);
        this.socket.write(msg.saslInitialResponse('SCRAM-SHA-256', this.scram.first()));
        return;
      }
      case AuthCode.SASLContinue: {
        if (!this.scram) break;
        try {
          this.socket.write(msg.saslResponse(this.scram.final(buf.toString('utf8', start + 9, end))));
        } catch (err) {
          this.fail(new ServerAuthError(`${this.describe()}: ${(err as Error).message}`));
        }
        return;
      }
      case AuthCode.SASLFinal:
        if (this.scram?.verify(buf.toString('utf8', start + 9, end))) return;
        this.fail(new ServerAuthError(`${this.describe()}: the server's SCRAM signature is wrong`));
        return;
    }
    this.fail(new ServerAuthError(`${this.describe()} asks for unsupported authentication (code ${type})`));
  }
}
