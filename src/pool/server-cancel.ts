/**
 * Cancel requests for one server connection. Each goes out on a socket of its own, holds back
 * while pgway's own statements run ahead of the client's (a cancel must not fail those), and is
 * settled before the connection moves on to another client, so that it can never reach that
 * client's statement.
 */
import type { Socket } from 'node:net';
import type { ServerTarget } from '../config/schema.js';
import * as msg from '../wire/messages.js';
import { openServerSocket } from './server-socket.js';

/** What a cancel needs to know of its connection, asked when the cancel socket is open. */
export interface CancelTarget {
  readonly target: ServerTarget;
  readonly pid: number;
  readonly secret: number;
  /** pgway's own statement is being answered ahead of the client's. */
  readonly ownStatementFirst: boolean;
  /** Requests ended or failed so far: unchanged while the server works on the same one. */
  readonly answered: number;
}

/**
 * A cancel that waited for the client's turn is sent just as the server reads the client's
 * statement, and PostgreSQL drops a cancel that arrives while it is still reading a command. So
 * when the client's statement is still unanswered this long after the server confirmed the
 * cancel, the cancel is sent again, at most REPEATS times.
 */
const REPEAT_AFTER_MS = 100;
const REPEATS = 2;

/** How long a cancel socket to the server may take to open, and the server to confirm a cancel on it. */
export const CANCEL_TIMEOUT_MS = 5000;

export class ServerCancel {
  /**
   * A cancel request sent whose effect may still be pending: resolves true once the server has
   * signalled the backend (and any repeat is done), false when it did not answer. Reuse waits for
   * it (see settle).
   */
  sent: Promise<boolean> | undefined;
  /** Cancels waiting for pgway's own statements ahead of the client's to be answered. */
  private turn: (() => void) | undefined;

  get waitingForTurn(): boolean {
    return this.turn !== undefined;
  }

  /** pgway's own statements ahead of the client's are answered (or the connection is gone). */
  takeTurn(): void {
    const turn = this.turn;
    this.turn = undefined;
    turn?.();
  }

  /**
   * Asks the server to cancel whatever `conn` runs. `stillWanted` is asked again once the cancel
   * socket is open and the client's turn has come, so a connection that has meanwhile moved on to
   * another client is not cancelled. `justSent`: the client's statement was written just now.
   */
  async send(conn: CancelTarget, stillWanted: () => boolean, timeoutMs: number, justSent = false): Promise<void> {
    const { socket } = await openServerSocket(conn.target, timeoutMs);
    socket.on('error', () => undefined);
    const deferred = conn.ownStatementFirst;
    if (deferred) {
      await new Promise<void>((resolve) => {
        const before = this.turn;
        this.turn = before ? () => { before(); resolve(); } : resolve;
      });
    }
    if (!stillWanted()) {
      socket.destroy();
      return;
    }
    // PostgreSQL acts on the cancel a moment after this: until then the connection must not move
    // on to another client's statement (see settle).
    // A statement just written may still be being read when the cancel lands, as one that waited for its turn.
    const sent = deferred || justSent ? this.sendUntilHeard(socket, conn, stillWanted, timeoutMs) : request(socket, conn, timeoutMs);
    const earlier = this.sent;
    this.sent = earlier ? Promise.all([earlier, sent]).then(([a, b]) => a && b) : sent;
    await sent;
  }

  /** Sends the cancel, and again while the client's statement has no answer (see REPEATS). */
  private async sendUntilHeard(socket: Socket, conn: CancelTarget, stillWanted: () => boolean, timeoutMs: number): Promise<boolean> {
    const answered = conn.answered;
    let signalled = await request(socket, conn, timeoutMs);
    for (let i = 0; signalled && i < REPEATS; i++) {
      await new Promise((resolve) => setTimeout(resolve, REPEAT_AFTER_MS));
      if (!stillWanted() || conn.answered !== answered) break;
      let again: Socket;
      try {
        again = (await openServerSocket(conn.target, timeoutMs)).socket;
      } catch {
        break; // nothing was sent: the cancel confirmed before is the last one
      }
      again.on('error', () => undefined);
      // Opening took a while (TLS): the statement may have ended, and the client's next one begun.
      if (!stillWanted() || conn.answered !== answered) {
        again.destroy();
        break;
      }
      signalled = await request(again, conn, timeoutMs);
    }
    return signalled;
  }

  /**
   * A cancel was sent: waits until the server signalled its backend, then runs `probe`, a
   * statement of pgway's own, which the cancel hits if it is still pending (its server error is
   * ignored); PostgreSQL drops a cancel that is pending when it next waits for a command. After
   * this no cancel sent earlier can reach another client's statement. Rejects when the server
   * never confirmed the cancel, or the probe failed otherwise: the connection cannot be trusted.
   */
  async settle(probe: () => Promise<void>): Promise<void> {
    const sent = this.sent;
    if (!sent) return;
    this.sent = undefined;
    if (!(await sent)) throw new Error('the server did not confirm a cancel request in time');
    try {
      await probe();
    } catch (err) {
      if (!(err instanceof Error && 'serverError' in err)) throw err; // the connection failed
    }
  }
}

/**
 * Writes a cancel request on its own open socket. Resolves true when the server closes the socket,
 * which it does once it has signalled the backend; false when it did not within `timeoutMs`.
 */
function request(socket: Socket, conn: CancelTarget, timeoutMs: number): Promise<boolean> {
  const signalled = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.end(msg.cancelRequest(conn.pid, conn.secret));
  return signalled;
}
