/**
 * pgway's own questions to a server connection between a client's transactions: whether the
 * session still holds the state behind a pin (see SessionState.takeCheckDue), and how the server
 * stored a setting before the client leaves the connection (SessionState.takeReadBackDue). The
 * client's next frames wait for the answer; the flow says what happens after it (QuestionWaits).
 */
import type { Answer, ServerConnection } from '../pool/server-connection.js';
import type { FlowHost } from './flow-host.js';
import { STILL_HELD_QUESTIONS, type CheckedPin } from './pins.js';
import type { SessionContext } from './session-context.js';
import type { SessionState } from './session-state.js';

/** What asking needs of the flow: the client's frames wait for the answer, then go on. */
export interface QuestionWaits {
  /** The connection the client holds now: another one (or none) once it left. */
  readonly attachedServer: ServerConnection | undefined;
  /** The client's next frames wait until the server has answered (see RequestFlow.pump). */
  holdClient(): void;
  /** pgway's question between transactions is answered: the client's frames go on, or it leaves. */
  resumeAfterQuestion(server: ServerConnection): void;
}

export class OwnQuestions {
  /** A question is in flight: the client's last request is answered, and only pgway's statement runs. */
  asking = false;

  constructor(
    private readonly flow: QuestionWaits,
    private readonly host: FlowHost,
    private readonly ctx: SessionContext,
    private readonly session: SessionState,
  ) {}

  /**
   * Asks the server a question of pgway's own between transactions (ServerConnection.ask). Until it
   * answers, the client's next request waits (see pump); `onAnswer` gets undefined when the
   * question failed, and is not called if the client left meanwhile.
   */
  private ask(server: ServerConnection, question: Buffer, onAnswer: (answer: Answer | undefined) => void): void {
    this.flow.holdClient();
    server.ask(question);
    this.asking = true;
    const answered = (): void => {
      this.asking = false;
      const answer = server.takeAnswer();
      if (this.flow.attachedServer !== server) return; // the client left meanwhile
      try {
        onAnswer(answer);
      } catch (err) {
        this.host.fail(err);
      }
    };
    server.whenIdle(answered, answered);
  }

  /**
   * The state behind the one pin left may be gone (the client unlocked an advisory lock or tried
   * to take one; it dropped the last temp relation pgway knew of): the server is asked whether
   * the session still holds it.
   */
  askStillHeld(server: ServerConnection, reason: CheckedPin): void {
    this.ask(server, STILL_HELD_QUESTIONS[reason], (answer) => {
      if (answer === undefined) {
        this.session.checkLater(reason); // pgway's question failed: asked again later
      } else if (answer.rows === 0) {
        this.session.unpin(reason);
        const next = this.session.takeCheckDue();
        if (next) return this.askStillHeld(server, next); // the client's frames still wait
      }
      this.flow.resumeAfterQuestion(server);
    });
  }

  /**
   * A setting the server stores in a form of its own (see SessionState.takeReadBackDue) is asked for
   * before the client leaves the connection that holds it.
   */
  readSettingBack(server: ServerConnection, name: string, question: Buffer): void {
    this.ask(server, question, (answer) => {
      // Without an answer the setting stays as the client wrote it, to be laid on as such.
      if (answer?.first === undefined) this.ctx.log.warn({ client: this.host.id, setting: name }, 'could not read back a setting the server stored');
      else this.session.settingReadBack(server, name, answer.first);
      this.flow.resumeAfterQuestion(server);
    });
  }
}
