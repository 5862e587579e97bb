/**
 * Client frames received but not yet written to a server: views into the received chunks (no
 * copies), kept in parallel arrays so holding a frame allocates nothing. Also coalesces adjacent
 * frames of one chunk into a single write when they are sent on.
 */
import { Frontend } from '../wire/codes.js';

export interface FrameWriter {
  write(data: Buffer): boolean;
}

export class HeldFrames {
  readonly codes: number[] = [];
  readonly bufs: Buffer[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  count = 0;
  bytes = 0;
  /** Frames that end a request (Query, Sync, Flush, FunctionCall) among the held ones. */
  private ends_ = 0;
  private runBuf: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  /** A request is complete: a server connection is worth taking. */
  get complete(): boolean {
    return this.ends_ > 0;
  }

  push(code: number, buf: Buffer, start: number, end: number): void {
    const i = this.count++;
    this.codes[i] = code;
    this.bufs[i] = buf;
    this.starts[i] = start;
    this.ends[i] = end;
    this.bytes += end - start;
    if (code === Frontend.Query || code === Frontend.Sync || code === Frontend.Flush || code === Frontend.FunctionCall) {
      this.ends_++;
    }
  }

  clear(): void {
    for (let i = 0; i < this.count; i++) this.bufs[i] = EMPTY;
    this.count = 0;
    this.bytes = 0;
    this.ends_ = 0;
  }

  /** Queues [start, end) of `buf` for writing, extending the current run when adjacent. */
  emit(buf: Buffer, start: number, end: number, out: FrameWriter): void {
    if (buf === this.runBuf && start === this.runEnd) {
      this.runEnd = end;
      return;
    }
    this.flush(out);
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  flush(out: FrameWriter): void {
    const buf = this.runBuf;
    if (!buf) return;
    this.runBuf = undefined;
    out.write(this.runStart === 0 && this.runEnd === buf.length ? buf : buf.subarray(this.runStart, this.runEnd));
  }
}

const EMPTY = Buffer.alloc(0);
