/**
 * A client logged in to the admin console (database `pgway` or `pgbouncer`). It speaks the simple
 * query protocol; its statements run one after another, each answered before the next one starts.
 * The session keeps the socket, and Terminate, as for any client.
 */
import { Frontend } from '../wire/codes.js';
import * as msg from '../wire/messages.js';

/** What the admin console reports about itself at login. */
export const ADMIN_PARAMS: ReadonlyMap<string, string> = new Map([
  ['server_version', '18.0 (pgway)'],
  ['server_encoding', 'UTF8'],
  ['client_encoding', 'UTF8'],
  ['DateStyle', 'ISO, MDY'],
  ['integer_datetimes', 'on'],
  ['standard_conforming_strings', 'on'],
]);

/** What an admin client needs from its session. */
export interface AdminClientHost {
  /** Whether the client is still there to be answered. */
  isOpen(): boolean;
  /** Sends `bytes`; false when the client should be read no further until onClientDrained. */
  send(bytes: Buffer): boolean;
  pauseReading(): void;
  resumeReading(): void;
  /** Ends the client after an error the console could not answer with an ErrorResponse. */
  failWith(err: unknown): void;
}

/**
 * Statements read and not yet answered, past which the client is read no further until they are:
 * an admin that pipelines statements faster than the console answers them (or never reads the
 * answers) makes them wait in the socket buffers, as PostgreSQL does, not in pgway.
 */
const MAX_UNANSWERED = 64;

export class AdminClient {
  private chain: Promise<void> = Promise.resolve();
  /** An extended-protocol message was refused: the rest up to Sync is skipped, as PostgreSQL does after an error. */
  private skippingToSync = false;
  /** The client is leaving (see endAfterAnswers). */
  private ending = false;
  /** Aborts the statement running now, for a CancelRequest carrying the console's key. */
  private running: AbortController | undefined;
  /** Messages read whose answers are not sent yet (see MAX_UNANSWERED). */
  private unanswered = 0;
  /** The client did not take what was sent to it: it is read again once it has. */
  private clientFull = false;
  private paused = false;

  constructor(
    private readonly run: (sql: string, signal: AbortSignal) => Promise<Buffer[]>,
    private readonly host: AdminClientHost,
  ) {}

  /**
   * The client leaves (Terminate, or a frame PostgreSQL ends a session for): as there, what it sent
   * before is answered first; `then` ends it. Frames after are not read.
   */
  endAfterAnswers(then: () => void): void {
    this.ending = true;
    this.chain = this.chain.then(then);
  }

  onFrame(code: number, buf: Buffer, start: number, end: number): void {
    if (this.ending) return;
    if (this.skippingToSync) {
      if (code !== Frontend.Sync) return;
      this.skippingToSync = false;
      this.answer(async () => [msg.READY_IDLE]);
      return;
    }
    if (code === Frontend.Sync) {
      this.answer(async () => [msg.READY_IDLE]);
      return;
    }
    if (code === Frontend.Flush) return; // nothing is pending to flush
    // COPY messages outside a COPY: PostgreSQL accepts and ignores them, and so does the console.
    if (code === Frontend.CopyData || code === Frontend.CopyDone || code === Frontend.CopyFail) return;
    if (code === Frontend.FunctionCall) {
      // A FunctionCall is a request of its own: its ReadyForQuery follows at once, no Sync comes.
      this.answer(async () => [REFUSED_EXTENDED, msg.READY_IDLE]);
      return;
    }
    if (code !== Frontend.Query) {
      // One error for the whole request (Parse, Bind, Describe, Execute...), ReadyForQuery at its Sync.
      this.skippingToSync = true;
      this.answer(async () => [REFUSED_EXTENDED]);
      return;
    }
    const sql = buf.toString('utf8', start + 5, end - 1);
    this.answer(async () => {
      const running = (this.running = new AbortController());
      try {
        return [...(await this.run(sql, running.signal)), msg.READY_IDLE];
      } finally {
        this.running = undefined;
      }
    });
  }

  /** A CancelRequest for the console: as in PostgreSQL, it reaches the statement running now, if any. */
  cancelRunning(): void {
    this.running?.abort();
  }

  /** The client took what was sent to it. */
  onClientDrained(): void {
    this.clientFull = false;
    this.readOnIfRoom();
  }

  /** Answers go out in the order the messages came, after any statement still running. */
  private answer(frames: () => Promise<Buffer[]>): void {
    if (++this.unanswered >= MAX_UNANSWERED) this.pause();
    this.chain = this.chain
      .then(frames)
      .then((out) => {
        this.unanswered--;
        if (!this.host.isOpen()) return;
        let room = true;
        for (const frame of out) room = this.host.send(frame);
        if (!room) {
          this.clientFull = true;
          this.pause();
        }
        this.readOnIfRoom();
      })
      .catch((err: unknown) => this.host.failWith(err));
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.host.pauseReading();
  }

  private readOnIfRoom(): void {
    if (!this.paused || this.clientFull || this.unanswered >= MAX_UNANSWERED / 2) return;
    this.paused = false;
    this.host.resumeReading();
  }
}

const REFUSED_EXTENDED = msg.errorResponse({
  severity: 'ERROR',
  sqlstate: '0A000',
  message: 'the admin console supports only the simple query protocol',
});
