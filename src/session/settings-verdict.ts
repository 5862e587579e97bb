/**
 * The server's verdict on what pgway lays on for a client before its requests run: the startup
 * settings of a session-mode login, and the client's settings laid on again on a pooled
 * connection. The client's request (or login reply) waits for it; a refusal ends the client with
 * the server's own error, as a direct connection's login would end. What waiting needs of the flow
 * is VerdictFlow.
 */
import { errorChannel, type ErrorEvent } from '../events.js';
import type { Pool } from '../pool/pool.js';
import type { ServerConnection } from '../pool/server-connection.js';
import * as msg from '../wire/messages.js';
import type { ClientLeaving } from './client-leaving.js';
import type { ClientReading } from './client-reading.js';
import type { FlowHost } from './flow-host.js';

/** What the wait for a verdict needs of the flow: its connection and pool now, and the send of its held frames. */
export interface VerdictFlow {
  readonly attachedServer: ServerConnection | undefined;
  /** The pool the client takes its connections from now (a RELOAD may change it). */
  readonly currentPool: Pool;
  /** Sends the held frames on to the attached server; a failure ends the client. */
  onServerReadyToSend(): void;
}

export class SettingsVerdict {
  constructor(
    private readonly flow: VerdictFlow,
    private readonly host: FlowHost,
    private readonly reading: ClientReading,
    private readonly leaving: ClientLeaving,
  ) {}

  // The closures of these two live apart from RequestFlow.leased(): there, V8 would make their
  // context on every lease (once per transaction), not just when they are needed.

  /**
   * Settings the server has not accepted yet: the client's request waits for the verdict, so it
   * never runs without them; a refusal ends the client as it would have at login.
   */
  dispatchOnceAccepted(conn: ServerConnection, sql: string): void {
    // Frames the client sends meanwhile wait too (see pump): none may run before the verdict.
    this.reading.clientHeld = true;
    conn.whenIdle(
      () => {
        this.flow.currentPool.markSettingsChecked(sql);
        if (this.flow.attachedServer !== conn) return;
        this.reading.releaseClient(conn);
        this.flow.onServerReadyToSend();
      },
      (err) => this.failOnServerError(err),
    );
  }

  /**
   * Session mode: the client sees its server's real process id, so pg_backend_pid() and
   * pg_terminate_backend() mean what they mean on a direct connection. A startup setting the
   * server refuses (a bad value, an unknown parameter) ends the login with the server's own
   * error, as on a direct connection.
   */
  finishLoginOnceIdle(conn: ServerConnection): void {
    conn.whenIdle(
      () => {
        this.host.finishLogin(conn.params, conn.pid);
        this.leaving.leaveIfDone();
      },
      (err) => this.failOnServerError(err),
    );
  }

  /** The server refused the client's settings, laid on again: the client ends as it would have at login. */
  onSettingsRefused(): void {
    const refused = this.flow.attachedServer?.takeSettingsError();
    if (refused && this.host.state !== 'closed') this.failAsServer(refused.sqlstate, refused.message, refused.fields);
  }

  /** Ends the client with the server's refusal of pgway's statement on its behalf, as a FATAL. */
  private failOnServerError(err: Error & { serverError?: { fields: Map<string, string> } }): void {
    const fields = err.serverError?.fields;
    this.flow.attachedServer?.takeSettingsError();
    this.failAsServer(fields?.get('C') ?? '08P01', fields?.get('M') ?? err.message, fields);
  }

  /** The server refused the client's settings: the client ends as PostgreSQL would have ended its login. */
  private failAsServer(sqlstate: string, message: string, fields: Map<string, string> | undefined): void {
    if (errorChannel.hasSubscribers) errorChannel.publish({ source: 'server', sqlstate } satisfies ErrorEvent);
    this.host.fail(msg.errorResponse({ severity: 'FATAL', sqlstate, message, detail: fields?.get('D'), hint: fields?.get('H') }));
  }
}
