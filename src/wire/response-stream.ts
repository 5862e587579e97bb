/**
 * Walks the server's byte stream frame by frame and passes it on as ranges of the chunks it came
 * in (no copies), while the handler decides, when each frame's header is known, whether the frame
 * goes through or is swallowed, and may inject frames of its own between frames. A frame split
 * across chunks is passed through piecewise; its body is collected only when `interest` asks.
 */
import { MessageTooLargeError, ProtocolViolationError } from '../errors.js';

export interface ResponseHandler {
  /** The header of a frame is known. Return false to swallow the frame. May call `inject`. */
  onFrameStart(code: number): boolean;
  /** A frame is complete; `buf` is undefined when its body was not collected. May call `inject`. */
  onFrameEnd(code: number, buf: Buffer | undefined, start: number, end: number): void;
  /** Bytes for the client, in order. */
  emit(data: Buffer): void;
}

const HEADER = 5;

export class ResponseStream {
  private readonly header = Buffer.alloc(HEADER);
  private headerFill = 0;
  private remaining = 0;
  private code = 0;
  private passing = false;
  private partial: Buffer | undefined;
  private partialFill = 0;
  // Within push(): the chunk, where the pending pass-through run starts (-1: none) and where we are.
  private chunk: Buffer | undefined;
  private runStart = -1;
  private cursor = 0;

  constructor(
    private readonly handler: ResponseHandler,
    public interest: Uint8Array,
    private readonly maxFrameBytes: number,
  ) {}

  get atBoundary(): boolean {
    return this.headerFill === 0 && this.remaining === 0;
  }

  /** Emits `frame` at the current position: after everything already passed, before what follows. */
  inject(frame: Buffer): void {
    if (this.chunk) this.flushRun(this.cursor);
    this.handler.emit(frame);
    if (this.chunk) this.runStart = this.cursor;
  }

  push(chunk: Buffer): void {
    this.chunk = chunk;
    this.runStart = 0;
    this.cursor = 0;
    try {
      this.scan(chunk);
      this.flushRun(chunk.length);
    } finally {
      this.chunk = undefined;
    }
  }

  private scan(chunk: Buffer): void {
    const n = chunk.length;
    let pos = 0;
    if (this.remaining > 0) {
      pos = this.continueFrame(chunk, 0);
      if (pos < 0) return;
    } else if (this.headerFill > 0) {
      pos = this.completeHeader(chunk);
      if (pos < 0) return;
    }
    while (pos < n) {
      if (n - pos < HEADER) {
        // Hold the header fragment back until we know what the frame is.
        this.flushRun(pos);
        this.runStart = -1;
        chunk.copy(this.header, 0, pos, n);
        this.headerFill = n - pos;
        return;
      }
      const code = chunk[pos]!;
      const total = 1 + this.checkLength(chunk.readInt32BE(pos + 1));
      this.cursor = pos;
      const pass = this.handler.onFrameStart(code);
      if (!pass) this.flushRun(pos);
      if (pos + total <= n) {
        this.cursor = pos + total;
        if (!pass) this.runStart = pos + total;
        this.handler.onFrameEnd(code, chunk, pos, pos + total);
        pos += total;
        continue;
      }
      this.beginSplit(code, total, pass, chunk, pos, n);
      if (!pass) this.runStart = -1;
      return;
    }
  }

  private checkLength(len: number): number {
    if (len < 4) throw new ProtocolViolationError(`invalid message length ${len} from server`);
    if (len > this.maxFrameBytes) throw new MessageTooLargeError(len, this.maxFrameBytes);
    return len;
  }

  private beginSplit(code: number, total: number, pass: boolean, src: Buffer, from: number, to: number): void {
    this.code = code;
    this.passing = pass;
    this.remaining = total - (to - from);
    if (this.interest[code]) {
      this.partial = Buffer.allocUnsafe(total);
      this.partialFill = src.copy(this.partial, 0, from, to);
    } else {
      this.partial = undefined;
    }
  }

  /** The rest of a header that began in an earlier chunk; returns the position after the frame's start, or -1. */
  private completeHeader(chunk: Buffer): number {
    const need = HEADER - this.headerFill;
    if (chunk.length < need) {
      chunk.copy(this.header, this.headerFill, 0);
      this.headerFill += chunk.length;
      this.runStart = -1;
      return -1;
    }
    chunk.copy(this.header, this.headerFill, 0, need);
    const held = this.headerFill;
    this.headerFill = 0;
    const code = this.header[0]!;
    const total = 1 + this.checkLength(this.header.readInt32BE(1));
    this.cursor = 0;
    const pass = this.handler.onFrameStart(code);
    // The bytes held back from the previous chunk go out now; the rest of the header is in this chunk's run.
    if (pass) this.handler.emit(Buffer.from(this.header.subarray(0, held)));
    this.runStart = pass ? 0 : -1;
    this.beginSplit(code, total, pass, this.header, 0, HEADER);
    this.remaining = total - HEADER;
    if (this.partial) this.partialFill = HEADER;
    return this.continueFrame(chunk, need);
  }

  /** Feeds a frame that began earlier; returns where the next frame starts, or -1 when the chunk is used up. */
  private continueFrame(chunk: Buffer, pos: number): number {
    const take = Math.min(this.remaining, chunk.length - pos);
    if (this.partial) this.partialFill += chunk.copy(this.partial, this.partialFill, pos, pos + take);
    if (!this.passing) {
      this.flushRun(pos);
      this.runStart = pos + take;
    } else if (this.runStart < 0) {
      this.runStart = pos;
    }
    this.remaining -= take;
    pos += take;
    if (this.remaining > 0) return -1;
    const frame = this.partial;
    this.partial = undefined;
    this.cursor = pos;
    this.handler.onFrameEnd(this.code, frame, 0, frame ? frame.length : 0);
    return pos;
  }

  private flushRun(upTo: number): void {
    const chunk = this.chunk;
    if (!chunk || this.runStart < 0 || upTo <= this.runStart) return;
    this.handler.emit(this.runStart === 0 && upTo === chunk.length ? chunk : chunk.subarray(this.runStart, upTo));
    this.runStart = upTo;
  }
}
