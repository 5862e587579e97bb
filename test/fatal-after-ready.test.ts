// A server connection terminated (pg_terminate_backend) just after it answered a client's request:
// its FATAL can arrive in the same read as the request's ReadyForQuery. The request committed (the
// server said so before it died), and the client goes on on another connection with what it set.
// The FATAL is the connection's, not the client's, unless the client keeps the connection (a
// transaction block, a pin, session mode): then the client's session ends with it, as on a direct
// connection.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { answersWithin, rawTrustLogin, readCycle, queryMessage, type RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/pg-helpers.js';
import { terminateOnceIdleBlocking } from './helpers/terminate.js';


describe('a FATAL read together with the ReadyForQuery of a committed request', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('direct PostgreSQL: the SET committed, its ReadyForQuery came before the FATAL', async () => {
    const l = lab();
    const c = new pg.Client({ connectionString: pgUrl(l.primary, 'app', 'app-secret', l.database) });
    c.on('error', () => undefined);
    await c.connect();
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const res = await c.query("SET review.k = 'two'; SELECT current_setting('review.k') AS v") as unknown as pg.QueryResult[];
    expect(res[1]!.rows[0]!.v).toBe('two');
    terminateOnceIdleBlocking(pid);
    await c.end().catch(() => undefined);
  });

  it('through pgway: the client keeps the value its committed SET set', async () => {
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    const c: RawClient = client;
    try {
      c.write(queryMessage("SET review.k = 'one'; SELECT pg_backend_pid()"));
      const first = await readCycle(c);
      expect(first.errors).toEqual([]);
      const pid = Number(first.rows[0]![0]);

      c.write(queryMessage("SET review.k = 'two'; SELECT current_setting('review.k'), pg_sleep(0.2)"));
      // pgway has written the request once the server runs it; then pgway is kept from reading
      // until the server has answered and its connection is terminated.
      const running = async (): Promise<boolean> =>
        (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 1;
      await waitFor('the server to run the request', running);
      terminateOnceIdleBlocking(pid);
      const second = await readCycle(c);
      expect(second).toEqual({ rows: [['two', '']], errors: [] });

      c.write(queryMessage("SELECT current_setting('review.k', true), pg_backend_pid()"));
      const third = await readCycle(c);
      expect(Number(third.rows[0]![1])).not.toBe(pid); // another server connection
      expect(third.rows[0]![0]).toBe('two');
      // The terminated connection's FATAL never reached the client: its session goes on.
      expect(third.errors).toEqual([]);
    } finally {
      c.destroy();
    }
  });

  it('through pgway: a pg client sees no error and goes on', async () => {
    const c = new pg.Client({ connectionString: gw.url('app') });
    const errors: Error[] = [];
    c.on('error', (err) => errors.push(err));
    await c.connect();
    try {
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const running = async (): Promise<boolean> =>
        (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 1;
      const answer = c.query('SELECT pg_sleep(0.2), 1 AS one');
      await waitFor('the server to run the request', running);
      terminateOnceIdleBlocking(pid);
      expect((await answer).rows[0].one).toBe(1);
      const next = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(next.rows[0]!.pid).not.toBe(pid);
      expect(errors).toEqual([]);
    } finally {
      await c.end().catch(() => undefined);
    }
  });

  /** Runs `sql` (which keeps the connection: LISTEN, BEGIN) and the request that is terminated behind it; what arrives after. */
  async function terminatedWhileKept(host: string, port: number, sql: string): Promise<string[]> {
    const { client } = await rawTrustLogin({ host, port }, { user: 'trustuser', database: 'app' });
    const c: RawClient = client;
    try {
      c.write(queryMessage(`${sql}; SELECT pg_backend_pid()`));
      const first = await readCycle(c);
      expect(first.errors).toEqual([]);
      const pid = Number(first.rows.at(-1)![0]);
      c.write(queryMessage('SELECT pg_sleep(0.2)'));
      const running = async (): Promise<boolean> =>
        (await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rowCount === 1;
      await waitFor('the server to run the request', running);
      terminateOnceIdleBlocking(pid);
      expect((await readCycle(c)).errors).toEqual([]);
      return await answersWithin(c, 3000);
    } finally {
      c.destroy();
    }
  }

  it('through pgway: a client in a transaction block gets the FATAL, and its session ends', async () => {
    expect(await terminatedWhileKept(gw.host, gw.port, 'BEGIN')).toEqual(['FATAL 57P01']);
  });

  it('through pgway: a pinned client (LISTEN) gets the FATAL, and its session ends', async () => {
    expect(await terminatedWhileKept(gw.host, gw.port, 'LISTEN review_fatal')).toEqual(['FATAL 57P01']);
  });

  it('through pgway in session mode: the client gets the FATAL, and its session ends', async () => {
    const session = await startGateway({ pool: '{ mode: session, size: 1 }' });
    try {
      expect(await terminatedWhileKept(session.host, session.port, 'SELECT 1')).toEqual(['FATAL 57P01']);
    } finally {
      await session.stop();
    }
  });
});
