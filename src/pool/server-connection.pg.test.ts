// The read buffer of a server connection is reused only while no client write still refers to it:
// the chunk that ends a client's transaction may still sit in that client's socket queue after the
// connection went on to the next client. A cancel that arrives while pgway's own statement runs
// ahead of the client's waits for the client's turn, and is repeated if the server dropped it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lab } from '../../test/harness/lab.js';
import * as msg from '../wire/messages.js';
import { Frontend } from '../wire/codes.js';
import { decodeErrorFields } from '../wire/decode.js';
import { Slot } from './expected-responses.js';
import { ServerConnection, type ServerSink } from './server-connection.js';

/**
 * Cancel sockets after the first `opens` take `ms` longer to open, as a TLS handshake to a distant
 * server does; the socket itself is real.
 */
const slowOpens = { after: Infinity, ms: 0, opens: 0 };
vi.mock('./server-socket.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('./server-socket.js')>();
  return {
    ...real,
    openServerSocket: async (...args: Parameters<typeof real.openServerSocket>) => {
      const opened = await real.openServerSocket(...args);
      if (++slowOpens.opens > slowOpens.after) await new Promise((resolve) => setTimeout(resolve, slowOpens.ms));
      return opened;
    },
  };
});

const opened: ServerConnection[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

/** A client; a slow one's socket queue still holds everything forwarded to it. */
class Client implements ServerSink {
  /** What was forwarded, as handed over (views), and as it was at that moment (copies). */
  readonly views: Buffer[] = [];
  readonly copies: Buffer[] = [];
  constructor(private readonly slow: boolean, private readonly onReady: () => void) {}
  onServerData(chunk: Buffer): boolean {
    this.views.push(chunk);
    this.copies.push(Buffer.from(chunk));
    return true;
  }
  holdsBytes(): boolean {
    return this.slow;
  }
  cork(): void {}
  uncork(): void {}
  onServerReady(): void {
    this.onReady();
  }
  onRequestEnd(): void {}
  onQuerySkipped(_query: number): void {}
  onRequestsUnanswered(_count: number): void {}
  onAwaitingClient(): void {}
  onServerLost(err: Error): void {
    throw err;
  }
  onSettingsRefused(): void {}
  clientStatementName(): string | undefined {
    return undefined;
  }
  definesSqlStatement(): boolean {
    return false;
  }
}

async function connect(): Promise<ServerConnection> {
  const { primary, users, database } = lab();
  const app = users.find((u) => u.name === 'app')!;
  const conn = new ServerConnection({ ...primary, dbname: database, sslmode: 'disable' }, { user: app.name, password: app.password });
  opened.push(conn);
  await conn.connect(5000);
  return conn;
}

function send(conn: ServerConnection, sink: ServerSink, sql: string): void {
  conn.attach(sink);
  conn.noteClientFrame(Frontend.Query);
  conn.write(msg.query(sql));
}

describe('a server connection handed to the next client', () => {
  it("does not read the next client's answer over bytes still queued for the previous client", async () => {
    const conn = await connect();
    const done = new Promise<[Client, Client]>((resolve) => {
      const second: Client = new Client(false, () => resolve([first, second]));
      const first: Client = new Client(true, () => {
        conn.detach();
        send(conn, second, `SELECT repeat('b', 300)`);
      });
      send(conn, first, `SELECT repeat('a', 300)`);
    });
    const [first, second] = await done;
    expect(second.views.length).toBeGreaterThan(0);
    expect(first.views).toEqual(first.copies);
  });
});

/** The SQLSTATEs of the ErrorResponses in what a client was forwarded. */
function errorCodes(chunks: Buffer[]): string[] {
  const all = Buffer.concat(chunks);
  const codes: string[] = [];
  for (let at = 0; at + 5 <= all.length; at += 1 + all.readInt32BE(at + 1)) {
    if (all[at] === 0x45 /* E */) codes.push(decodeErrorFields(all, at, at + 1 + all.readInt32BE(at + 1)).get('C') ?? '');
  }
  return codes;
}

/**
 * Runs pgway's own statement (as when it lays the client's settings on), answered to nobody, then
 * the client's, and cancels at once: the SQLSTATEs the client was answered.
 */
async function cancelBehindOwnStatement(conn: ServerConnection, own: string, clients: string): Promise<string[]> {
  const client = await new Promise<Client>((resolve) => {
    const c: Client = new Client(false, () => resolve(c));
    conn.attach(c);
    conn.write(msg.query(own));
    conn.expectSwallowed(Slot.Query);
    conn.noteClientFrame(Frontend.Query);
    conn.write(msg.query(clients));
    void conn.cancel();
  });
  return errorCodes(client.copies);
}

describe("a cancel while pgway's own statement runs ahead of the client's", () => {
  it("waits for the client's turn: pgway's statement finishes, the client's is cancelled", async () => {
    const conn = await connect();
    // Had the cancel hit pgway's statement, the client's would have run its 5 s and answered a row.
    expect(await cancelBehindOwnStatement(conn, 'SELECT pg_sleep(0.3)', 'SELECT pg_sleep(5)')).toEqual(['57014']);
  }, 15_000);

  // Sent as the server reads the client's statement, the cancel can come while PostgreSQL still
  // reads it, and be dropped: about one in twenty under load before pgway sent it again.
  it("cancels the client's statement every time, though sent as the server starts reading it", async () => {
    const outcomes: string[][] = [];
    for (let round = 0; round < 25; round++) {
      const conn = await connect();
      outcomes.push(await cancelBehindOwnStatement(conn, 'SELECT pg_sleep(0.02)', 'SELECT pg_sleep(2)'));
      conn.close();
    }
    expect(outcomes).toEqual(Array.from({ length: 25 }, () => ['57014']));
  }, 60_000);

  // The repeat's socket opens slowly: meanwhile the client's statement ends and its next one, on the
  // same connection (a session, or a transaction block), starts. The repeat must not stop that one.
  it("never sends a repeat once the client's statement has ended, however long its socket took", async () => {
    const conn = await connect();
    slowOpens.opens = 0;
    slowOpens.after = 1; // the first cancel's socket opens at once
    slowOpens.ms = 400;
    const answers: string[][] = [];
    try {
      await new Promise<void>((resolve) => {
        const c: Client = new Client(false, () => {
          answers.push(errorCodes(c.copies.splice(0)));
          if (answers.length === 2) return resolve();
          conn.noteClientFrame(Frontend.Query);
          conn.write(msg.query('SELECT pg_sleep(1)'));
        });
        conn.attach(c);
        conn.write(msg.query('SELECT pg_sleep(0.05)'));
        conn.expectSwallowed(Slot.Query);
        conn.noteClientFrame(Frontend.Query);
        void conn.cancel(() => conn.busy);
        // The client's statement reaches the server after the first cancel did, which found the
        // backend idle and was dropped: the repeat is sent for it, but opens only after it ended.
        setTimeout(() => conn.write(msg.query('SELECT pg_sleep(0.2)')), 90);
      });
    } finally {
      slowOpens.after = Infinity;
    }
    // The first answer is the client's statement, run to its end: 57014 there would mean the
    // scenario did not happen (the first cancel was not dropped).
    expect(answers).toEqual([[], []]);
  }, 15_000);
});
