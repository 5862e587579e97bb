/**
 * A pooled client's CancelRequests: what each one is for is decided when it arrives, as PostgreSQL
 * signals its backend at once. It goes to the statement the client's server connection runs, or
 * answers the single request still waiting for a connection, or is held for pipelined requests
 * until they reach one (cancelOnDispatch). What cancelling needs of the flow is CancelledFlow.
 */
import { QueryCanceledError } from '../errors.js';
import { errorChannel, type ErrorEvent } from '../events.js';
import { CANCEL_TIMEOUT_MS } from '../pool/server-cancel.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { Frontend } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import type { ClientLeaving } from './client-leaving.js';
import type { ClientReading } from './client-reading.js';
import type { FlowHost } from './flow-host.js';
import type { HeldFrames } from './held-frames.js';
import type { SessionContext } from './session-context.js';

/** What cancelling needs of the flow: its server connection, or its wait for one, and its pump. */
export interface CancelledFlow {
  readonly attachedServer: ServerConnection | undefined;
  readonly isWaiting: boolean;
  /** pgway's own question between transactions runs on the connection (see OwnQuestions). */
  readonly askingOwnQuestion: boolean;
  /** The request waiting for a server connection was answered without one: the client waits no more. */
  stopWaiting(): void;
  /** Sends held frames on, taking a server connection when a request is complete. */
  pump(): void;
}

export class RequestCancels {
  /** A cancel came while pipelined requests waited: it is sent on once they reach a server connection. */
  cancelOnDispatch = false;
  /** Times every request the client had sent was answered: a cancel that came before is spent (see cancelRunning). */
  caughtUp = 0;

  constructor(
    private readonly flow: CancelledFlow,
    private readonly host: FlowHost,
    private readonly ctx: SessionContext,
    private readonly held: HeldFrames,
    private readonly reading: ClientReading,
    private readonly leaving: ClientLeaving,
  ) {}

  /**
   * A CancelRequest carrying this client's key arrived: cancel what its server runs now, if
   * anything. What it is for is decided now, as PostgreSQL signals the backend at once: with
   * nothing running (idle, in a transaction block) it is dropped; otherwise it goes only until the
   * requests the client has sent so far are answered (see caughtUp), never to one it sends once it
   * has their answers. Returns the cancel under way, which settles once it was sent and confirmed,
   * dropped or failed; undefined when there is none (or it is held for requests still waiting for
   * a server connection, see cancelOnDispatch).
   */
  cancelRunning(justSent = false): Promise<void> | undefined {
    const server = this.flow.attachedServer;
    if (!server) {
      if (this.flow.isWaiting && !this.cancelWaitingRequest()) this.cancelOnDispatch = true;
      return undefined;
    }
    if (!server.running) return undefined;
    // Only pgway's question runs, and the client has sent nothing since its last answer: as far as
    // the client goes, the server is idle, and PostgreSQL would drop the cancel.
    if (this.flow.askingOwnQuestion && this.held.count === 0) return undefined;
    const caughtUp = this.caughtUp;
    return server
      .cancel(() => this.flow.attachedServer === server && server.running && this.caughtUp === caughtUp, CANCEL_TIMEOUT_MS, justSent)
      .catch((err: unknown) => this.ctx.log.warn({ err }, 'cancel request failed'));
  }

  /**
   * The request waiting for a server connection never reached PostgreSQL: it is answered as a
   * cancelled statement would be (57014, then ReadyForQuery). Only a single held request ended by
   * a Query or Sync is answered here (returns true). Several pipelined requests run as they would
   * on a direct connection, where a cancel stops the statement running, not those queued behind
   * it: the cancel is sent on as soon as they reach a server connection.
   */
  private cancelWaitingRequest(): boolean {
    const held = this.held;
    const last = held.count - 1;
    const end = held.codes[last];
    if ((end !== Frontend.Query && end !== Frontend.Sync) || held.requests !== 1) return false;
    this.flow.stopWaiting();
    held.clear();
    const error = new QueryCanceledError();
    if (errorChannel.hasSubscribers) errorChannel.publish({ source: 'gateway', sqlstate: error.sqlstate } satisfies ErrorEvent);
    this.host.send(Buffer.concat([error.toFrame(), msg.READY_IDLE]));
    this.leaving.leaveIfDone();
    return true;
  }

  /**
   * A cancel that came while the client's requests waited (cancelOnDispatch) goes out now that they are written. They
   * may be answered before it reaches the server, and the client then sends its next request: until
   * the server has taken the cancel (and drops it if the backend is idle), that request waits, as a
   * client waiting for its cancel's connection to close would on a direct connection.
   */
  sendHeldCancel(): void {
    this.cancelOnDispatch = false;
    const spent = this.cancelRunning(true);
    if (!spent) return;
    this.reading.heldCancelOut = true;
    void spent.finally(() => {
      this.reading.heldCancelOut = false;
      if (this.host.state !== 'ready') return;
      this.reading.resumeReading();
      try {
        this.flow.pump();
      } catch (err) {
        this.host.fail(err);
      }
    });
  }
}
