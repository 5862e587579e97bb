/**
 * How a pooled client leaves, as it leaves PostgreSQL: after Terminate, or an error PostgreSQL ends
 * a session for, what it sent before still runs and is answered, then it goes (README, "Leaving").
 * Inside a COPY from the client, that end is read as the server would read it. The flow asks here
 * whether the client is leaving (terminating) at each answer; what leaving needs of the flow is
 * LeavingFlow.
 */
import { ProtocolViolationError, UnknownMessageTypeError, type GatewayError } from '../errors.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { Frontend } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import type { FlowHost } from './flow-host.js';
import type { HeldFrames } from './held-frames.js';

/** What leaving needs of the flow: the server connection it holds or waits for, and its writes. */
export interface LeavingFlow {
  readonly attachedServer: ServerConnection | undefined;
  readonly isWaiting: boolean;
  /** Writes the held frames to the attached server. */
  dispatch(): void;
}

export class ClientLeaving {
  /** The client sent Terminate after requests not yet answered: it leaves once they are. */
  terminating = false;
  /** The client's Terminate went to the server, to be read inside a COPY (see onTerminate): it leaves when the server closes. */
  terminateSent = false;
  /** Why the client is ending, when it is not a Terminate (see endAfterAnswers). */
  private endError: GatewayError | undefined;

  constructor(
    private readonly flow: LeavingFlow,
    private readonly host: FlowHost,
    private readonly held: HeldFrames,
  ) {}

  /**
   * As PostgreSQL does: what the client sent before Terminate still runs, and the client leaves
   * once it is answered (see endAfterAnswers). During a COPY from the client that the frames
   * before it do not end, the server itself answers the Terminate (a protocol error, then it
   * closes), as on a direct connection.
   */
  onTerminate(buf: Buffer, start: number, end: number): void {
    const server = this.flow.attachedServer;
    if (server?.inCopyIn && !this.held.complete && !this.held.endsCopy) {
      this.held.push(Frontend.Terminate, buf, start, end);
      this.flow.dispatch();
      this.terminating = true;
      this.terminateSent = true;
      return;
    }
    this.endAfterAnswers();
  }

  /**
   * The client leaves: it sent Terminate, or `err`, what PostgreSQL ends a session for (a message of
   * a type it does not accept, one too long). As there, what it sent before still runs and is
   * answered, then it goes. Of frames after its last whole request, only Executes (with what they
   * need) are sent, as PostgreSQL runs them without a Sync; the connection, unsynced, is then
   * closed, which aborts their implicit transaction as the backend's exit would. It goes at once
   * when nothing is owed: the server waits for it (a COPY from it that the frames do not end, a
   * request answered up to a Flush), or it waits for a connection with nothing to run.
   */
  endAfterAnswers(err?: GatewayError): void {
    const server = this.flow.attachedServer;
    this.held.settleTail(msg.FLUSH);
    this.endError = err;
    if (server?.inCopyIn && !this.held.endsCopy) {
      this.leaveInCopy();
      return;
    }
    const answersOwed = server !== undefined && server.busy && !server.waitsForClient;
    if (this.held.count > 0 || answersOwed) this.terminating = true;
    else this.leave();
  }

  /**
   * A leaving client's request without its Sync has all its answers forwarded (RequestFlow.onAwaitingClient):
   * it leaves now, as it does on a direct connection, or inside the COPY the server waits in.
   */
  leaveAwaited(server: ServerConnection | undefined): void {
    if (!server?.inCopyIn) {
      this.leave();
    } else if (this.endError) {
      // The COPY began after the client's end was read (it came in the same write): that end is
      // read inside the COPY, as on a direct connection.
      this.leaveInCopy();
    } else if (!this.terminateSent) {
      // So is a Terminate: the server refuses it (ERROR, then FATAL 08P01) and closes, as onTerminate has it.
      this.terminateSent = true;
      server.write(msg.TERMINATE);
    }
  }

  /**
   * The client's session ends during a COPY from it that its frames do not end, as PostgreSQL
   * reads that end inside the COPY: a frame of unknown type fails the COPY, and the unread rest of
   * it ends the session.
   */
  private leaveInCopy(): void {
    const err = this.endError;
    if (err instanceof UnknownMessageTypeError) {
      this.host.send(msg.errorResponse({
        severity: 'ERROR',
        sqlstate: err.sqlstate,
        message: `unexpected message type 0x${err.messageType.toString(16).toUpperCase().padStart(2, '0')} during COPY from stdin`,
      }));
      this.endError = new ProtocolViolationError('terminating connection because protocol synchronization was lost');
    }
    this.leave();
  }

  /** A client leaving (endAfterAnswers) whose requests are all answered goes now. */
  leaveIfDone(): void {
    if (this.terminating && !this.held.complete && !this.flow.isWaiting && this.flow.attachedServer?.busy !== true && this.host.state !== 'closed') this.leave();
  }

  /** The client leaves, with the error it was ending for, if any. */
  leave(): void {
    // Its session ends with the server's: the COPY's ERROR may come apart from the FATAL behind it.
    if (this.terminateSent) return;
    if (this.endError) this.host.fail(this.endError);
    else this.host.endQuietly();
  }
}
