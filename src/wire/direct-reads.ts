/**
 * Socket reads without Node's stream machinery. libuv reads into a buffer pgway hands it (the
 * `onread` option of net.Socket), and each chunk goes straight to `onChunk`: no Readable queue,
 * no 'data' event, no process.nextTick per read, no new allocation per read. On a W1 transaction
 * this was about a third of pgway's user CPU.
 *
 * The buffer is reused while nothing refers to the bytes of the last chunk; when something does
 * (frames held for a request still incomplete, a write that went into the socket's queue),
 * `lent()` says so and the next read gets a fresh buffer, so those bytes stay as they were.
 *
 * The buffer is sized to what the peer sends: it starts at `minBytes`, grows fourfold each time a
 * read fills it (up to `maxBytes`) and goes back to `minBytes` after a run of small reads. An idle
 * client costs `minBytes`; a bulk COPY reads `maxBytes` at a time.
 */
import net from 'node:net';
import { chunkEnds, chunkStarts } from '../clock.js';
import { streamBinding } from './stream-binding.js';

export interface DirectReader {
  /** A chunk arrived. Its bytes may be overwritten by the next read unless lent() says otherwise. */
  onChunk(chunk: Buffer): void;
  /** Asked after each chunk: true while something still refers to that chunk's bytes. */
  lent(): boolean;
}

export interface ReadBufferSize {
  minBytes: number;
  maxBytes: number;
}

/** Small reads in a row after which a grown buffer shrinks back to the minimum. */
const SMALL_READS_TO_SHRINK = 16;
/**
 * Views of the buffer kept for reuse, by read length (direct-mapped on the low bits). A view is
 * an allocation per read otherwise, and a connection's messages come in a few lengths: a server
 * answers the same statement with the same bytes. A view is only ever of the current buffer.
 */
const VIEW_SLOTS = 8;
/** Reads before views are kept: a client that logs in and then idles keeps none (see bench:idle). */
const READS_BEFORE_VIEWS = 8;

/** One connection's read buffer: what libuv reads into next, and the chunks handed to the reader. */
export class ReadBuffer {
  /** What the next read goes into; undefined until the socket asks for it. */
  buffer: Buffer | undefined;
  private lastRead = 0;
  private smallReads = 0;
  private views: (Buffer | undefined)[] | undefined;
  private reads = 0;
  /** Set when the handle's reads come to onHandleRead (takeOverReads, readHandle): who owns the handle. */
  socket: { readonly destroyed: boolean } | undefined;
  /** What the handle's end of stream, errors and reads after the owner is destroyed go to. */
  nodeOnRead: HandleOnRead | undefined;

  constructor(
    private readonly reader: DirectReader,
    private readonly minBytes: number,
    private readonly maxBytes: number,
  ) {}

  /** The buffer for the next read: called when reading starts and after every chunk. */
  next(): Buffer {
    const { buffer, minBytes } = this;
    if (!buffer) return (this.buffer = Buffer.allocUnsafe(minBytes));
    let wanted = buffer.length;
    if (this.lastRead === buffer.length) {
      wanted = Math.min(buffer.length * 4, this.maxBytes);
      this.smallReads = 0;
    } else if (this.lastRead > minBytes / 2) {
      this.smallReads = 0;
    } else if (buffer.length > minBytes && ++this.smallReads >= SMALL_READS_TO_SHRINK) {
      wanted = minBytes;
      this.smallReads = 0;
    }
    if (wanted !== buffer.length || this.reader.lent()) {
      this.views?.fill(undefined);
      return (this.buffer = Buffer.allocUnsafe(wanted));
    }
    return buffer;
  }

  /** `bytes` were read into `buf`. */
  deliver(bytes: number, buf: Uint8Array): void {
    this.lastRead = bytes;
    if (this.views === undefined && ++this.reads >= READS_BEFORE_VIEWS) this.views = new Array<Buffer | undefined>(VIEW_SLOTS).fill(undefined);
    const { views, buffer } = this;
    // Views are of `buffer` only; a read into any other buffer gets a view of its own.
    if (views === undefined || buf !== buffer) {
      this.reader.onChunk((buf as Buffer).subarray(0, bytes));
      return;
    }
    const slot = bytes & (VIEW_SLOTS - 1);
    let view = views[slot];
    if (view === undefined || view.length !== bytes) views[slot] = view = buffer.subarray(0, bytes);
    this.reader.onChunk(view);
  }
}

/** The `onread` option of net.Socket, carrying its ReadBuffer for takeOverReads. */
interface DirectReadOpts extends net.OnReadOpts {
  readonly reads: ReadBuffer;
}

/** The `onread` option for a socket read through `reader` (see socketFor and connectDirect). */
export function directReads(reader: DirectReader, size: ReadBufferSize): DirectReadOpts {
  const reads = new ReadBuffer(reader, size.minBytes, size.maxBytes);
  return {
    reads,
    buffer: () => reads.next(),
    callback: (bytes: number, buf: Uint8Array) => {
      reads.deliver(bytes, buf);
      return true;
    },
  };
}

const READS = Symbol('pgway.reads');
/** Where Node leaves a read's byte count (or error) before calling the handle's onread. */
const readState = streamBinding?.streamBaseState;
const READ_BYTES = streamBinding?.kReadBytesOrError ?? 0;

/** The socket's libuv handle as far as reading goes. */
type HandleOnRead = (this: ReadHandle, arrayBuffer: ArrayBuffer | undefined) => Uint8Array | undefined;
interface ReadHandle {
  onread: HandleOnRead;
  [READS]?: ReadBuffer;
}

/**
 * Node calls a handle's `onread` for every read, with the byte count in the stream binding's
 * shared state; for a socket with the `onread` option that function (onStreamRead) then calls
 * the option's `callback` and `buffer`, after refreshing the socket's idle timer and checking
 * what kind of socket it is. This is that path for a chunk of data, with nothing else: one
 * function shared by every socket, no closure. End of stream, errors and a destroyed socket go
 * to Node's own function as before. The buffer returned is where libuv reads next. The clock
 * stops at the chunk's arrival while it is handled (perfNow in clock.ts).
 */
function onHandleRead(this: ReadHandle, arrayBuffer: ArrayBuffer | undefined): Uint8Array | undefined {
  const reads = this[READS]!;
  const bytes = readState![READ_BYTES]!;
  if (bytes > 0 && !reads.socket!.destroyed) {
    const started = chunkStarts();
    try {
      reads.deliver(bytes, reads.buffer!);
    } finally {
      if (started) chunkEnds();
    }
    return reads.next();
  }
  return reads.nodeOnRead!.call(this, arrayBuffer);
}

/**
 * Sends the reads of `socket`, made with `opts` from directReads, straight to its reader (see
 * onHandleRead), once the socket has its handle. A socket's idle timer (socket.setTimeout) is not
 * refreshed by these reads; pgway uses none. Where Node's internals differ from what this
 * expects, nothing changes.
 */
function takeOverReads(socket: net.Socket, opts: DirectReadOpts): void {
  const handle = (socket as unknown as { _handle: ReadHandle | null })._handle;
  if (!streamBinding || !handle || typeof handle.onread !== 'function' || opts.reads.buffer === undefined) return;
  opts.reads.socket = socket;
  opts.reads.nodeOnRead = handle.onread;
  handle[READS] = opts.reads;
  handle.onread = onHandleRead;
}

/** What owns a handle read by readHandle, told when its reads end. */
export interface HandleReadOwner {
  readonly destroyed: boolean;
  /** The stream ended (UV_EOF) or failed (another negative libuv status). */
  onReadEnd(status: number): void;
}

/** The end of a bare handle's reads (readHandle): tells its owner. Returns no new buffer. */
function onBareHandleReadEnd(this: ReadHandle): undefined {
  const status = readState![READ_BYTES]!;
  const owner = this[READS]!.socket as HandleReadOwner;
  if (status < 0 && !owner.destroyed) owner.onReadEnd(status);
  return undefined;
}

/** A libuv stream handle as readHandle uses it. */
export interface BareStreamHandle {
  onread: unknown;
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  readStop(): number;
}

/**
 * Reads a bare stream handle (an accepted connection no net.Socket wraps) into a ReadBuffer of
 * `reader`: chunks go through onHandleRead as for a socket, the end of the stream to `owner`.
 * Reading starts at once. Needs the stream binding (see streamBinding).
 */
export function readHandle(handle: BareStreamHandle, reader: DirectReader, size: ReadBufferSize, owner: HandleReadOwner): number {
  const reads = new ReadBuffer(reader, size.minBytes, size.maxBytes);
  const readable = handle as unknown as ReadHandle & BareStreamHandle;
  reads.socket = owner;
  reads.nodeOnRead = onBareHandleReadEnd;
  readable[READS] = reads;
  readable.onread = onHandleRead;
  readable.useUserBuffer(reads.next());
  return readable.readStart();
}

/** A connection a listener accepted, not yet wrapped in a socket (see acceptDirect). */
export interface AcceptedConnection {
  readonly handle: object;
  /** Accepted on a Unix-domain socket (the listener listens on a path), not TCP. */
  readonly unixSocket: boolean;
}

interface ListeningHandle {
  onconnection: (status: number, clientHandle?: object) => void;
}

/**
 * Takes over accepting on a listening net.Server: each connection goes to `onConnection` as a
 * bare handle, for socketFor() to wrap with the reader of its session. net.Server would wrap it
 * in a net.Socket without `onread` first (it has no option for that), and a second socket per
 * connection costs as much as the rest of a login's bookkeeping. The server's own 'connection'
 * event, connection count and maxConnections are not used by pgway and no longer apply.
 */
export function acceptDirect(server: net.Server, onConnection: (accepted: AcceptedConnection) => void, onError: (err: Error) => void): void {
  const listening = (server as unknown as { _handle: ListeningHandle | null })._handle;
  if (!listening || typeof listening.onconnection !== 'function') {
    // Either not listening yet, or a Node.js release whose net.Server no longer works this way.
    throw new Error(`acceptDirect: cannot take over accepting connections (net.Server internals of Node.js ${process.version})`);
  }
  const unixSocket = typeof server.address() === 'string';
  listening.onconnection = (status, clientHandle) => {
    if (status < 0 || !clientHandle) {
      onError(Object.assign(new Error(`accept failed (${status})`), { errno: status }));
      return;
    }
    onConnection({ handle: clientHandle, unixSocket });
  };
}

/** The socket of an accepted connection, its reads going to `reader`. */
export function socketFor(accepted: AcceptedConnection, reader: DirectReader, size: ReadBufferSize): net.Socket {
  const onread = directReads(reader, size);
  const options = { handle: accepted.handle, readable: true, writable: true, onread };
  const socket = new net.Socket(options as net.SocketConstructorOpts);
  takeOverReads(socket, onread);
  return socket;
}

/** net.connect(), its reads going to `reader`. */
export function connectDirect(options: net.NetConnectOpts, reader: DirectReader, size: ReadBufferSize): net.Socket {
  const onread = directReads(reader, size);
  const socket = net.connect({ ...options, onread });
  takeOverReads(socket, onread);
  return socket;
}
