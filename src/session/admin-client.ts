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
  send(bytes: Buffer): void;
  /** Ends the client after an error the console could not answer with an ErrorResponse. */
  failWith(err: unknown): void;
}

export class AdminClient {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly run: (sql: string) => Promise<Buffer[]>,
    private readonly host: AdminClientHost,
  ) {}

  onFrame(code: number, buf: Buffer, start: number, end: number): void {
    if (code !== Frontend.Query) {
      this.host.send(msg.errorResponse({ severity: 'ERROR', sqlstate: '0A000', message: 'the admin console supports only the simple query protocol' }));
      if (code === Frontend.Sync) this.host.send(msg.READY_IDLE);
      return;
    }
    const sql = buf.toString('utf8', start + 5, end - 1);
    this.chain = this.chain
      .then(() => this.run(sql))
      .then((frames) => {
        if (!this.host.isOpen()) return;
        for (const frame of frames) this.host.send(frame);
        this.host.send(msg.READY_IDLE);
      })
      .catch((err: unknown) => this.host.failWith(err));
  }
}
