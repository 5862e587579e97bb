// A cancel is for what runs when it arrives, and the client hears when it is spent. PostgreSQL
// closes a CancelRequest's connection only once it has signalled the backend, so a client that
// waits for that close (libpq's PQcancel, psql, most drivers' blocking cancel) knows its cancel
// can no longer land; one for an idle backend (between statements, idle in a transaction block)
// is dropped, and the client's next statement runs untouched. Through pgway the same holds when
// pgway's own cancel connection to the server takes a while to open (TLS, a distant server): the
// proxy below stands in for that by answering the SSLRequest late (sslmode: prefer), so every run
// sees the same long window.
import net from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { cancelRequestPacket } from './helpers/raw-client.js';
import { sleep, sqlstate, waitFor, within } from './helpers/pg-helpers.js';

/** A proxy to the lab primary that answers an SSLRequest with 'N' only after `delayMs` (a slow TLS-capable server). */
interface SlowSslProxy {
  port: number;
  /** CancelRequests PostgreSQL has answered (closed their connection) so far. */
  readonly cancelsAnswered: number;
  close(): void;
}

/**
 * A proxy to the lab primary that answers an SSLRequest with 'N' only after `delayMs` (a slow
 * TLS-capable server), and counts the CancelRequests that PostgreSQL has answered.
 */
async function slowSslAnswerProxy(delayMs: number): Promise<SlowSslProxy> {
  const { primary } = lab();
  const sockets = new Set<net.Socket>();
  let cancelsAnswered = 0;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    let first: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      first = Buffer.concat([first, chunk]);
      if (first.length < 8) return;
      client.removeListener('data', onData);
      client.pause();
      const isSsl = first.readInt32BE(0) === 8 && first.readInt32BE(4) === 80877103;
      const rest = isSsl ? first.subarray(8) : first;
      const go = (): void => {
        const upstream = net.connect({ host: primary.host, port: primary.port, allowHalfOpen: true });
        sockets.add(upstream);
        const isCancel = (packet: Buffer): boolean => packet.length >= 8 && packet.readInt32BE(4) === 80877102;
        if (rest.length > 0 ? isCancel(rest) : false) upstream.once('end', () => cancelsAnswered++);
        else if (rest.length === 0) client.once('data', (packet: Buffer) => { if (isCancel(packet)) upstream.once('end', () => cancelsAnswered++); });
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      };
      if (isSsl) {
        setTimeout(() => {
          if (client.destroyed) return;
          client.write('N');
          go();
        }, delayMs);
      } else {
        go();
      }
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get cancelsAnswered() {
      return cancelsAnswered;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

let proxy: SlowSslProxy;
let gateway: Gateway;
let gwPort: number;

beforeAll(async () => {
  const l = lab();
  proxy = await slowSslAnswerProxy(400);
  const yaml = `
listen: { host: 127.0.0.1, port: 0 }
http: { enabled: false }
log: { level: silent }
auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret }
pool: { mode: transaction, size: 1, query_wait_timeout_ms: 10000 }
databases:
  app:
    primary: { host: 127.0.0.1, port: ${proxy.port}, dbname: ${l.database}, sslmode: prefer }
`;
  gateway = new Gateway(parseConfig(yaml, 'cancel-answered.yaml'), pino({ level: 'silent' }));
  gwPort = (await gateway.start()).port;
});

afterAll(async () => {
  await gateway?.shutdown(200);
  proxy?.close();
});

function directClient(): pg.Client {
  const l = lab();
  const c = new pg.Client({ host: l.primary.host, port: l.primary.port, user: 'app', password: 'app-secret', database: l.database });
  c.on('error', () => undefined);
  return c;
}

function gatewayClient(): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port: gwPort, user: 'app', password: 'app-secret', database: 'app' });
  c.on('error', () => undefined);
  return c;
}

/** Sends a CancelRequest with `client`'s key to host:port and resolves once the peer closes the socket (as PQcancel waits). */
function cancelAndWaitForClose(host: string, port: number, client: pg.Client): Promise<void> {
  const key = client as unknown as { processID: number; secretKey: number };
  return within(5000, 'cancel socket close', new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.end(cancelRequestPacket(key.processID, key.secretKey)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  }));
}

/** The client's next statement after a cancel it sent while idle inside a transaction block. */
async function nextStatementAfterIdleCancel(client: pg.Client, host: string, port: number): Promise<string> {
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT 1');
    // Idle in the transaction block: nothing runs. The cancel is answered (socket closed) ...
    await cancelAndWaitForClose(host, port, client);
    // ... and only then does the client run its next statement.
    try {
      const r = await within(5000, 'next statement', client.query<{ done: string }>("SELECT pg_sleep(0.8), 'ran' AS done"));
      return r.rows[0]!.done;
    } catch (err) {
      return sqlstate(err) ?? String(err);
    }
  } finally {
    await Promise.race([client.end().catch(() => undefined), sleep(2000)]);
  }
}

/** A cancel for a statement that ends on its own just before the cancel would land; then the client's next statement. */
async function nextStatementAfterLateCancel(client: pg.Client, host: string, port: number): Promise<string[]> {
  await client.connect();
  try {
    await client.query('SELECT 1');
    const first = client.query<{ done: string }>("SELECT pg_sleep(0.15), 'first ran' AS done").then((r) => r.rows[0]!.done, (e) => sqlstate(e) ?? String(e));
    await sleep(50);
    await cancelAndWaitForClose(host, port, client);
    const firstOutcome = await first; // either cancelled or ran; both are fine
    try {
      const r = await within(5000, 'next statement', client.query<{ done: string }>("SELECT pg_sleep(0.8), 'second ran' AS done"));
      return [firstOutcome, r.rows[0]!.done];
    } catch (err) {
      return [firstOutcome, sqlstate(err) ?? String(err)];
    }
  } finally {
    await Promise.race([client.end().catch(() => undefined), sleep(2000)]);
  }
}

/**
 * Cancels a statement that would run 5 s: what it ended with. `onCancelClosed` runs as soon as the
 * cancel's connection is closed.
 */
async function cancelRunningStatement(client: pg.Client, host: string, port: number, tag: string, onCancelClosed = (): void => undefined): Promise<string> {
  await client.connect();
  try {
    await client.query('SELECT 1');
    const running = client.query(`SELECT pg_sleep(5) /* ${tag} */`).then(() => 'ran', (e: unknown) => sqlstate(e) ?? String(e));
    await waitFor('the statement running', async () => (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1", [`%${tag} */`])).rows.length > 0);
    await cancelAndWaitForClose(host, port, client);
    onCancelClosed();
    return await within(5000, 'the cancelled statement', running);
  } finally {
    await Promise.race([client.end().catch(() => undefined), sleep(2000)]);
  }
}

describe('a cancel for a running statement', () => {
  it('PostgreSQL closes its connection once the backend is signalled, and the statement is cancelled', async () => {
    const l = lab();
    expect(await cancelRunningStatement(directClient(), l.primary.host, l.primary.port, 'ca-direct')).toBe('57014');
  });

  it("through pgway its connection closes only once PostgreSQL has answered pgway's own cancel", async () => {
    const answeredBefore = proxy.cancelsAnswered;
    let answeredAtClose = answeredBefore;
    const outcome = await cancelRunningStatement(gatewayClient(), '127.0.0.1', gwPort, 'ca-gateway', () => {
      answeredAtClose = proxy.cancelsAnswered;
    });
    expect(outcome).toBe('57014');
    expect(answeredAtClose).toBe(answeredBefore + 1);
  });
});

describe('a cancel the client already saw answered (its socket closed)', () => {
  it('sent while idle in a transaction block: PostgreSQL drops it and the next statement runs', async () => {
    const l = lab();
    expect(await nextStatementAfterIdleCancel(directClient(), l.primary.host, l.primary.port)).toBe('ran');
  });

  it('sent while idle in a transaction block: through pgway the next statement runs too', async () => {
    // warm the pool (the only server connection is opened through the slow proxy)
    const warm = gatewayClient();
    await warm.connect();
    await warm.query('SELECT 1');
    await warm.end();
    expect(await nextStatementAfterIdleCancel(gatewayClient(), '127.0.0.1', gwPort)).toBe('ran');
  });

  it("racing its statement's end: PostgreSQL never lets it reach the next statement", async () => {
    const l = lab();
    const [first, second] = await nextStatementAfterLateCancel(directClient(), l.primary.host, l.primary.port);
    expect(['first ran', '57014']).toContain(first);
    expect(second).toBe('second ran');
  });

  it("racing its statement's end: through pgway (pool of 1) it does not reach the client's next transaction", async () => {
    const [first, second] = await nextStatementAfterLateCancel(gatewayClient(), '127.0.0.1', gwPort);
    expect(['first ran', '57014']).toContain(first);
    expect(second).toBe('second ran');
  });
});
