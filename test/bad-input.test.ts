// What pgway does with clients that send garbage, lie about lengths, speak other protocol versions,
// vanish mid-message or mid-transaction, or are simply not allowed in. Each case runs while a
// healthy client keeps querying: a bad client must never disturb anyone else.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import {
  cancelRequestPacket,
  cstring,
  errorFields,
  md5PasswordMessage,
  PROTOCOL_3_0,
  queryMessage,
  RawClient,
  rawTrustLogin,
  startupPacket,
  typedMessage,
  type BackendMessage,
} from './helpers/raw-client.js';
import { prng } from './helpers/prng.js';


function randomBytes(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

function int16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v, 0);
  return b;
}

function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v | 0, 0);
  return b;
}

/** Every field of the only message, which must be an ErrorResponse, and that the peer then closed. */
async function expectErrorThenClose(client: RawClient, timeoutMs = 5000): Promise<Map<string, string>> {
  const messages = await client.readToClose(timeoutMs);
  expect(messages.map((m) => m.type)).toEqual(['E']);
  expect(client.closed).toBe(true);
  return errorFields(messages[0]!.body);
}

interface Healthy {
  count: number;
  errors: unknown[];
}

/**
 * Runs `body` while a separate, healthy pg client runs `select 1` in a loop; afterwards the healthy
 * client must still answer, and it must have seen no error at all.
 */
async function whileHealthy(gw: TestGateway, body: () => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: gw.url('app'), application_name: 'healthy-loop' });
  const health: Healthy = { count: 0, errors: [] };
  client.on('error', (err) => health.errors.push(err));
  await client.connect();
  await client.query('SELECT 1');
  health.count++;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await client.query<{ one: number }>('SELECT 1 AS one');
        if (r.rows[0]?.one !== 1) throw new Error('healthy client got a wrong answer');
        health.count++;
      } catch (err) {
        health.errors.push(err);
        return;
      }
    }
  })();
  try {
    await body();
  } finally {
    running = false;
    await loop;
    await client.query('SELECT 1').then(() => health.count++, (err: unknown) => health.errors.push(err));
    await client.end().catch((err: unknown) => health.errors.push(err));
  }
  expect(health.errors).toEqual([]);
  expect(health.count).toBeGreaterThan(1);
}

describe('bad input from clients (pool of one server connection per user)', () => {
  let gw: TestGateway;
  const address = (): { host: string; port: number } => ({ host: gw.host, port: gw.port });

  beforeAll(async () => {
    gw = await startGateway({
      // query_wait_timeout below startup_timeout, so a client stuck waiting for the pool hears why.
      pool: '{ mode: session, size: 1, query_wait_timeout_ms: 2500 }',
      yaml: 'limits: { startup_timeout_ms: 3000 }',
    });
    await adminQuery('DROP TABLE IF EXISTS bad_input_rows');
    await adminQuery('CREATE TABLE bad_input_rows (marker text)');
    await adminQuery('GRANT ALL ON bad_input_rows TO app');
  });

  afterAll(async () => {
    await gw?.stop();
    await adminQuery('DROP TABLE IF EXISTS bad_input_rows');
  });

  /** A trustuser client (the trustuser pool has one server connection) that runs one query and leaves. */
  async function trustQuery<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
    const client = new pg.Client({ connectionString: gw.url('trustuser', 'app', '') });
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  it('answers random bytes as a startup packet with 08P01 or a close, and keeps serving', async () => {
    await whileHealthy(gw, async () => {
      const next = prng(20_260_101);
      const sizes = [1, 3, 4, 7, 8, 9, 16, 64, 512, 4096, 10_001, 20_000];
      const inputs = sizes.map((size) => randomBytes(next, size));
      // In parallel: the ones too short to hold a length, or holding a plausible length and waiting for
      // more, end only at the startup timeout (3 s).
      await Promise.all(inputs.map(async (bytes) => {
        const client = await RawClient.connect(address());
        try {
          client.write(bytes);
          const messages: BackendMessage[] = await client.readToClose(6000);
          expect(client.closed, `after ${bytes.length} random bytes`).toBe(true);
          expect(messages.length, `after ${bytes.length} random bytes`).toBeLessThanOrEqual(1);
          for (const m of messages) {
            expect(m.type).toBe('E');
            expect(errorFields(m.body).get('C')).toBe('08P01');
          }
        } finally {
          client.destroy();
        }
      }));
      // A valid version with a garbage body (no terminators) is a protocol violation too.
      const client = await RawClient.connect(address());
      client.write(Buffer.concat([int32(8 + 200), int32(PROTOCOL_3_0), randomBytes(next, 200).map((b) => b || 1)]));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('08P01');
      expect(fields.get('S')).toBe('FATAL');
    });
    expect(gw.gateway.clientCount).toBe(0);
  });

  it('refuses a startup packet claiming 0x7fffffff bytes with 08P01', async () => {
    await whileHealthy(gw, async () => {
      const client = await RawClient.connect(address());
      client.write(Buffer.concat([int32(0x7fffffff), int32(PROTOCOL_3_0)]));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('08P01');
      expect(fields.get('M')).toMatch(/length/);
    });
  });

  it('refuses a Query frame claiming 0x7fffffff bytes after login with 08P01, and frees the server connection', async () => {
    await whileHealthy(gw, async () => {
      const { client } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app' });
      client.write(Buffer.concat([Buffer.from('Q'), int32(0x7fffffff), Buffer.from('select 1')]));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('08P01');
      expect(await trustQuery<{ n: number }>('SELECT 1 AS n')).toEqual([{ n: 1 }]);
    });
  });

  it('refuses a frame whose length is below 4 after login with 08P01', async () => {
    await whileHealthy(gw, async () => {
      const { client } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app' });
      client.write(Buffer.concat([Buffer.from('Q'), int32(0)]));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('08P01');
      expect(await trustQuery<{ n: number }>('SELECT 2 AS n')).toEqual([{ n: 2 }]);
    });
  });

  it.each([
    [2, 0],
    [4, 0],
    [1, 0],
  ])('refuses protocol version %i.%i with 0A000 naming the version, as PostgreSQL does', async (major, minor) => {
    await whileHealthy(gw, async () => {
      const client = await RawClient.connect(address());
      client.write(startupPacket({ user: 'app', database: 'app' }, (major << 16) | minor));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('0A000');
      expect(fields.get('M')).toContain(`${major}.${minor}`);
    });
  });

  it.each([
    ['3.2 with a _pq_ option', (3 << 16) | 2, { '_pq_.foo': 'bar' }, ['_pq_.foo']],
    ['3.2 without options', (3 << 16) | 2, {}, []],
    ['3.0 with a _pq_ option', PROTOCOL_3_0, { '_pq_.compression': 'on' }, ['_pq_.compression']],
  ])('answers %s with NegotiateProtocolVersion (3.0), then logs in normally', async (_name, version, extra, unrecognized) => {
    await whileHealthy(gw, async () => {
      const client = await RawClient.connect(address());
      try {
        client.write(startupPacket({ user: 'trustuser', database: 'app', ...extra }, version));
        const first = await client.readMessage();
        expect(first?.type).toBe('v');
        const body = first!.body;
        expect(body.readInt32BE(0)).toBe(PROTOCOL_3_0);
        expect(body.readInt32BE(4)).toBe(unrecognized.length);
        const names = body.subarray(8).toString('utf8').split('\0').filter(Boolean);
        expect(names).toEqual(unrecognized);

        const { message: ready, before } = await client.readUntil('Z');
        expect(before[0]?.type).toBe('R');
        expect(before[0]?.body.readInt32BE(0)).toBe(0); // AuthenticationOk
        expect(before.some((m) => m.type === 'K')).toBe(true);
        expect(before.some((m) => m.type === 'E')).toBe(false);
        expect(ready.body.toString('latin1')).toBe('I');

        client.write(queryMessage("SELECT 'negotiated'"));
        const { message: done, before: rows } = await client.readUntil('Z');
        expect(done.body.toString('latin1')).toBe('I');
        expect(rows.map((m) => m.type)).toEqual(['T', 'D', 'C']);
        expect(rows[1]!.body.toString('utf8')).toContain('negotiated');
        client.write(typedMessage('X'));
        await client.waitClosed();
      } finally {
        client.destroy();
      }
    });
  });

  it('survives clients that vanish in the middle of a startup packet and of a Query frame', async () => {
    await whileHealthy(gw, async () => {
      const startup = startupPacket({ user: 'trustuser', database: 'app' });
      const half = await RawClient.connect(address());
      half.write(startup.subarray(0, Math.floor(startup.length / 2)));
      half.destroy();

      const { client } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app' });
      const query = queryMessage('SELECT pg_backend_pid()');
      client.write(query.subarray(0, 9));
      client.destroy();
      // The pool has one server connection for trustuser: the next client gets it only if it came back.
      expect(await trustQuery<{ n: number }>('SELECT 3 AS n')).toEqual([{ n: 3 }]);
    });
  });

  it('rolls back and resets the session of a client that vanishes mid-transaction', async () => {
    await whileHealthy(gw, async () => {
      const { client, pid } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app', application_name: 'raw-midtx' });
      client.write(queryMessage([
        'SET statement_timeout = 1234',
        "PREPARE leftover_stmt AS SELECT 'leftover'",
        'CREATE TEMP TABLE leftover_tmp (x int)',
        'BEGIN',
        "INSERT INTO bad_input_rows VALUES ('midtx-marker')",
      ].join('; ')));
      const { message: ready, before } = await client.readUntil('Z');
      expect(before.filter((m) => m.type === 'E')).toEqual([]);
      expect(ready.body.toString('latin1')).toBe('T'); // in a transaction
      client.destroy();

      const [state] = await trustQuery<{
        pid: number; tx: string | null; fresh: boolean; app: string; timeout: string; prepared: number; tmp: string | null; marker: number;
      }>(`SELECT pg_backend_pid() AS pid, txid_current_if_assigned()::text AS tx, now() = statement_timestamp() AS fresh,
                 current_setting('application_name') AS app, current_setting('statement_timeout') AS timeout,
                 (SELECT count(*)::int FROM pg_prepared_statements) AS prepared,
                 to_regclass('pg_temp.leftover_tmp')::text AS tmp,
                 (SELECT count(*)::int FROM bad_input_rows WHERE marker = 'midtx-marker') AS marker`);
      // Same server connection (session mode shows its real pid), with nothing left of the last client.
      expect(state).toEqual({ pid, tx: null, fresh: true, app: '', timeout: '0', prepared: 0, tmp: null, marker: 0 });
      const committed = await adminQuery("SELECT 1 FROM bad_input_rows WHERE marker = 'midtx-marker'");
      expect(committed.rowCount).toBe(0);
    });
  });

  it('does not commit the rows of a client that vanishes in the middle of COPY FROM STDIN', async () => {
    await whileHealthy(gw, async () => {
      const { client } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app' });
      client.write(queryMessage('COPY bad_input_rows (marker) FROM STDIN'));
      const copyIn = await client.readMessage();
      expect(copyIn?.type).toBe('G');
      for (let i = 0; i < 100; i++) client.write(typedMessage('d', Buffer.from('copy-marker\n')));
      client.destroy();

      const [state] = await trustQuery<{ n: number; tx: string | null }>(
        "SELECT count(*)::int AS n, txid_current_if_assigned()::text AS tx FROM bad_input_rows WHERE marker = 'copy-marker'");
      expect(state).toEqual({ n: 0, tx: null });
    });
  });

  it('does not commit an Execute that a vanished client never followed with Sync', async () => {
    await whileHealthy(gw, async () => {
      const { client } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app' });
      const parse = typedMessage('P', Buffer.concat([cstring(''), cstring("INSERT INTO bad_input_rows VALUES ('unsynced-marker')"), int16(0)]));
      const bind = typedMessage('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(0)]));
      const execute = typedMessage('E', Buffer.concat([cstring(''), int32(0)]));
      client.write(Buffer.concat([parse, bind, execute, typedMessage('H')])); // Flush, no Sync
      const answers = [await client.readMessage(), await client.readMessage(), await client.readMessage()];
      expect(answers.map((m) => m?.type)).toEqual(['1', '2', 'C']);
      client.destroy();

      // On a direct connection the backend aborts the implicit transaction when the client goes away.
      const [state] = await trustQuery<{ n: number }>("SELECT count(*)::int AS n FROM bad_input_rows WHERE marker = 'unsynced-marker'");
      expect(state).toEqual({ n: 0 });
      const direct = await adminQuery("SELECT 1 FROM bad_input_rows WHERE marker = 'unsynced-marker'");
      expect(direct.rowCount).toBe(0);
    });
  });

  it('does not keep the only server connection busy for a client that vanished mid-query', async () => {
    await whileHealthy(gw, async () => {
      const { client, pid } = await rawTrustLogin(address(), { user: 'trustuser', database: 'app' });
      try {
        client.write(queryMessage('SELECT pg_sleep(20)'));
        for (let i = 0; i < 100; i++) {
          const r = await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(20)%'", [pid]);
          if (r.rowCount === 1) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        client.destroy();
        // The pool has one connection; the next client waits at most query_wait_timeout (2.5 s) for it.
        expect(await trustQuery<{ n: number }>('SELECT 4 AS n')).toEqual([{ n: 4 }]);
      } finally {
        client.destroy();
        // Whatever pgway did, end the sleep so the pool is free for the next test.
        await adminQuery('SELECT pg_cancel_backend($1)', [pid]);
      }
    });
  });

  it('refuses a wrong password with FATAL 28P01 and closes the client', async () => {
    await whileHealthy(gw, async () => {
      const client = await RawClient.connect(address());
      client.write(startupPacket({ user: 'md5user', database: 'app' }));
      const challenge = await client.readMessage();
      expect(challenge?.type).toBe('R');
      expect(challenge!.body.readInt32BE(0)).toBe(5); // AuthenticationMD5Password
      client.write(md5PasswordMessage('md5user', 'wrong-password', challenge!.body.subarray(4, 8)));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('28P01');
      expect(fields.get('S')).toBe('FATAL');
      expect(fields.get('M')).toBe('password authentication failed for user "md5user"');

      const scram = new pg.Client({ connectionString: gw.url('app', 'app', 'wrong-password') });
      await expect(scram.connect()).rejects.toMatchObject({ code: '28P01', severity: 'FATAL' });
    });
  });

  it('refuses an unknown user the same way as a wrong password', async () => {
    await whileHealthy(gw, async () => {
      const client = new pg.Client({ connectionString: gw.url('no_such_user', 'app', 'whatever') });
      await expect(client.connect()).rejects.toMatchObject({ code: '28P01', message: 'password authentication failed for user "no_such_user"' });
    });
  });

  it('refuses an unknown database with 3D000', async () => {
    await whileHealthy(gw, async () => {
      const client = new pg.Client({ connectionString: gw.url('app', 'no_such_db') });
      await expect(client.connect()).rejects.toMatchObject({ code: '3D000', message: 'database "no_such_db" does not exist' });
      const trust = new pg.Client({ connectionString: gw.url('trustuser', 'no_such_db', '') });
      await expect(trust.connect()).rejects.toMatchObject({ code: '3D000' });
    });
  });

  it('refuses a startup packet without a user with 28000', async () => {
    await whileHealthy(gw, async () => {
      const client = await RawClient.connect(address());
      client.write(startupPacket({ database: 'app' }));
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('28000');
    });
  });
});

describe('a request sent in the same write as the StartupMessage (transaction mode)', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2500 }' });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('is answered after the login reply when the login completes within that read (trust)', async () => {
    await whileHealthy(gw, async () => {
      // A first login teaches the pool its server's parameters; from then on a trust login needs no server.
      const first = new pg.Client({ connectionString: gw.url('trustuser', 'app', '') });
      await first.connect();
      await first.end();
      const client = await RawClient.connect({ host: gw.host, port: gw.port });
      try {
        client.write(Buffer.concat([startupPacket({ user: 'trustuser', database: 'app' }), queryMessage("SELECT 'pipelined'")]));
        const login = await client.readUntil('Z');
        expect(login.before[0]?.type).toBe('R');
        expect(login.before.some((m) => m.type === 'E')).toBe(false);
        const { message: done, before: rows } = await client.readUntil('Z');
        expect(rows.map((m) => m.type)).toEqual(['T', 'D', 'C']);
        expect(rows[1]!.body.toString('utf8')).toContain('pipelined');
        expect(done.body.toString('latin1')).toBe('I');
      } finally {
        client.destroy();
      }
    });
  });
});

describe('max_client_conn', () => {
  const MAX = 3;
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({ yaml: `limits: { max_client_conn: ${MAX} }` });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('refuses the client after the limit with 53300, still takes cancel requests, and admits again when one leaves', async () => {
    await whileHealthy(gw, async () => {
      // The healthy client is one of the MAX.
      const admitted: pg.Client[] = [];
      try {
        for (let i = 1; i < MAX; i++) {
          const c = new pg.Client({ connectionString: gw.url() });
          await c.connect();
          admitted.push(c);
        }
        const extra = new pg.Client({ connectionString: gw.url() });
        await expect(extra.connect()).rejects.toMatchObject({ code: '53300', message: expect.stringContaining('sorry, too many clients already') });

        const raw = await RawClient.connect({ host: gw.host, port: gw.port });
        raw.write(startupPacket({ user: 'app', database: 'app' }));
        const fields = await expectErrorThenClose(raw);
        expect(fields.get('C')).toBe('53300');
        expect(fields.get('S')).toBe('FATAL');

        // A CancelRequest is not a client: it still works at the limit.
        const sleeper = admitted[0]!;
        const pid = (await sleeper.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const key = sleeper as unknown as { secretKey: number };
        const sleeping = sleeper.query('SELECT pg_sleep(30)');
        sleeping.catch(() => undefined);
        for (let i = 0; i < 100; i++) {
          const r = await adminQuery("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'", [pid]);
          if (r.rowCount === 1) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const cancel = await RawClient.connect({ host: gw.host, port: gw.port });
        cancel.write(cancelRequestPacket(pid, key.secretKey));
        await cancel.waitClosed();
        await expect(sleeping).rejects.toMatchObject({ code: '57014' });

        await admitted.pop()!.end();
        const again = new pg.Client({ connectionString: gw.url() });
        await again.connect();
        admitted.push(again);
        expect((await again.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      } finally {
        await Promise.all(admitted.map((c) => c.end()));
      }
    });
  });
});

describe('a client that holds frames without completing a request', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    // 4 KiB messages: at most 16 KiB held for an incomplete request.
    gw = await startGateway({ pool: '{ mode: transaction, size: 1 }', yaml: 'limits: { max_message_bytes: 4096 }' });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('is refused with 08P01 for the read buffers its tiny frames keep, not only their bytes', async () => {
    await whileHealthy(gw, async () => {
      const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
      client.socket.setNoDelay(true);
      // 400 Describe frames of 7 bytes (2.8 KB in all), each in its own write and so its own read.
      const describe = typedMessage('D', Buffer.from('S\0'));
      let sent = 0;
      while (sent < 400 && !client.closed) {
        client.write(describe);
        sent++;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const fields = await expectErrorThenClose(client);
      expect(fields.get('C')).toBe('08P01');
      expect(fields.get('M')).toContain('too much data');
      expect(sent).toBeLessThan(400);
    });
  });
});
