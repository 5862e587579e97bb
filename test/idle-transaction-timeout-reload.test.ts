// idle_transaction_timeout_ms changed by RELOAD reaches clients already idle in their transaction,
// timed from when they went idle: turned off (0) or raised, the old deadline ends nobody; turned on
// or lowered, it ends a client already idle past the new value (25P03). PgBouncer's janitor reads
// idle_transaction_timeout on each pass the same way. PostgreSQL itself has no such limit here: a
// client idle in its transaction goes on.
// The same holds when the RELOAD also moves the database (a new primary address, so its pool is
// replaced): clients still on the old pool's connections (a transaction under way, session mode, a
// pin) and a client handed to the new pool while it waited follow the database's new settings.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { lab } from './harness/lab.js';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { errorOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';

const DB = 'idle_tx_reload';
const { files, connect } = fileGatewayTests(DB);
const pool = (ms: number): string => `{ mode: transaction, size: 2, idle_transaction_timeout_ms: ${ms}, query_wait_timeout_ms: 5000 }`;

describe('idle_transaction_timeout_ms changed by RELOAD', () => {
  it('direct PostgreSQL: a client idle in a transaction for 2.5 s goes on', async () => {
    const l = lab();
    const c = await connect(`postgres://app:app-secret@${l.primary.host}:${l.primary.port}/${DB}`);
    await c.query('BEGIN');
    await sleep(2500);
    expect((await c.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    await c.query('COMMIT');
  });

  it('turned off (0): a client already idle in its transaction is not ended at the old deadline', async () => {
    const gw: FileGateway = await files.start({ pool: pool(1500) });
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('SELECT 1');
    gw.write({ pool: pool(0) });
    await gw.gateway.reload();
    await sleep(2500); // past the old 1.5 s deadline
    const err = await errorOf(c.query('SELECT 1 AS n'));
    expect((err as Error | undefined)?.message).toBeUndefined();
  });

  it('raised: a client already idle in its transaction is not ended at the old deadline', async () => {
    const gw: FileGateway = await files.start({ pool: pool(1500) });
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('SELECT 1');
    gw.write({ pool: pool(60_000) });
    await gw.gateway.reload();
    await sleep(2500);
    const err = await errorOf(c.query('SELECT 1 AS n'));
    expect((err as Error | undefined)?.message).toBeUndefined();
  });

  it.each([
    ['turned on', 0],
    ['lowered', 60_000],
  ])('%s: a client already idle in its transaction past the new value is ended (25P03)', async (_how, before) => {
    const gw: FileGateway = await files.start({ pool: pool(before) });
    const c = await connect(gw.url());
    const errors: unknown[] = [];
    c.on('error', (err) => errors.push(err));
    await c.query('BEGIN');
    await c.query('SELECT 1');
    await sleep(300);
    gw.write({ pool: pool(200) });
    await gw.gateway.reload();
    await waitFor('the client to be ended with 25P03', () => errors.some((e) => sqlstate(e) === '25P03'));
    expect(await errorOf(c.query('SELECT 1'))).toBeDefined();
  });
});

/** A plain TCP forwarder to the lab primary: a second address of the same server. */
async function forwarder(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(lab().primary.port, lab().primary.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return (server.address() as net.AddressInfo).port;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const modePool = (mode: string, ms: number): string => `{ mode: ${mode}, size: 2, idle_transaction_timeout_ms: ${ms}, query_wait_timeout_ms: 5000 }`;

/** The errors a client hears, to wait for its 25P03. */
function errorsOf(c: { on(event: 'error', listener: (err: unknown) => void): unknown }): unknown[] {
  const errors: unknown[] = [];
  c.on('error', (err) => errors.push(err));
  return errors;
}

const endedIdle = (errors: unknown[]): boolean => errors.some((e) => sqlstate(e) === '25P03');

describe('idle_transaction_timeout_ms turned on by a RELOAD that also moves the database', () => {
  it('transaction mode: a client already idle in its transaction is ended (25P03)', async () => {
    const moved = await forwarder();
    const gw = await files.start({ pool: pool(0) });
    const c = await connect(gw.url());
    const errors = errorsOf(c);
    await c.query('BEGIN');
    await c.query('SELECT 1');
    gw.write({ pool: pool(300), primaryPort: moved });
    await gw.gateway.reload();
    await waitFor('the client to be ended with 25P03', () => endedIdle(errors));
    expect(await errorOf(c.query('SELECT 1'))).toBeDefined();
  });

  it('transaction mode: a pinned client, in a transaction begun after the RELOAD, is ended (25P03)', async () => {
    const moved = await forwarder();
    const gw = await files.start({ pool: pool(0) });
    const c = await connect(gw.url());
    const errors = errorsOf(c);
    await c.query('CREATE TEMP TABLE pinned (n int)'); // keeps its connection between transactions
    gw.write({ pool: pool(300), primaryPort: moved });
    await gw.gateway.reload();
    await c.query('BEGIN');
    await c.query('SELECT 1');
    await waitFor('the client to be ended with 25P03', () => endedIdle(errors));
  });

  it('session mode: clients connected before and after the RELOAD, in transactions begun after it, are ended (25P03)', async () => {
    const moved = await forwarder();
    const gw = await files.start({ pool: modePool('session', 0) });
    const before = await connect(gw.url());
    const beforeErrors = errorsOf(before);
    await before.query('SELECT 1');
    gw.write({ pool: modePool('session', 300), primaryPort: moved });
    await gw.gateway.reload();
    const after = await connect(gw.url());
    const afterErrors = errorsOf(after);
    await Promise.all([before.query('BEGIN'), after.query('BEGIN')]);
    await waitFor('the client connected after the RELOAD to be ended with 25P03', () => endedIdle(afterErrors));
    await waitFor('the client connected before the RELOAD to be ended with 25P03', () => endedIdle(beforeErrors));
  });

  it('session mode: a client that waited through the RELOAD follows a later RELOAD too', async () => {
    const moved = await forwarder();
    const sessionPool = (ms: number): string => `{ mode: session, size: 1, idle_transaction_timeout_ms: ${ms}, query_wait_timeout_ms: 5000 }`;
    const gw = await files.start({ pool: sessionPool(0) });
    const holder = await connect(gw.url());
    await holder.query('SELECT 1');
    // The pool's only connection is taken: this client waits at login until the RELOAD hands it to the new pool.
    const waiting = connect(gw.url());
    await waitFor('the second client to wait', () => gw.gateway.pools().some((p) => p.clientsWaiting === 1));
    gw.write({ pool: sessionPool(0), primaryPort: moved });
    await gw.gateway.reload();
    const c = await waiting;
    const errors = errorsOf(c);
    await holder.end(); // the old pool's last connection goes, and the old pool with it
    const servers = (): number => gw.gateway.pools().reduce((n, p) => n + p.serversActive + p.serversUsed + p.serversIdle + p.serversLogin, 0);
    await waitFor('the old pool to close its connection', () => servers() === 1);
    gw.write({ pool: sessionPool(300), primaryPort: moved });
    await gw.gateway.reload();
    await c.query('BEGIN');
    await waitFor('the client to be ended with 25P03', () => endedIdle(errors));
  });
});
