/**
 * Client frames received but not yet written to a server: views into the received chunks (no
 * copies), kept in parallel arrays so holding a frame allocates nothing. Also coalesces adjacent
 * frames of one chunk into a single write when they are sent on.
 */
import { Frontend } from '../wire/codes.js';

export interface FrameWriter {
  write(data: Buffer): boolean;
}

const endsRequest = (code: number): boolean =>
  code === Frontend.Query || code === Frontend.Sync || code === Frontend.Flush || code === Frontend.FunctionCall;
const endsCopy = (code: number): boolean => code === Frontend.CopyDone || code === Frontend.CopyFail;

export class HeldFrames {
  readonly codes: number[] = [];
  readonly bufs: Buffer[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  count = 0;
  /**
   * What the held frames keep in memory: their bytes, plus `chunkBytes` for each chunk they are
   * views of, since a held view keeps its whole read buffer alive (directReads lends it). A client
   * sending tiny frames one write at a time is counted for the buffers it pins, not its bytes.
   */
  bytes = 0;
  private lastBuf: Buffer | undefined;
  /** Frames that end a request (Query, Sync, Flush, FunctionCall) among the held ones. */
  private ends_ = 0;
  private runBuf: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  constructor(private readonly chunkBytes = 0) {}

  /** A request is complete: a server connection is worth taking. */
  get complete(): boolean {
    return this.ends_ > 0;
  }

  /** How many whole requests are held. */
  get requests(): number {
    return this.ends_;
  }

  /** A CopyDone or CopyFail is held: the COPY from the client ends with these frames. */
  get endsCopy(): boolean {
    for (let i = 0; i < this.count; i++) if (endsCopy(this.codes[i]!)) return true;
    return false;
  }

  push(code: number, buf: Buffer, start: number, end: number): void {
    const i = this.count++;
    this.codes[i] = code;
    this.bufs[i] = buf;
    this.starts[i] = start;
    this.ends[i] = end;
    this.bytes += end - start;
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.bytes += this.chunkBytes;
    }
    if (endsRequest(code)) this.ends_++;
  }

  clear(): void {
    for (let i = 0; i < this.count; i++) this.bufs[i] = EMPTY;
    this.count = 0;
    this.bytes = 0;
    this.lastBuf = undefined;
    this.ends_ = 0;
  }

  /**
   * The client sends nothing more: frames after the last that ends a request or a COPY from the
   * client (CopyDone, CopyFail) are dropped, unless they Execute something, which PostgreSQL runs
   * (and answers) though no Sync follows: then `flush` is added, so that their answers come. So
   * it is after a COPY's end, since an Execute may have begun that COPY: the server keeps its
   * CommandComplete until a Flush or Sync (where a Query began the COPY, the Flush does nothing).
   */
  settleTail(flush: Buffer): void {
    let n = this.count;
    while (n > 0 && !endsRequest(this.codes[n - 1]!) && !endsCopy(this.codes[n - 1]!)) {
      if (this.codes[n - 1] === Frontend.Execute) {
        this.push(Frontend.Flush, flush, 0, flush.length);
        return;
      }
      n--;
    }
    for (let i = n; i < this.count; i++) {
      this.bytes -= this.ends[i]! - this.starts[i]!;
      this.bufs[i] = EMPTY;
    }
    this.count = n;
    this.lastBuf = n > 0 ? this.bufs[n - 1] : undefined;
    if (n > 0 && endsCopy(this.codes[n - 1]!)) this.push(Frontend.Flush, flush, 0, flush.length);
  }

  /** The first `n` frames were written: the rest stay held, first. */
  keepFrom(n: number): void {
    const count = this.count;
    const bufs = this.bufs.slice(n, count);
    const [codes, starts, ends] = [this.codes.slice(n, count), this.starts.slice(n, count), this.ends.slice(n, count)];
    this.clear();
    for (let i = 0; i < bufs.length; i++) this.push(codes[i]!, bufs[i]!, starts[i]!, ends[i]!);
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
