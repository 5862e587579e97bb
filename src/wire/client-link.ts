/**
 * A client's connection as its session uses it: bytes out with backpressure, reads paused and
 * resumed, and the ways it closes. Two kinds:
 *
 * - HandleLink, for a plain connection: the accepted libuv handle itself, read through readHandle
 *   and written through a HandleWriter, with no net.Socket around it. A net.Socket (a Duplex with
 *   both stream states, an EventEmitter, its end-of-stream and close machinery) was about a fifth
 *   of what a login cost pgway (W6, `perf`), and a good part of what an idle client keeps.
 * - SocketLink, for a listener that offers TLS: a net.Socket as before, so that STARTTLS can wrap
 *   it in a TLSSocket. Also where Node.js lacks the stream internals HandleLink needs.
 */
import net from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import tls from 'node:tls';
import { readHandle, socketFor, type AcceptedConnection, type BareStreamHandle, type DirectReader, type ReadBufferSize } from './direct-reads.js';
import { errnoError, HandleWriter, SocketWriter, type DrainListener, type StreamHandle } from './socket-writer.js';
import { streamBinding } from './stream-binding.js';

/** Told what happens to a client's connection. */
export interface LinkListener extends DrainListener {
  /** The connection is closed, whichever side closed it. Called once, never from inside a ClientLink call. */
  onLinkClosed(): void;
  /** The connection failed (a read or write error); onLinkClosed follows. */
  onLinkError(err: Error): void;
}

export interface ClientLink {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Closed (or closing at once): nothing written from now on goes out. */
  readonly destroyed: boolean;
  /** Bytes written and not yet taken by the kernel. */
  readonly pending: number;
  /** Whether the connection is a TLS one by now (STARTTLS). */
  readonly encrypted: boolean;
  /** Whether startTls() can wrap this connection. */
  readonly canStartTls: boolean;
  /**
   * Why the certificate the client presented in its TLS handshake does not verify against the
   * CAs startTls() was told to verify it with (OpenSSL's code); undefined when it verifies, when
   * the client presented none, or when none was asked for.
   */
  readonly clientCertificateError: string | undefined;
  /** Writes `data`; false when the caller should stop producing until the listener's onSocketDrained. */
  write(data: Buffer): boolean;
  /** Writes between cork() and uncork() go out as one. */
  cork(): void;
  uncork(): void;
  pause(): void;
  resume(): void;
  /** Sends `last`, if given, and closes once everything written has gone out. */
  end(last?: Buffer): void;
  /** The client said Terminate or left: closes, after what is still queued, if anything. */
  close(): void;
  /** Closes now; what is queued is lost. */
  destroy(): void;
  /**
   * STARTTLS: the connection from here on, encrypted; its plaintext goes to the reader's onChunk.
   * With `requestCert` the client is asked for a certificate, verified against the context's CAs.
   */
  startTls(secureContext: tls.SecureContext, requestCert: boolean): ClientLink;
}

/**
 * How long a closing connection waits for its client to take what is still queued for it (an
 * error frame, the end of a result) before it is dropped: a client that never reads again must not
 * keep its connection and those bytes for ever.
 */
export const CLOSE_GRACE_MS = 30_000;

/**
 * The connection of an accepted client: a HandleLink unless TLS may be asked for (see the header).
 * A Unix-socket client is never offered TLS (nor by PostgreSQL, and libpq never asks there).
 */
export function linkFor(
  accepted: AcceptedConnection,
  reader: DirectReader,
  size: ReadBufferSize,
  listener: LinkListener,
  offersTls: boolean,
  closeGraceMs = CLOSE_GRACE_MS,
): ClientLink {
  if ((!offersTls || accepted.unixSocket) && streamBinding?.ShutdownWrap !== undefined) return new HandleLink(accepted.handle as LinkHandle, reader, size, listener, closeGraceMs);
  return new SocketLink(socketFor(accepted, reader, size), reader, listener, closeGraceMs);
}

/** A closing link whose client did not take its bytes within the grace period. */
function closeLate(link: { destroy(): void }): void {
  link.destroy();
}

// --- a bare handle -------------------------------------------------------------------------------

/** An accepted TCP or Unix-socket handle (TCPWrap / PipeWrap) as HandleLink uses it. */
interface LinkHandle extends BareStreamHandle, StreamHandle {
  shutdown(req: object): number;
  close(callback: () => void): void;
  getpeername?(out: { address?: string; port?: number }): number;
  setNoDelay?(enable: boolean): number;
  setKeepAlive?(enable: boolean, delaySeconds: number): number;
}

interface ShutdownRequest {
  oncomplete: (this: ShutdownRequest, status: number) => void;
  link: HandleLink;
}

function onShutdown(this: ShutdownRequest): void {
  this.link.closeHandle();
}

/** TCP keepalive probes after this long idle, as for the net.Socket clients had before. */
const KEEPALIVE_SECONDS = 60;

class LinkWriter extends HandleWriter {
  constructor(
    private readonly link: HandleLink,
    listener: DrainListener,
  ) {
    super(getDefaultHighWaterMark(false), listener);
  }

  write(handle: StreamHandle, data: Buffer): boolean {
    return this.writeToHandle(handle, data);
  }

  /** A write was held back and its caller told to stop: it hears onSocketDrained once everything is out. */
  stop(): void {
    this.needDrain = true;
  }

  /** After held-back bytes were written: the caller hears now if they all went at once. */
  drainIfEmpty(): void {
    this.checkDrain();
  }

  protected failed(err: Error): void {
    this.link.destroy(err);
  }
}

class HandleLink implements ClientLink {
  destroyed = false;
  private ending = false;
  private readonly writer: LinkWriter;
  /** Writes held between cork() and uncork(). */
  private corked = 0;
  private corkedChunks: Buffer[] | undefined;
  private corkedBytes = 0;
  private peer: { address?: string; port?: number } | undefined;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly handle: LinkHandle,
    reader: DirectReader,
    size: ReadBufferSize,
    private readonly listener: LinkListener,
    private readonly closeGraceMs: number,
  ) {
    this.writer = new LinkWriter(this, listener);
    handle.setNoDelay?.(true);
    handle.setKeepAlive?.(true, KEEPALIVE_SECONDS);
    const err = readHandle(handle, reader, size, this);
    if (err !== 0) this.destroy(errnoError(err, 'read'));
  }

  get remoteAddress(): string | undefined {
    return this.peerName().address;
  }

  get remotePort(): number | undefined {
    return this.peerName().port;
  }

  get pending(): number {
    return this.writer.pending + this.corkedBytes;
  }

  get encrypted(): boolean {
    return false;
  }

  get canStartTls(): boolean {
    return false;
  }

  get clientCertificateError(): undefined {
    return undefined;
  }

  write(data: Buffer): boolean {
    if (this.destroyed || this.ending) return false;
    if (this.corked > 0) {
      (this.corkedChunks ??= []).push(data);
      this.corkedBytes += data.length;
      // Corked bytes count as queued: past the mark the caller (a server's stream) stops too.
      if (this.pending < this.writer.highWaterMark && !this.writer.full) return true;
      this.writer.stop();
      return false;
    }
    return this.writer.write(this.handle, data);
  }

  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked === 0 || --this.corked > 0) return;
    this.writeCorked();
  }

  private writeCorked(): void {
    const chunks = this.corkedChunks;
    if (chunks === undefined || chunks.length === 0) return;
    this.corkedChunks = undefined;
    this.corkedBytes = 0;
    this.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    this.writer.drainIfEmpty();
  }

  pause(): void {
    if (!this.destroyed) this.handle.readStop();
  }

  resume(): void {
    if (!this.destroyed) this.handle.readStart();
  }

  end(last?: Buffer): void {
    if (this.destroyed || this.ending) return;
    if (last) this.write(last);
    this.corked = 0;
    this.writeCorked();
    this.ending = true;
    // libuv shuts the socket down once the writes before it are out; then it closes.
    const req = new streamBinding!.ShutdownWrap!() as ShutdownRequest;
    req.oncomplete = onShutdown;
    req.link = this;
    if (this.handle.shutdown(req) !== 0) {
      this.closeHandle();
      return;
    }
    this.closeTimer = setTimeout(closeLate, this.closeGraceMs, this);
    this.closeTimer.unref();
  }

  close(): void {
    if (this.pending === 0 && !this.ending) this.closeHandle();
    else this.end();
  }

  destroy(err?: Error): void {
    if (err && !this.destroyed) this.listener.onLinkError(err);
    this.closeHandle();
  }

  startTls(): ClientLink {
    throw new Error('a plain client connection cannot start TLS (the listener offered none when it was accepted)');
  }

  /** End of the client's stream (HandleReadOwner): it left, or its connection failed. */
  onReadEnd(status: number): void {
    if (status !== UV_EOF) this.destroy(errnoError(status, 'read'));
    else this.close();
  }

  /** Closes the handle; the listener hears once libuv has closed it. */
  closeHandle(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.corkedChunks = undefined;
    this.corkedBytes = 0;
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.handle.close(() => this.listener.onLinkClosed());
  }

  private peerName(): { address?: string; port?: number } {
    if (this.peer) return this.peer;
    const peer: { address?: string; port?: number } = {};
    if (this.handle.getpeername?.(peer) !== 0) return peer; // a Unix socket, or gone already
    return (this.peer = peer);
  }
}

/** libuv's end of stream. */
const UV_EOF = -4095;

// --- a net.Socket --------------------------------------------------------------------------------

class SocketLink implements ClientLink {
  private readonly writer: SocketWriter;
  private closeTimer: NodeJS.Timeout | undefined;
  /** A TLS socket whose handshake has not completed: nothing written now reaches the client. */
  private handshaking = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly reader: DirectReader,
    private readonly listener: LinkListener,
    private readonly closeGraceMs: number,
    /** A TLS socket that asked its client for a certificate. */
    private readonly requestedCert = false,
  ) {
    if (!('encrypted' in socket)) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_SECONDS * 1000);
    } else {
      // A plain socket reads through directReads; a TLS socket wrapped around it emits its plaintext.
      socket.on('data', (chunk: Buffer) => reader.onChunk(chunk));
      this.handshaking = true;
      socket.once('secure', () => {
        this.handshaking = false;
      });
    }
    socket.on('error', (err) => listener.onLinkError(err));
    socket.on('close', () => {
      if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
      listener.onLinkClosed();
    });
    this.writer = new SocketWriter(socket, listener);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get pending(): number {
    return this.writer.pending;
  }

  get encrypted(): boolean {
    return 'encrypted' in this.socket;
  }

  get canStartTls(): boolean {
    return !this.encrypted;
  }

  get clientCertificateError(): string | undefined {
    return this.requestedCert ? unverifiedCertificate(this.socket as tls.TLSSocket) : undefined;
  }

  write(data: Buffer): boolean {
    // Ended or destroyed: Node would fail the write and destroy the socket, losing what is queued.
    if (!this.socket.writable) return false;
    return this.writer.write(data);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(last?: Buffer): void {
    // A client stalled in its TLS handshake (the login timeout) cannot be told why, and a graceful
    // end would wait for the handshake: it goes at once, as PostgreSQL closes it.
    if (this.handshaking) {
      this.socket.destroy();
      return;
    }
    if (this.socket.writable) {
      if (last) this.socket.end(last);
      else this.socket.end();
    }
    this.close();
  }

  close(): void {
    if (this.socket.destroyed) return;
    this.socket.destroySoon();
    if (this.socket.destroyed || this.closeTimer !== undefined) return;
    this.closeTimer = setTimeout(closeLate, this.closeGraceMs, this);
    this.closeTimer.unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  startTls(secureContext: tls.SecureContext, requestCert: boolean): ClientLink {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    // A client without a certificate is still let in (PostgreSQL asks for one only with hba's
    // clientcert), so the handshake cannot refuse a bad one: clientCertificateError says.
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext, requestCert, rejectUnauthorized: false });
    return new SocketLink(socket, this.reader, this.listener, this.closeGraceMs, requestCert);
  }
}

/**
 * Why the certificate a TLS client presented does not verify, or undefined when it presented none
 * or it verifies. Node's OpenSSL verify callback lets every certificate through the handshake and
 * tls.Server checks the result afterwards, through the TLS handle's verifyError(); a TLSSocket
 * made around an accepted socket (STARTTLS) has no tls.Server, so this asks the handle as tls.Server
 * does. A Node.js without that method refuses every certificate rather than none.
 */
function unverifiedCertificate(socket: tls.TLSSocket): string | undefined {
  if (Object.keys(socket.getPeerCertificate()).length === 0) return undefined;
  const handle = (socket as unknown as { _handle: { verifyError?(): (Error & { code?: string }) | null } | null })._handle;
  if (typeof handle?.verifyError !== 'function') return 'UNVERIFIABLE';
  const err = handle.verifyError();
  return err ? (err.code ?? err.message) : undefined;
}
