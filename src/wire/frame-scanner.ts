/**
 * Finds message boundaries in a byte stream without copying. A frame that lies whole in a chunk is
 * handed on as a view (`buf`, `start`, `end` with `start` at the code byte). A frame split across
 * chunks is collected into one buffer whose length field is checked against the limit before
 * anything is allocated, and which grows as the frame's bytes arrive; `interest` says which codes
 * need their body at all, so a split frame nobody reads (a big DataRow on its way to a client) is
 * skipped, never copied.
 */
import { MessageTooLargeError, ProtocolViolationError, UnknownMessageTypeError } from '../errors.js';

export interface FrameHandler {
  /** `buf` is undefined when the frame was skipped because its code is not of interest. */
  onFrame(code: number, buf: Buffer | undefined, start: number, end: number): void;
}

export const ALL_CODES: Uint8Array = new Uint8Array(256).fill(1);

export function codeSet(codes: readonly number[]): Uint8Array {
  const set = new Uint8Array(256);
  for (const c of codes) set[c] = 1;
  return set;
}

const HEADER = 5;

/**
 * A split frame's buffer starts at most this big and doubles as its bytes arrive: a length field
 * claims memory only as the peer sends what it claims, not from a 5-byte header.
 */
const FIRST_SPLIT_BYTES = 64 * 1024;

export class FrameScanner {
  /** Header bytes of a frame whose header itself was split. */
  private readonly header = Buffer.allocUnsafe(HEADER); // a slice of Node's pool, not an ArrayBuffer per client
  private headerFill = 0;
  /** The frame being collected across chunks (undefined while skipping it). */
  private partial: Buffer | undefined;
  private partialFill = 0;
  /** Bytes of the current split frame still to come. */
  private remaining = 0;
  private code = 0;

  constructor(
    private readonly handler: FrameHandler,
    private maxFrameBytes: number,
    public interest: Uint8Array = ALL_CODES,
    /** A client still authenticating: a frame over the limit is a protocol violation, not a setting to raise. */
    private authenticating = false,
  ) {}

  /** push() threw because of a frame's header (its code or length), not because of its handler. */
  refusedFrame = false;
  /** The stream ended at a frame handed on (see end): nothing after it is read. */
  private ended = false;
  /** Codes a frame may have; another is refused from its code byte, before its length is read. */
  private accepted: Uint8Array = ALL_CODES;

  /**
   * The client authenticated: frames up to `maxFrameBytes` (limits.max_message_bytes) are read, of
   * the `accepted` codes only (PostgreSQL checks the code first: a second StartupMessage is refused
   * at once, not taken for a frame of code 0 whose length is the next four bytes).
   */
  authenticated(maxFrameBytes: number, accepted: Uint8Array): void {
    this.authenticating = false;
    this.maxFrameBytes = maxFrameBytes;
    this.accepted = accepted;
  }

  /**
   * Called by the handler for the frame it is given: the stream ends there, and the bytes after it
   * are never read, in this chunk or later ones (PostgreSQL exits at a Terminate).
   */
  end(): void {
    this.ended = true;
  }

  /** The bytes of a frame half received, handed over: the scanner forgets them (interest must be ALL_CODES). */
  takeUnread(): Buffer | undefined {
    let bytes: Buffer | undefined;
    if (this.headerFill > 0) bytes = Buffer.from(this.header.subarray(0, this.headerFill));
    else if (this.remaining > 0 && this.partial) bytes = this.partial.subarray(0, this.partialFill);
    this.headerFill = 0;
    this.remaining = 0;
    this.partial = undefined;
    return bytes;
  }

  /** True when no frame is half-received: the stream is at a message boundary. */
  get atBoundary(): boolean {
    return this.headerFill === 0 && this.remaining === 0;
  }

  /** Throws ProtocolViolationError / MessageTooLargeError on a bad length field. */
  push(chunk: Buffer): void {
    if (this.ended) return;
    let pos = 0;
    const n = chunk.length;
    if (this.headerFill > 0 || this.remaining > 0) {
      pos = this.continueSplit(chunk);
      if (pos < 0 || this.ended) return;
    }
    while (pos < n) {
      if (n - pos < HEADER) {
        // PostgreSQL refuses a type from its byte alone, before it waits for the length.
        if (this.accepted[chunk[pos]!] === 0) this.checkHeader(chunk[pos]!, 0);
        chunk.copy(this.header, 0, pos, n);
        this.headerFill = n - pos;
        return;
      }
      const code = chunk[pos]!;
      const len = this.checkHeader(code, chunk.readInt32BE(pos + 1));
      const end = pos + 1 + len;
      if (end <= n) {
        this.handler.onFrame(code, chunk, pos, end);
        if (this.ended) return;
        pos = end;
        continue;
      }
      this.beginSplit(code, len, chunk, pos, n);
      return;
    }
  }

  private checkHeader(code: number, len: number): number {
    const refusal = this.refusal(code, len);
    if (refusal) {
      this.refusedFrame = true;
      throw refusal;
    }
    return len;
  }

  private refusal(code: number, len: number): Error | undefined {
    if (this.accepted[code] === 0) return new UnknownMessageTypeError(code);
    if (len < 4) return new ProtocolViolationError(`invalid message length ${len}`);
    if (len <= this.maxFrameBytes) return undefined;
    if (this.authenticating) return new ProtocolViolationError(`invalid message length ${len} during authentication`);
    return new MessageTooLargeError(len, this.maxFrameBytes);
  }

  private beginSplit(code: number, len: number, chunk: Buffer, from: number, to: number): void {
    this.code = code;
    const total = 1 + len;
    this.remaining = total - (to - from);
    if (this.interest[code]) {
      this.partial = Buffer.allocUnsafe(Math.min(total, FIRST_SPLIT_BYTES));
      this.partialFill = chunk.copy(this.partial, 0, from, to);
    } else {
      this.partial = undefined;
    }
  }

  /** Feeds the start of `chunk` into a split header or frame; returns where whole frames resume, or -1. */
  private continueSplit(chunk: Buffer): number {
    let pos = 0;
    if (this.headerFill > 0) {
      const need = HEADER - this.headerFill;
      if (chunk.length < need) {
        chunk.copy(this.header, this.headerFill, 0);
        this.headerFill += chunk.length;
        return -1;
      }
      chunk.copy(this.header, this.headerFill, 0, need);
      this.headerFill = 0;
      pos = need;
      const len = this.checkHeader(this.header[0]!, this.header.readInt32BE(1));
      this.beginSplit(this.header[0]!, len, this.header, 0, HEADER);
    }
    const take = Math.min(this.remaining, chunk.length - pos);
    if (this.partial) {
      if (this.partialFill + take > this.partial.length) this.growPartial(this.partialFill + take);
      this.partialFill += chunk.copy(this.partial, this.partialFill, pos, pos + take);
    }
    this.remaining -= take;
    pos += take;
    if (this.remaining > 0) return -1;
    const frame = this.partial;
    this.partial = undefined;
    this.handler.onFrame(this.code, frame, 0, frame ? frame.length : 0);
    return pos;
  }

  /** Doubles the split frame's buffer until `need` bytes fit, never past the frame (which ends it at its exact size). */
  private growPartial(need: number): void {
    const old = this.partial!;
    let size = old.length * 2;
    while (size < need) size *= 2;
    const grown = Buffer.allocUnsafe(Math.min(size, this.partialFill + this.remaining));
    old.copy(grown, 0, 0, this.partialFill);
    this.partial = grown;
  }
}
