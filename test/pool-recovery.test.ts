// How a pool gets its clients served again when something stands in the way: another pool of the
// database holding the max_db_connections slots idle, a server that refused logins for a while, a
// connection whose cleanup outlasted its timeout, and a client that pipelines while it waits.
// Gateways are started from a YAML file with a database of their own, so pg_stat_activity shows
// only their server connections.
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, lab } from './harness/lab.js';
import { FileGateways } from './helpers/file-gateway.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';
import { queryMessage, RawClient, startupPacket } from './helpers/raw-client.js';

const DB = 'pr_recovery';
const gateways = new FileGateways(DB);

beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
});

afterEach(async () => {
  await gateways.stopAll();
  await adminQuery(`ALTER DATABASE ${DB} CONNECTION LIMIT -1`);
});

afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  gateways.removeFiles();
});

async function connect(url: string, name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** pgway's server connections to the test database, of one role or all. */
async function backends(user?: string): Promise<number> {
  const r = await adminQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND ($2::text IS NULL OR usename = $2)`,
    [DB, user ?? null],
  );
  return r.rows[0]!.n;
}

describe('max_db_connections across the pools of a database', () => {
  it("closes another pool's idle connection to serve a waiting client, as PgBouncer evicts one", async () => {
    // server_idle_timeout_ms would free the slot only after 600 s; the client gives up after 2 s.
    const g = await gateways.start({ pool: '{ mode: transaction, size: 5, max_db_connections: 1, query_wait_timeout_ms: 2000 }' });
    const app = await connect(g.url('app'), 'pr-evict-app');
    const other = await connect(g.url('trustapp'), 'pr-evict-other');
    await app.query('SELECT 1'); // app's pool keeps the database's only slot, idle
    expect(await backends()).toBe(1);
    const { rows } = await other.query<{ n: number }>('SELECT 2 AS n');
    expect(rows).toEqual([{ n: 2 }]);
    expect(await backends()).toBe(1);
    // and back: app's pool gets the slot the same way
    expect((await app.query<{ n: number }>('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
    await Promise.all([app.end(), other.end()]);
  });

  it('hands a connection given back idle to the other pool whose client waits for the slot', async () => {
    const g = await gateways.start({ pool: '{ mode: transaction, size: 5, max_db_connections: 1, query_wait_timeout_ms: 3000 }' });
    const app = await connect(g.url('app'), 'pr-handback-app');
    const other = await connect(g.url('trustapp'), 'pr-handback-other');
    await app.query('BEGIN');
    const waiting = other.query<{ n: number }>('SELECT 2 AS n');
    await waitFor('the other client waits', () => g.gateway.pools().some((p) => p.user === 'trustapp' && p.clientsWaiting === 1));
    await app.query('COMMIT'); // app's connection goes back idle: the slot is the waiting pool's
    expect((await waiting).rows).toEqual([{ n: 2 }]);
    expect(await backends()).toBe(1);
    await Promise.all([app.end(), other.end()]);
  });

  it('keeps min_size within max_db_connections', async () => {
    const g = await gateways.start({ pool: '{ mode: transaction, size: 5, min_size: 3, max_db_connections: 1 }' });
    const app = await connect(g.url('app'), 'pr-minsize');
    await app.query('SELECT 1');
    await sleep(2500); // the pool's maintenance, which keeps min_size open, runs each second
    expect(await backends()).toBe(1);
    await app.end();
  });
});

describe('a pool after a fault', () => {
  it('tries again for the clients still waiting after a server connection failed to open', async () => {
    const g = await gateways.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000, server_login_retry_ms: 200 }' });
    const warm = await connect(g.url('app'), 'pr-retry-warm'); // the pool learns the server's parameters
    await warm.query('SELECT 1');
    await warm.end();
    await adminQuery(`ALTER DATABASE ${DB} CONNECTION LIMIT 0`);
    await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${DB}' AND pid <> pg_backend_pid()`);
    await waitFor('no server connection left', async () => (await backends()) === 0);
    const clients = await Promise.all([1, 2, 3].map((i) => connect(g.url('app'), `pr-retry-${i}`)));
    const answers = clients.map((c, i) => c.query<{ n: number }>(`SELECT ${i + 1} AS n`).then((r) => r.rows, (err: { code?: string }) => err.code));
    // The first client hears the server's own refusal; the others wait for the server to accept again.
    expect(await answers[0]).toBe('53300');
    await adminQuery(`ALTER DATABASE ${DB} CONNECTION LIMIT -1`);
    expect(await Promise.all(answers.slice(1))).toEqual([[{ n: 2 }], [{ n: 3 }]]);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  });

  it('frees the slot of a connection whose cleanup outlasted server_connect_timeout_ms', async () => {
    const g = await gateways.start({ pool: '{ mode: transaction, size: 1, server_connect_timeout_ms: 500, query_wait_timeout_ms: 2000 }' });
    const gone = await connect(g.url('app'), 'pr-cleanup-gone');
    // A statement that shrugs off the cancel pgway sends when its client leaves, and runs on.
    void gone.query(`DO $$ BEGIN
      BEGIN PERFORM pg_sleep(1.5); EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(1.5); END;
    END $$`).catch(() => undefined);
    await waitFor('the statement runs', async () => (await backends('app')) === 1);
    await sleep(200);
    (gone as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    // pgway cancels at 100 ms (caught), gives up on the cleanup at 500 ms and closes the connection.
    await waitFor('the connection is closed', async () => (await backends('app')) === 0, 5000);
    const next = await connect(g.url('app'), 'pr-cleanup-next');
    expect((await next.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    await next.end();
  });

  it('frees the slot of a connection whose cleanup timed out while it waited for its cancel to be confirmed', async () => {
    const proxy = await slowCancelProxy(1500);
    try {
      const g = await gateways.start({
        pool: '{ mode: transaction, size: 1, server_connect_timeout_ms: 500, query_wait_timeout_ms: 4000 }',
        primaryPort: proxy.port,
      });
      const gone = await connect(g.url('app'), 'pr-cancel-gone');
      void gone.query('SELECT pg_sleep(30)').catch(() => undefined);
      await waitFor('the statement runs', async () => (await backends('app')) === 1);
      await sleep(200);
      (gone as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      // pgway cancels at 100 ms; the statement ends at once, but the cancel's confirmation comes
      // 1.5 s later; the reset gives up at 500 ms and closes the connection.
      await waitFor('the cancel was sent', () => proxy.cancels > 0, 3000);
      await waitFor('the connection is closed', async () => (await backends('app')) === 0, 5000);
      await sleep(2000); // the cancel's confirmation arrives after the close
      const next = await connect(g.url('app'), 'pr-cancel-next');
      const answer = await next.query<{ n: number }>('SELECT 1 AS n').then((r) => r.rows, (err: Error) => err.message);
      await next.end();
      expect(answer).toEqual([{ n: 1 }]);
    } finally {
      proxy.close();
    }
  });
});

/** A TCP proxy in front of the lab primary whose connections made so far can be made to hang (the server's bytes dropped). */
async function hangingProxy(): Promise<{ port: number; hangAll(): void; close(): void }> {
  const { host, port } = lab().primary;
  const pairs: { hung: boolean; down: net.Socket; up: net.Socket }[] = [];
  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    const pair = { hung: false, down, up };
    pairs.push(pair);
    down.on('data', (d) => up.write(d));
    up.on('data', (d) => { if (!pair.hung) down.write(d); });
    for (const s of [down, up]) s.on('error', () => undefined);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    hangAll: () => { for (const p of pairs) p.hung = true; },
    close: () => { server.close(); for (const p of pairs) { p.down.destroy(); p.up.destroy(); } },
  };
}

/**
 * A TCP proxy in front of the lab primary; the server's close of a CancelRequest connection (its
 * confirmation that the backend was signalled) reaches pgway `cancelCloseDelayMs` late.
 */
async function slowCancelProxy(cancelCloseDelayMs: number): Promise<{ port: number; cancels: number; close(): void }> {
  const { host, port } = lab().primary;
  const sockets: net.Socket[] = [];
  const state = { port: 0, cancels: 0, close: () => undefined as void };
  const server = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = net.connect(port, host);
    sockets.push(down, up);
    let first = true;
    let isCancel = false;
    for (const s of [down, up]) s.on('error', () => undefined);
    down.on('data', (d) => {
      if (first) {
        first = false;
        isCancel = d.length >= 8 && d.readInt32BE(4) === 80877102;
        if (isCancel) state.cancels++;
      }
      up.write(d);
    });
    up.on('data', (d) => down.write(d));
    down.on('close', () => up.destroy());
    up.on('close', () => {
      if (isCancel) setTimeout(() => down.destroy(), cancelCloseDelayMs);
      else down.destroy();
    });
    down.on('end', () => up.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.port = (server.address() as net.AddressInfo).port;
  state.close = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  return state;
}

describe('the check of a connection idle longer than server_check_delay_ms', () => {
  it('gives up on a server that does not answer it within server_connect_timeout_ms, and opens another', async () => {
    const proxy = await hangingProxy();
    try {
      const g = await gateways.start({
        pool: '{ mode: transaction, size: 1, server_check_delay_ms: 0, server_connect_timeout_ms: 500, query_wait_timeout_ms: 5000 }',
        primaryPort: proxy.port,
      });
      const c = await connect(g.url('app'), 'pr-check');
      await c.query('SELECT 1');
      proxy.hangAll(); // the idle connection's server answers nothing from now on
      expect((await c.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
      await c.end();
    } finally {
      proxy.close();
    }
  });
});

describe('a client that pipelines while it waits for a server connection', () => {
  it('is read no further once 1 MiB of its requests wait, and is served in full afterwards', async () => {
    const g = await gateways.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 10000 }' });
    const holder = await connect(g.url('trustapp'), 'pr-pipeline-holder');
    await holder.query('BEGIN');
    const greedy = await RawClient.connect({ host: g.host, port: g.port });
    greedy.write(startupPacket({ user: 'trustapp', database: DB }));
    await greedy.readUntil('Z');
    // 32 MiB of complete queries, sent while the only server connection is taken
    const batch = Buffer.concat(Array.from({ length: 64 }, () => queryMessage(`SELECT length('${'y'.repeat(64 * 1024)}')`)));
    for (let i = 0; i < 8; i++) greedy.write(batch);
    await sleep(1500);
    // What pgway did not read stays with the client (the kernel's socket buffers take a few MiB).
    expect(greedy.socket.writableLength).toBeGreaterThan(16 * 1024 * 1024);
    await holder.query('COMMIT');
    const { before } = await greedy.readUntil('Z', 10_000);
    expect(before.filter((m) => m.type === 'D')).toHaveLength(1);
    await waitFor('every request was read', () => greedy.socket.writableLength === 0, 10_000);
    greedy.destroy();
    await holder.end();
  });

  it('is held to the same 1 MiB while its login waits for a session-mode connection', async () => {
    const g = await gateways.start({ pool: '{ mode: session, size: 1, query_wait_timeout_ms: 10000 }' });
    const holder = await connect(g.url('trustapp'), 'pr-login-holder');
    const greedy = await RawClient.connect({ host: g.host, port: g.port });
    greedy.write(startupPacket({ user: 'trustapp', database: DB }));
    // Its requests go out behind the StartupMessage, before any answer: the login waits for the connection.
    const batch = Buffer.concat(Array.from({ length: 64 }, () => queryMessage(`SELECT length('${'y'.repeat(64 * 1024)}')`)));
    for (let i = 0; i < 8; i++) greedy.write(batch);
    await sleep(1500);
    expect(greedy.socket.writableLength).toBeGreaterThan(16 * 1024 * 1024);
    await holder.end();
    await greedy.readUntil('Z', 10_000); // the login
    const { before } = await greedy.readUntil('Z', 10_000);
    expect(before.filter((m) => m.type === 'D')).toHaveLength(1);
    await waitFor('every request was read', () => greedy.socket.writableLength === 0, 10_000);
    greedy.destroy();
  });
});
