// Cancels of requests that waited for a server connection (transaction mode, pool of 1). pgway
// holds such a cancel and sends it on when the request reaches a server connection, again if the
// server was still reading the statement; it is spent once the request is answered, also one ended
// by Flush instead of Sync (Parse/Bind/Execute/Flush: psycopg pipelines, drivers that describe
// first), so the statement the client sends once it has that answer runs, as on a direct
// connection. A request cancelled or left behind while it waits never runs later, and a cancel
// needs both halves of the client's key.
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { cancelRequestPacket, cstring, errorFields, queryMessage, RawClient, rawTrustLogin, readCycle, startupPacket, typedMessage } from './helpers/raw-client.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS cq_rows');
  await adminQuery('CREATE TABLE cq_rows (id int PRIMARY KEY, tag text)');
  await adminQuery('GRANT ALL ON cq_rows TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS cq_rows');
});

const opened: RawClient[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) c.destroy();
  await sleep(200);
});

async function login(name: string): Promise<{ client: RawClient; pid: number; secret: number }> {
  const r = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', application_name: name });
  opened.push(r.client);
  return r;
}

async function query(c: RawClient, sql: string): Promise<{ rows: (string | null)[][]; errors: string[] }> {
  c.write(queryMessage(sql));
  return readCycle(c);
}

async function rowsWithId(id: number): Promise<number> {
  return (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM cq_rows WHERE id = $1', [id])).rows[0]!.n;
}

const parse = (sql: string): Buffer => typedMessage('P', Buffer.concat([cstring(''), cstring(sql), Buffer.from([0, 0])]));
const bind = (): Buffer => typedMessage('B', Buffer.concat([cstring(''), cstring(''), Buffer.from([0, 0, 0, 0, 0, 0])]));
const execute = (): Buffer => typedMessage('E', Buffer.concat([cstring(''), Buffer.from([0, 0, 0, 0])]));
const FLUSH = typedMessage('H');
const SYNC = typedMessage('S');

function cancelAndWaitForClose(host: string, port: number, pid: number, secret: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.end(cancelRequestPacket(pid, secret)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

/** Logs in to the lab primary directly as plainuser (cleartext password), returning the BackendKeyData. */
async function directLogin(): Promise<{ client: RawClient; pid: number; secret: number }> {
  const l = lab();
  const client = await RawClient.connect({ host: l.primary.host, port: l.primary.port });
  client.write(startupPacket({ user: 'plainuser', database: l.database }));
  const auth = await client.readMessage();
  expect(auth?.type).toBe('R');
  client.write(typedMessage('p', cstring('plain-secret')));
  const { before } = await client.readUntil('Z');
  const key = before.find((m) => m.type === 'K')!;
  return { client, pid: key.body.readInt32BE(0), secret: key.body.readUInt32BE(4) };
}

/**
 * The steps: a Flush-ended request (a quick SELECT), a cancel sent for it and answered, its result
 * read, then the client's next request, synced. Returns the outcome of the first and of the next.
 */
async function flushThenNext(client: RawClient, cancel: () => Promise<void>, beforeResult: () => Promise<void>): Promise<[string, string]> {
  client.write(Buffer.concat([parse("SELECT 1 AS one"), bind(), execute(), FLUSH]));
  await sleep(100);
  await cancel();
  await beforeResult();
  // The first request's answer: CommandComplete, or its cancel (57014).
  let first = '';
  for (;;) {
    const m = await client.readMessage(3000);
    if (!m) throw new Error('closed');
    if (m.type === 'C') { first = 'ran'; break; }
    if (m.type === 'E') { first = errorFields(m.body).get('C') ?? '?'; break; }
  }
  if (first !== 'ran') {
    // The server skips to a Sync after the error: the client ends the failed request first.
    client.write(SYNC);
    await readCycle(client);
  }
  // At once, as a client does once it has its answer: the next statement, with its Sync.
  client.write(Buffer.concat([parse("SELECT pg_sleep(0.5), 'next ran'"), bind(), execute(), SYNC]));
  const r = await readCycle(client);
  const next = r.errors.length > 0 ? r.errors.join(',') : String(r.rows[0]?.[1]);
  return [first, next];
}

describe('a cancel for a Flush-ended request', () => {
  it('on a direct connection: the statement sent after the answer runs', async () => {
    const l = lab();
    const { client, pid, secret } = await directLogin();
    try {
      const [first, next] = await flushThenNext(client, () => cancelAndWaitForClose(l.primary.host, l.primary.port, pid, secret), async () => undefined);
      expect(['ran', '57014']).toContain(first);
      expect(next).toBe('next ran');
    } finally {
      client.destroy();
    }
  });

  it('sent while the request waited for the pool of 1: the statement sent after the answer runs too', async () => {
    // Four rounds: in a round where the cancel happens to land on the first request, the next is safe.
    const nexts: string[] = [];
    for (let round = 0; round < 4; round++) {
      const holder = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
      const a = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
      try {
        holder.client.write(queryMessage('BEGIN; SELECT 1'));
        expect((await readCycle(holder.client)).errors).toEqual([]);
        const [first, next] = await flushThenNext(
          a.client,
          () => cancelAndWaitForClose(gw.host, gw.port, a.pid, a.secret),
          async () => {
            holder.client.write(queryMessage('COMMIT'));
            expect((await readCycle(holder.client)).errors).toEqual([]);
          },
        );
        expect(['ran', '57014']).toContain(first);
        nexts.push(next);
      } finally {
        holder.client.destroy();
        a.client.destroy();
      }
      await sleep(300);
    }
    expect(nexts).toEqual(['next ran', 'next ran', 'next ran', 'next ran']);
  });
});

describe('a request that waited for the pool of 1', () => {
  it('cancelled while it waits: answered 57014, and it never runs later', async () => {
    const holder = await login('cq-holder');
    expect((await query(holder.client, 'BEGIN; SELECT 1')).errors).toEqual([]);
    const a = await login('cq-cancel-queued');
    a.client.write(queryMessage("INSERT INTO cq_rows VALUES (400, 'cancelled')"));
    await sleep(100);
    await cancelAndWaitForClose(gw.host, gw.port, a.pid, a.secret);
    expect((await readCycle(a.client)).errors).toEqual(['57014']);
    expect((await query(holder.client, 'COMMIT')).errors).toEqual([]);
    expect((await query(a.client, 'SELECT 5')).rows).toEqual([['5']]);
    expect(await rowsWithId(400)).toBe(0);
  });

  it('its client leaves while it waits: it never runs', async () => {
    const holder = await login('cq-holder2');
    expect((await query(holder.client, 'BEGIN; SELECT 1')).errors).toEqual([]);
    const a = await login('cq-vanish-queued');
    a.client.write(queryMessage("INSERT INTO cq_rows VALUES (300, 'queued')"));
    await sleep(100);
    a.client.destroy();
    await sleep(100);
    expect((await query(holder.client, 'COMMIT')).errors).toEqual([]);
    // The pool's only connection serves the next client: whatever was to run before it has run.
    const next = await login('cq-after-vanish');
    expect((await query(next.client, 'SELECT 6')).rows).toEqual([['6']]);
    expect(await rowsWithId(300)).toBe(0);
  });
});

describe('a cancel with a wrong key', () => {
  it("one client's pid with another's secret, and the reverse, cancel nothing", async () => {
    const a = await login('cq-wrongkey-a');
    const b = await login('cq-wrongkey-b');
    a.client.write(queryMessage("SELECT pg_sleep(0.5), 'a done'"));
    await sleep(100);
    await cancelAndWaitForClose(gw.host, gw.port, a.pid, b.secret);
    await cancelAndWaitForClose(gw.host, gw.port, b.pid, a.secret);
    const r = await readCycle(a.client);
    expect(r.errors).toEqual([]);
    expect(r.rows[0]![1]).toBe('a done');
  });
});
