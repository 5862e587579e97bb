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

/** The `onread` option for a socket read through `reader`. */
export function directReads(reader: DirectReader, size: ReadBufferSize): net.OnReadOpts {
  const { minBytes, maxBytes } = size;
  let buffer: Buffer | undefined;
  let lastRead = 0;
  let smallReads = 0;
  let views: (Buffer | undefined)[] | undefined;
  let reads = 0;
  return {
    // Called once when reading starts and again after every chunk.
    buffer: () => {
      if (!buffer) return (buffer = Buffer.allocUnsafe(minBytes));
      let wanted = buffer.length;
      if (lastRead === buffer.length) {
        wanted = Math.min(buffer.length * 4, maxBytes);
        smallReads = 0;
      } else if (lastRead > minBytes / 2) {
        smallReads = 0;
      } else if (buffer.length > minBytes && ++smallReads >= SMALL_READS_TO_SHRINK) {
        wanted = minBytes;
        smallReads = 0;
      }
      if (wanted !== buffer.length || reader.lent()) {
        buffer = Buffer.allocUnsafe(wanted);
        views?.fill(undefined);
      }
      return buffer;
    },
    callback: (bytes: number, buf: Uint8Array) => {
      lastRead = bytes;
      if (views === undefined && ++reads >= READS_BEFORE_VIEWS) views = new Array<Buffer | undefined>(VIEW_SLOTS).fill(undefined);
      // Views are of `buffer` only; a read into any other buffer gets a view of its own.
      if (views === undefined || buf !== buffer) {
        reader.onChunk((buf as Buffer).subarray(0, bytes));
        return true;
      }
      const slot = bytes & (VIEW_SLOTS - 1);
      let view = views[slot];
      if (view === undefined || view.length !== bytes) views[slot] = view = buffer.subarray(0, bytes);
      reader.onChunk(view);
      return true;
    },
  };
}

/** A connection a listener accepted, not yet wrapped in a socket (see acceptDirect). */
export interface AcceptedConnection {
  readonly handle: object;
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
  listening.onconnection = (status, clientHandle) => {
    if (status < 0 || !clientHandle) {
      onError(Object.assign(new Error(`accept failed (${status})`), { errno: status }));
      return;
    }
    onConnection({ handle: clientHandle });
  };
}

/** The socket of an accepted connection, reading through `onread`. */
export function socketFor(accepted: AcceptedConnection, onread: net.OnReadOpts): net.Socket {
  const options = { handle: accepted.handle, readable: true, writable: true, onread };
  return new net.Socket(options as net.SocketConstructorOpts);
}
