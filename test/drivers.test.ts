// node-postgres (`pg`) and postgres.js through pgway in session mode: what application code relies on.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { errorOf } from './helpers/pg-helpers.js';
import { cancelRequestPacket } from './helpers/raw-client.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: session, size: 10, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS drv_tx, drv_copy');
  await adminQuery('CREATE TABLE drv_tx (id int, tag text)');
  await adminQuery('CREATE TABLE drv_copy (id int PRIMARY KEY, v text NOT NULL)');
  await adminQuery('GRANT ALL ON drv_tx, drv_copy TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS drv_tx, drv_copy');
});

/** What pg's Client keeps from BackendKeyData; @types/pg does not declare it. */
interface PgBackendKey {
  processID: number | null;
  secretKey: number | null;
}

async function pgClient(applicationName = 'drivers-test'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: gw.url(), application_name: applicationName });
  await client.connect();
  return client;
}

async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/** Polls the server (directly) until `pid` is running a statement containing `text`; bounded to 5 s. */
async function waitUntilRunning(pid: number, text: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE $2", [pid, `%${text}%`]);
    if (r.rowCount === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`backend ${pid} never started running ${text}`);
}

/** Sends a CancelRequest for (pid, secret) to pgway on its own socket, as libpq does. */
function sendCancel(pid: number, secret: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: gw.host, port: gw.port }, () => socket.end(cancelRequestPacket(pid, secret)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

function nextEvent<T>(emitter: NodeJS.EventEmitter, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' event within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

describe('pg Client through pgway', () => {
  it('runs parameterized queries with every kind of value', async () => {
    const client = await pgClient();
    try {
      const bytes = Buffer.from([0, 1, 2, 254, 255]);
      const r = await client.query<{ sum: number; t: string; n: string | null; b: Buffer; j: { a: number[] } }>(
        'SELECT $1::int + $2::int AS sum, $3::text AS t, $4::text AS n, $5::bytea AS b, $6::jsonb AS j',
        [2, 3, 'héllo ✓ \'quoted\'', null, bytes, JSON.stringify({ a: [1, 2] })]);
      expect(r.rows).toEqual([{ sum: 5, t: 'héllo ✓ \'quoted\'', n: null, b: bytes, j: { a: [1, 2] } }]);
    } finally {
      await client.end();
    }
  });

  it('reuses a named prepared statement on the same server connection', async () => {
    const client = await pgClient();
    try {
      for (let i = 0; i < 200; i++) {
        const r = await client.query<{ v: number }>({ name: 'q1', text: 'SELECT $1::int * 2 AS v', values: [i] });
        expect(r.rows[0]?.v).toBe(i * 2);
      }
      const stmts = await client.query<{ name: string; runs: string }>(
        'SELECT name, generic_plans + custom_plans AS runs FROM pg_prepared_statements');
      expect(stmts.rows).toEqual([{ name: 'q1', runs: '200' }]);
    } finally {
      await client.end();
    }
  });

  it('leaves nothing behind after ROLLBACK, and keeps what COMMIT wrote', async () => {
    const client = await pgClient();
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO drv_tx VALUES (1, 'rolled-back')");
      const inside = await client.query("SELECT count(*)::int AS n FROM drv_tx WHERE tag = 'rolled-back'");
      expect(inside.rows[0]).toEqual({ n: 1 });
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await client.query("INSERT INTO drv_tx VALUES (2, 'committed')");
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const r = await adminQuery<{ tag: string }>("SELECT tag FROM drv_tx WHERE tag IN ('rolled-back', 'committed')");
    expect(r.rows).toEqual([{ tag: 'committed' }]);
  });

  it('reports 25P02 after an error inside a transaction, then recovers with ROLLBACK', async () => {
    const client = await pgClient();
    try {
      await client.query('BEGIN');
      await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
      await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await client.query('ROLLBACK');
      const r = await client.query<{ n: number; tx: string | null }>('SELECT 1 AS n, txid_current_if_assigned()::text AS tx');
      expect(r.rows).toEqual([{ n: 1, tx: null }]);
    } finally {
      await client.end();
    }
  });

  it('delivers NOTIFY to a LISTENing client, from pgway clients and from a direct connection', async () => {
    const listener = await pgClient();
    const notifier = await pgClient();
    try {
      const received: pg.Notification[] = [];
      const gotTwo = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${received.length} notifications within 5 s`)), 5000);
        listener.on('notification', (n) => {
          received.push(n);
          if (received.length === 2) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await listener.query('LISTEN drv_channel');
      await notifier.query("NOTIFY drv_channel, 'from-pgway'");
      await adminQuery("SELECT pg_notify('drv_channel', 'from-direct')");
      await gotTwo;
      const notifierPid = await backendPid(notifier);
      expect(received.map((n) => [n.channel, n.payload])).toEqual([['drv_channel', 'from-pgway'], ['drv_channel', 'from-direct']]);
      // Session mode shows the server's real pid, so the sender is recognizable.
      expect(received[0]?.processId).toBe(notifierPid);
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
    }
  });

  it('cancels a running pg_sleep(30) with a CancelRequest (57014, not the end of the sleep), and keeps working', async () => {
    const client = await pgClient();
    try {
      const key = client as unknown as PgBackendKey;
      const pid = await backendPid(client);
      expect(key.processID).toBe(pid);
      const sleeping = client.query('SELECT pg_sleep(30)');
      sleeping.catch(() => undefined);
      await waitUntilRunning(pid, 'pg_sleep(30)');
      const outcome = errorOf(sleeping);
      await sendCancel(key.processID!, key.secretKey!);
      expect(await outcome).toMatchObject({ code: '57014' });
      expect(await backendPid(client)).toBe(pid);
      const r = await client.query<{ v: number }>('SELECT $1::int AS v', [7]);
      expect(r.rows).toEqual([{ v: 7 }]);
    } finally {
      await client.end();
    }
  });

  it('ignores a CancelRequest with the wrong secret', async () => {
    const client = await pgClient();
    try {
      const key = client as unknown as PgBackendKey;
      const pid = await backendPid(client);
      // A short sleep that must finish normally: the bad cancel arrives while it runs.
      const sleeping = client.query<{ done: string }>("SELECT pg_sleep(1), 'finished' AS done");
      await waitUntilRunning(pid, 'pg_sleep(1)');
      await sendCancel(pid, (key.secretKey! ^ 0x5a5a5a5a) >>> 0);
      const r = await sleeping;
      expect(r.rows[0]?.done).toBe('finished');
    } finally {
      await client.end();
    }
  });

  it('closes a client whose backend is terminated, while other clients keep working', async () => {
    const victim = await pgClient('drv-victim');
    const killer = await pgClient('drv-killer');
    const bystander = await pgClient('drv-bystander');
    try {
      const victimPid = await backendPid(victim);
      const errors: (Error & { code?: string })[] = [];
      victim.on('error', (err: Error & { code?: string }) => errors.push(err));
      const ended = nextEvent<void>(victim, 'end');
      const r = await killer.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [victimPid]);
      expect(r.rows).toEqual([{ ok: true }]);
      await ended;
      // The server's own FATAL comes first, unchanged.
      expect(errors[0]?.code).toBe('57P01');
      await expect(victim.query('SELECT 1')).rejects.toThrow();

      expect((await bystander.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      expect((await killer.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
      const fresh = await pgClient('drv-fresh');
      try {
        const freshPid = await backendPid(fresh);
        expect(freshPid).not.toBe(victimPid);
      } finally {
        await fresh.end();
      }
    } finally {
      await Promise.all([killer.end(), bystander.end(), victim.end().catch(() => undefined)]);
    }
  });
});

describe('pg Pool through pgway', () => {
  it('runs concurrent parameterized queries and transactions on checked-out clients', async () => {
    const pool = new pg.Pool({ connectionString: gw.url(), max: 4 });
    try {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) =>
        pool.query<{ v: string }>({ name: 'pool-q', text: "SELECT $1::text || '-' || $2::int AS v", values: ['n', i] })));
      expect(results.map((r) => r.rows[0]?.v)).toEqual(Array.from({ length: 100 }, (_, i) => `n-${i}`));

      await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('INSERT INTO drv_tx VALUES ($1, $2)', [100 + i, 'pool']);
          await client.query(i % 2 === 0 ? 'COMMIT' : 'ROLLBACK');
        } finally {
          client.release();
        }
      }));
      const r = await adminQuery<{ id: number }>("SELECT id FROM drv_tx WHERE tag = 'pool' ORDER BY id");
      expect(r.rows.map((row) => row.id)).toEqual([100, 102, 104, 106]);
    } finally {
      await pool.end();
    }
  });
});

describe('postgres.js through pgway', () => {
  function connect(options: postgres.Options<Record<string, postgres.PostgresType>> = {}): postgres.Sql {
    return postgres(gw.url(), { max: 1, onnotice: () => undefined, connect_timeout: 10, ...options });
  }

  it('runs parameterized queries', async () => {
    const sql = connect();
    try {
      const rows = await sql<{ sum: number; t: string; n: null }[]>`
        SELECT ${2}::int + ${3}::int AS sum, ${'ünïcode'}::text AS t, ${null}::text AS n`;
      expect([...rows]).toEqual([{ sum: 5, t: 'ünïcode', n: null }]);
    } finally {
      await sql.end();
    }
  });

  it('uses named prepared statements, reused across executions', async () => {
    const sql = connect({ prepare: true });
    try {
      for (let i = 0; i < 50; i++) {
        const [row] = await sql<{ v: number }[]>`SELECT ${i}::int * 3 AS v`;
        expect(row?.v).toBe(i * 3);
      }
      const stmts = await sql<{ runs: string }[]>`
        SELECT generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE statement LIKE '%* 3 AS v'`;
      expect(stmts.map((s) => s.runs)).toEqual(['50']);
    } finally {
      await sql.end();
    }
  });

  it('rolls back a failed sql.begin() and recovers from 25P02 on a reserved connection', async () => {
    const sql = connect();
    try {
      await expect(sql.begin(async (tx) => {
        await tx`INSERT INTO drv_tx VALUES (300, 'postgres.js-rolled-back')`;
        await tx`SELECT 1/0`;
      })).rejects.toMatchObject({ code: '22012' });
      const left = await adminQuery("SELECT 1 FROM drv_tx WHERE tag = 'postgres.js-rolled-back'");
      expect(left.rowCount).toBe(0);

      const reserved = await sql.reserve();
      try {
        await reserved`BEGIN`;
        await expect(reserved`SELECT 1/0`).rejects.toMatchObject({ code: '22012' });
        await expect(reserved`SELECT 1`).rejects.toMatchObject({ code: '25P02' });
        await reserved`ROLLBACK`;
        const [row] = await reserved<{ n: number }[]>`SELECT 1 AS n`;
        expect(row).toEqual({ n: 1 });
      } finally {
        reserved.release();
      }
    } finally {
      await sql.end();
    }
  });

  it('copies 50,000 rows in with .writable() and out with .readable()', async () => {
    const sql = connect();
    const rows = 50_000;
    try {
      const lines = Array.from({ length: rows }, (_, i) => `${i + 1}\tvalue ${i + 1} ✓\n`);
      const writable = await sql`COPY drv_copy (id, v) FROM STDIN`.writable();
      // Several lines per chunk, as a real producer would write.
      const chunks: string[] = [];
      for (let i = 0; i < rows; i += 500) chunks.push(lines.slice(i, i + 500).join(''));
      await pipeline(Readable.from(chunks), writable);
      const [count] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM drv_copy`;
      expect(count?.n).toBe(String(rows));

      const readable = await sql`COPY (SELECT id, v FROM drv_copy ORDER BY id) TO STDOUT`.readable();
      const received: Buffer[] = [];
      await pipeline(readable, new Writable({
        write(chunk: Buffer, _enc, done) {
          received.push(chunk);
          done();
        },
      }));
      const text = Buffer.concat(received).toString('utf8');
      const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
      expect(text.split('\n').length - 1).toBe(rows);
      expect(md5(text)).toBe(md5(lines.join('')));
      const [after] = await sql<{ n: number }[]>`SELECT 1 AS n`;
      expect(after).toEqual({ n: 1 });
    } finally {
      await sql.end();
    }
  });

  it('pipelines 500 concurrent queries on one connection, one of them failing', async () => {
    const sql = connect();
    try {
      const queries = Array.from({ length: 500 }, (_, i) =>
        i === 250
          ? sql`SELECT 1/0 AS boom`.then(() => 'no error', (err: { code?: string }) => `error ${err.code}`)
          : sql<{ i: number; pid: number }[]>`SELECT ${i}::int AS i, pg_backend_pid() AS pid`.then(([row]) => row));
      const results = await Promise.all(queries);
      expect(results[250]).toBe('error 22012');
      const rows = results.filter((r): r is { i: number; pid: number } => typeof r === 'object');
      expect(rows.map((r) => r.i)).toEqual(Array.from({ length: 500 }, (_, i) => i).filter((i) => i !== 250));
      expect(new Set(rows.map((r) => r.pid)).size).toBe(1);
    } finally {
      await sql.end();
    }
  });

  it('cancels a running pg_sleep(30) within a second and a half, and the connection keeps working', async () => {
    const sql = connect();
    try {
      const [before] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      const pid = before!.pid;
      const q = sql`SELECT pg_sleep(30)`;
      const outcome = errorOf(q.execute());
      await waitUntilRunning(pid, 'pg_sleep(30)');
      q.cancel();
      // `routine` comes only from a real server error, not postgres.js's local "not sent yet" cancel.
      expect(await outcome).toMatchObject({ code: '57014', routine: 'ProcessInterrupts' });
      const [after] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      expect(after?.pid).toBe(pid);
    } finally {
      await sql.end();
    }
  });

  it('delivers notifications with sql.listen() and sql.notify()', async () => {
    const sql = connect({ max: 2 });
    try {
      const payloads: string[] = [];
      let onTwo: (() => void) | undefined;
      const gotTwo = new Promise<void>((resolve) => (onTwo = resolve));
      await sql.listen('drv_pjs_channel', (payload) => {
        payloads.push(payload);
        if (payloads.length === 2) onTwo?.();
      });
      await sql.notify('drv_pjs_channel', 'one');
      await adminQuery("SELECT pg_notify('drv_pjs_channel', 'two')");
      await Promise.race([gotTwo, new Promise((_, reject) => setTimeout(() => reject(new Error(`got ${payloads.join(',')}`)), 5000))]);
      expect(payloads).toEqual(['one', 'two']);
    } finally {
      await sql.end();
    }
  });
});
