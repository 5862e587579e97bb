/**
 * Socket writes without Node's stream machinery, the write-side twin of directReads. While the
 * socket's Writable holds nothing (not corked, nothing queued or in flight), a write goes straight
 * to the socket's libuv handle: no Writable state to update, no callback scheduled with
 * process.nextTick after it, and, when the kernel takes the bytes at once (nearly always), no new
 * WriteWrap: the request object is reused. On a W5 transaction the Writable path was half of
 * everything pgway allocated, which is what sets how often V8 stops for a scavenge.
 *
 * Anything else (a corked socket, bytes the Writable still holds, TLS, a Node.js release without
 * these internals) goes through socket.write(), in order: libuv keeps a handle's writes in the
 * order they were issued, and the Writable only issues its bytes after the ones before them.
 * When the kernel does not take everything, libuv queues the rest and says so when it is written;
 * until then `pending` counts those bytes and the written buffer must not change (see directReads'
 * `lent`).
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { streamBinding as binding } from './stream-binding.js';

interface WriteRequest {
  oncomplete: (this: WriteRequest, status: number) => void;
  writer: HandleWriter | undefined;
  buffer: Buffer | undefined;
}

export interface StreamHandle {
  writeBuffer(req: WriteRequest, data: Buffer): number;
}

interface WritableInternals {
  _handle: StreamHandle | null;
  _writableState: { length: number; corked: number; ending: boolean };
}

function onWriteComplete(this: WriteRequest, status: number): void {
  const writer = this.writer!;
  const bytes = this.buffer!.length;
  this.writer = undefined;
  this.buffer = undefined;
  writer.afterQueuedWrite(bytes, status);
}

/** Told when the bytes written are gone after a write() returned false. */
export interface DrainListener {
  onSocketDrained(): void;
}

/**
 * Writes straight to a libuv stream handle, counting the bytes libuv still holds and telling a
 * listener when they are gone after a write returned false. SocketWriter adds a net.Socket's own
 * queue on top; a client's ClientLink uses this alone (see client-link.ts).
 */
export abstract class HandleWriter {
  /** Bytes handed to libuv by this writer that it has not written yet (a write of none is never queued). */
  protected queued = 0;
  private spare: WriteRequest | undefined;
  protected needDrain = false;
  /** Made when first needed: an idle client's writer stays small. */
  private drainWaiters: (() => void)[] | undefined;

  constructor(
    readonly highWaterMark: number,
    private readonly listener: DrainListener | undefined,
  ) {}

  /** Bytes written and not yet taken by the kernel. */
  get pending(): number {
    return this.queued;
  }

  /** Whether a write returned false and the bytes have not drained since. */
  get full(): boolean {
    return this.needDrain;
  }

  /** The handle failed a write: the connection is done. */
  protected abstract failed(err: Error): void;

  /** Writes `data` to `handle`; false when the caller should stop producing until the listener hears / whenDrained. */
  protected writeToHandle(handle: StreamHandle, data: Buffer): boolean {
    const req = this.spare ?? this.newRequest();
    const err = handle.writeBuffer(req, data);
    if (err !== 0) {
      this.spare = undefined; // the handle may have kept it
      this.failed(errnoError(err, 'write'));
      return false;
    }
    if (binding!.streamBaseState[binding!.kLastWriteWasAsync] === 0) {
      this.spare = req;
      return this.afterWrite(true);
    }
    // libuv holds (part of) the bytes until oncomplete; the request stays with it.
    this.spare = undefined;
    req.writer = this;
    req.buffer = data;
    this.queued += data.length;
    return this.afterWrite(true);
  }

  /** Calls `callback` once the writes so far have drained (at once when nothing is waiting). */
  whenDrained(callback: () => void): void {
    if (!this.needDrain) {
      callback();
      return;
    }
    (this.drainWaiters ??= []).push(callback);
  }

  /** Called by a write request libuv completed (see onWriteComplete). */
  afterQueuedWrite(bytes: number, status: number): void {
    this.queued -= bytes;
    if (status < 0) {
      this.failed(errnoError(status, 'write'));
      return;
    }
    this.checkDrain();
  }

  protected afterWrite(ok: boolean): boolean {
    if (ok && this.pending < this.highWaterMark) return !this.needDrain;
    this.needDrain = true;
    return false;
  }

  protected checkDrain(): void {
    if (!this.needDrain || this.pending > 0) return;
    this.needDrain = false;
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    if (waiters) for (const waiter of waiters) waiter();
    this.listener?.onSocketDrained();
  }

  private newRequest(): WriteRequest {
    const req = new binding!.WriteWrap() as WriteRequest;
    req.oncomplete = onWriteComplete;
    req.writer = undefined;
    req.buffer = undefined;
    return req;
  }
}

export class SocketWriter extends HandleWriter {
  private readonly direct: boolean;
  private checkDrainAfterWrite: (() => void) | undefined;

  constructor(
    private readonly socket: net.Socket,
    listener?: DrainListener,
  ) {
    super(socket.writableHighWaterMark, listener);
    const internals = socket as unknown as WritableInternals;
    this.direct = binding !== undefined && !('encrypted' in socket) && typeof internals._writableState?.length === 'number';
    socket.on('drain', () => this.checkDrain());
  }

  override get pending(): number {
    return this.queued + this.socket.writableLength;
  }

  /** Writes `data`; false when the caller should stop producing until the listener hears / whenDrained. */
  write(data: Buffer): boolean {
    const { _handle: handle, _writableState: state } = this.socket as unknown as WritableInternals;
    if (!this.direct || handle === null || state.length !== 0 || state.corked !== 0 || state.ending || this.socket.destroyed) {
      return this.writeThroughSocket(data);
    }
    return this.writeToHandle(handle, data);
  }

  protected failed(err: Error): void {
    this.socket.destroy(err);
  }

  // Apart from write(): the closure here would make V8 create a context on every write.
  private writeThroughSocket(data: Buffer): boolean {
    // The Writable says 'drain' only for its own bytes; past the mark, ask it for a callback.
    const watch = this.needDrain || this.pending + data.length >= this.highWaterMark;
    if (watch) this.checkDrainAfterWrite ??= () => this.checkDrain();
    return this.afterWrite(this.socket.write(data, watch ? this.checkDrainAfterWrite : undefined));
  }
}

/** The error of a failed libuv call, as Node.js reports one. */
export function errnoError(status: number, syscall: string): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`${syscall} ${code}`), { errno: status, code, syscall });
}
