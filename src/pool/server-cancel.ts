/**
 * Cancel requests for one server connection. Each goes out on a socket of its own, holds back
 * while pgway's own statements run ahead of the client's (a cancel must not fail those), and is
 * settled before the connection moves on to another client, so that it can never reach that
 * client's statement.
 */
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
}

export class ServerCancel {
  /**
   * A cancel request sent whose effect may still be pending: resolves true once the server has
   * signalled the backend, false when it did not answer. Reuse waits for it (see settle).
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
   * another client is not cancelled.
   */
  async send(conn: CancelTarget, stillWanted: () => boolean, timeoutMs: number): Promise<void> {
    const { socket } = await openServerSocket(conn.target, timeoutMs);
    socket.on('error', () => undefined);
    if (conn.ownStatementFirst) {
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
    // on to another client's statement (see settle). The server closes the socket once it has
    // signalled the backend.
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
    this.sent = signalled;
    socket.end(msg.cancelRequest(conn.pid, conn.secret));
    await signalled;
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
