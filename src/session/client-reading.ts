/**
 * Why a pooled client is read no further, and when it is read again: each reason to stop is a flag
 * here, set where it begins, and its end reads the client again only if no other reason still
 * holds (resumeReading). The RequestFlow sets and reads the flags on its path; what pausing needs
 * of it is the server connection it holds now (ReadingFlow).
 */
import type { ServerConnection } from '../pool/server-connection.js';
import type { FlowHost } from './flow-host.js';

/**
 * A client waiting for a server connection is read no further once its held requests pass this:
 * what it pipelines meanwhile waits in the socket buffers, not in pgway (PgBouncer reads one
 * packet buffer). Below it the client is still read, so a client that leaves is seen leaving; past
 * it, not before it is served (README, "Leaving"): libuv reports the end of a connection only to a
 * read, after every byte before it.
 */
const MAX_HELD_WHILE_WAITING = 1 << 20;

/**
 * A client is read no further while its server owes it this many answers, until it owes half as
 * many: the answers pgway gives itself (a CloseComplete for a statement never prepared, say) wait
 * their turn behind the server's in the connection's expected-response FIFO with no server bytes
 * behind them, so a client pipelining those behind a long statement would have that FIFO grow for
 * as long as it sent. PostgreSQL, running the statement, reads nothing meanwhile.
 */
export const MAX_OWED = 1 << 14;

/** What the reading of a client needs of its flow. */
export interface ReadingFlow {
  /** The connection the client holds now, if any: a full socket of it keeps the client unread. */
  readonly attachedServer: ServerConnection | undefined;
}

export class ClientReading {
  /**
   * The client's next frames wait, its reading paused, until the server has answered: pgway's own
   * question between requests (OwnQuestions.askStillHeld), or a group whose prepared-statement changes an
   * error may take back (RequestWriter.waitForAnswers). Lifted by releaseClient.
   */
  clientHeld = false;
  /** The held frames wait for pgway's own Describe of a statement (RequestWriter.waitForDescription). */
  describing = false;
  /**
   * A cancel held for requests that waited (RequestFlow's cancelOnDispatch) went out with them and is not spent
   * yet: the client's next requests wait until it is, so that it cannot reach them (see RequestFlow.dispatch).
   */
  heldCancelOut = false;
  /** The client's reading is paused until it gets a server connection (MAX_HELD_WHILE_WAITING). */
  pausedWhileWaiting = false;
  /** The client's reading is paused until it takes what is queued towards it (see pauseUntilClientDrained). */
  private pausedForClient = false;
  /** The client's reading is paused until its server owes it fewer answers (MAX_OWED). */
  pausedForAnswers = false;

  constructor(
    private readonly flow: ReadingFlow,
    private readonly host: FlowHost,
  ) {}

  resumeAfterWait(): void {
    this.pausedWhileWaiting = false;
    this.resumeReading();
  }

  /**
   * Reads the client again, unless another reason to stop still holds (each one's end calls this):
   * a full server socket among them (see pauseUntilDrained).
   */
  resumeReading(): void {
    if (this.pausedForClient || this.clientHeld || this.pausedWhileWaiting || this.heldCancelOut || this.pausedForAnswers) return;
    if (this.flow.attachedServer?.writable === false) return;
    this.host.resumeReading();
  }

  /** While the client waits for a server connection, it is read no further past MAX_HELD_WHILE_WAITING. */
  readNoFurtherPastBound(heldBytes: number): void {
    if (heldBytes > MAX_HELD_WHILE_WAITING && !this.pausedWhileWaiting) {
      this.pausedWhileWaiting = true;
      this.host.pauseReading();
    }
  }

  /**
   * The client's queue is full: it is read no further until it takes what is queued, as PostgreSQL,
   * blocked writing to it, reads nothing more. Pausing its server (see RequestFlow.onServerData) is not enough:
   * answers pgway gives itself (a CloseComplete or ParseComplete for a statement the connection
   * keeps, a Parse answered without a server) have no server bytes behind them, and a client that
   * never reads would have pgway queue them without bound.
   */
  pauseUntilClientDrained(): void {
    this.pausedForClient = true;
    this.host.pauseReading();
  }

  /** The client took the bytes queued towards it: it is read again, if that was why it was not. */
  onClientDrained(): void {
    if (!this.pausedForClient) return;
    this.pausedForClient = false;
    this.resumeReading();
  }

  /** The server's socket is full: the client's socket waits, and with it the client's bytes. */
  pauseUntilDrained(server: ServerConnection): void {
    this.host.pauseReading();
    server.whenDrained(() => this.resumeReading());
  }

  /** The server owes the client MAX_OWED answers: the client's socket waits until it owes half as many. */
  pauseUntilAnswered(server: ServerConnection): void {
    this.pausedForAnswers = true;
    this.host.pauseReading();
    server.whenOwedAtMost(MAX_OWED / 2, () => {
      this.pausedForAnswers = false;
      this.resumeReading();
    });
  }

  /** The server has answered what the client's frames waited for (see clientHeld): they may come again. */
  releaseClient(server: ServerConnection): void {
    this.clientHeld = false;
    // A description waited for behind a whole request arrives before its ReadyForQuery (see RequestFlow.serverReady).
    this.describing = false;
    server.whenDrained(() => this.resumeReading());
  }
}
