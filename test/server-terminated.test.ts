// pg_terminate_backend of a pool's server connection (transaction mode): the client it serves hears
// the server's FATAL 57P01, as on a direct connection, whatever runs there at that moment (its own
// statement, a COPY from it, or a statement pgway lays on ahead of the client's); a connection
// terminated while idle in the pool is never handed to a client.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { errorFields, queryMessage, rawTrustLogin, readCycle, typedMessage, type RawClient } from './helpers/raw-client.js';
import { sleep, sqlstate, waitFor, within } from './helpers/pg-helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000, server_check_delay_ms: 30000 }' });
  await adminQuery('DROP TABLE IF EXISTS st_rows');
  await adminQuery('CREATE TABLE st_rows (id int PRIMARY KEY, tag text)');
  await adminQuery("INSERT INTO st_rows VALUES (1, 'one')");
  await adminQuery('GRANT ALL ON st_rows TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS st_rows');
});

const opened: RawClient[] = [];
afterEach(async () => {
  for (const c of opened.splice(0)) c.destroy();
  await sleep(200);
});

async function login(name: string): Promise<RawClient> {
  const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', application_name: name });
  opened.push(client);
  return client;
}

async function query(c: RawClient, sql: string): Promise<{ rows: (string | null)[][]; errors: string[] }> {
  c.write(queryMessage(sql));
  return readCycle(c);
}

/** The SQLSTATE of the error the client read before its connection closed. */
async function errorBeforeClose(c: RawClient): Promise<string | undefined> {
  const fatal = (await c.readToClose(3000)).find((m) => m.type === 'E');
  return fatal && errorFields(fatal.body).get('C');
}

async function backendAlive(pid: number): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rows.length > 0;
}

describe('pg_terminate_backend of the pool connection', () => {
  it('while the client is idle inside a transaction: the client hears 57P01 and the pool opens a new connection', async () => {
    const client = await login('st-idle-tx');
    const r = await query(client, 'BEGIN; SELECT pg_backend_pid()');
    expect(r.errors).toEqual([]);
    await adminQuery('SELECT pg_terminate_backend($1)', [Number(r.rows[0]![0])]);
    expect(await errorBeforeClose(client)).toBe('57P01');
    const next = await login('st-idle-tx-next');
    expect((await query(next, 'SELECT 42')).rows).toEqual([['42']]);
  });

  it('during a COPY FROM STDIN: the client hears 57P01 and nothing of the COPY is kept', async () => {
    const first = await login('st-copy-pid');
    const victim = Number((await query(first, 'SELECT pg_backend_pid()')).rows[0]![0]);
    first.destroy();
    await sleep(50);
    const client = await login('st-copy');
    client.write(queryMessage('COPY st_rows FROM STDIN'));
    await client.readUntil('G', 3000);
    client.write(typedMessage('d', Buffer.from('100\tcopied\n')));
    await adminQuery('SELECT pg_terminate_backend($1)', [victim]);
    expect(await errorBeforeClose(client)).toBe('57P01');
    const next = await login('st-copy-next');
    expect((await query(next, 'SELECT count(*) FROM st_rows WHERE id = 100')).rows).toEqual([['0']]);
  });

  it('while idle in the pool: the next request runs on a new connection', async () => {
    const client = await login('st-pool');
    const victim = Number((await query(client, 'SELECT pg_backend_pid()')).rows[0]![0]);
    await adminQuery('SELECT pg_terminate_backend($1)', [victim]);
    await waitFor('backend gone', async () => !(await backendAlive(victim)));
    const r = await query(client, 'SELECT pg_backend_pid()');
    expect(r.errors).toEqual([]);
    expect(r.rows[0]![0]).not.toBe(String(victim));
  });
});

describe('pg_terminate_backend while a statement waits for a lock', () => {
  /** Runs `work` on `client` while `st_rows` is locked, terminates the backend that waits for the lock: what the client got. */
  async function terminatedWhileLocked(client: pg.Client, work: () => Promise<unknown>): Promise<string | undefined> {
    const locker = new pg.Client({ host: lab().primary.host, port: lab().primary.port, user: 'app', password: 'app-secret', database: lab().database });
    await locker.connect();
    try {
      await locker.query('BEGIN; LOCK TABLE st_rows IN ACCESS EXCLUSIVE MODE');
      const outcome = work().then(() => 'ran', (e: unknown) => sqlstate(e) ?? String(e));
      let waiter = 0;
      await waitFor('a backend waiting for the lock', async () => {
        const r = await adminQuery<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%st_rows%'");
        waiter = r.rows[0]?.pid ?? 0;
        return waiter !== 0;
      });
      await adminQuery('SELECT pg_terminate_backend($1)', [waiter]);
      return await within(5000, 'the client hearing of it', outcome);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      client.end().catch(() => undefined);
    }
  }

  function pgClient(host: string, port: number, user: string, password: string, database: string): pg.Client {
    const c = new pg.Client({ host, port, user, password, database });
    c.on('error', () => undefined);
    return c;
  }

  it('on a direct connection: the client hears 57P01', async () => {
    const l = lab();
    const client = pgClient(l.primary.host, l.primary.port, 'app', 'app-secret', l.database);
    await client.connect();
    await client.query('PREPARE st_p AS SELECT tag FROM st_rows');
    await client.query('DEALLOCATE st_p');
    expect(await terminatedWhileLocked(client, () => client.query('PREPARE st_p AS SELECT tag FROM st_rows'))).toBe('57P01');
  });

  it("through pgway, waiting in the PREPARE pgway lays on ahead of the client's EXECUTE: the client hears 57P01", async () => {
    const client = pgClient(gw.host, gw.port, 'app', 'app-secret', 'app');
    await client.connect();
    await client.query('PREPARE st_p AS SELECT tag FROM st_rows');
    // The pool's connection is replaced: the client's EXECUTE needs its statement laid on first.
    const pid = Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor('backend gone', async () => !(await backendAlive(pid)));
    expect(await terminatedWhileLocked(client, () => client.query('EXECUTE st_p'))).toBe('57P01');
  });
});
