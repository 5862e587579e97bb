// Session state in transaction mode over a pool of 2: SETs, RESETs and pins carried or released as on a
// direct PostgreSQL connection, read both on the connection that ran them and on another one; and a
// pooled client's lifecycle: DEALLOCATE ALL / DISCARD ALL next to other clients' named statements, a
// Terminate sent with a Query, a client that vanishes with a SET in flight, and cancel requests.
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { cancelRequestPacket, errorFields, queryMessage, rawTrustLogin, readCycle, typedMessage, type RawClient } from './helpers/raw-client.js';
import { clientsOfEachTest, errorOf, onAnotherConnection, onConnection, pidOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';
import { startHoldingProxy, type HoldingProxy } from './helpers/holding-proxy.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS ps_log, ps_seq_t');
  await adminQuery('CREATE TABLE ps_log (tag text)');
  await adminQuery('CREATE TABLE ps_seq_t (id serial PRIMARY KEY, v text)');
  await adminQuery('GRANT ALL ON ps_log, ps_seq_t TO app');
  await adminQuery('GRANT ALL ON SEQUENCE ps_seq_t_id_seq TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS ps_log, ps_seq_t');
});

const testClients = clientsOfEachTest({ endWithinMs: 2000 });
type Cfg = Omit<pg.ClientConfig, 'connectionString'>;
const connect = (user = 'app', config: Cfg = {}): Promise<pg.Client> => testClients.connect({ connectionString: gw.url(user), ...config });
const direct = (config: Cfg = {}): Promise<pg.Client> =>
  testClients.connect({ connectionString: pgUrl(lab().primary, 'app', 'app-secret', 'app'), ...config });

/** A direct connection as the lab's superuser, which the admin user stands for through pgway. */
function directSuperuser(): Promise<pg.Client> {
  const info = lab();
  return testClients.connect({ ...info.primary, user: info.superuser, password: info.superuserPassword, database: 'app' });
}

const raws: RawClient[] = [];
afterEach(() => { // before the clients above are ended (hooks run last registered first)
  for (const r of raws.splice(0)) r.destroy();
});

/** A raw client with the startup parameters node-pg sends, so its settings equal a pg client's. */
async function rawLogin(): Promise<RawClient> {
  const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', client_encoding: 'UTF8' });
  raws.push(client);
  return client;
}


async function setting(c: pg.Client, name: string): Promise<{ v: string | null; pid: number }> {
  return (await c.query<{ v: string | null; pid: number }>('SELECT current_setting($1, true) AS v, pg_backend_pid() AS pid', [name])).rows[0]!;
}

function sendCancel(pid: number, secret: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: gw.host, port: gw.port }, () => socket.end(cancelRequestPacket(pid, secret)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

function backendKey(client: pg.Client): { processID: number; secretKey: number } {
  return client as unknown as { processID: number; secretKey: number };
}

describe('settings bookkeeping', () => {
  it('keeps a SET committed by COMMIT in a multi-statement query that later fails', async () => {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const d = await direct();
    for (const c of [a, d]) {
      await expect(c.query("SET statement_timeout = '7s'; COMMIT; SELECT 1/0")).rejects.toMatchObject({ code: '22012' });
    }
    expect((await setting(d, 'statement_timeout')).v).toBe('7s');
    const first = await setting(a, 'statement_timeout');
    const second = await onAnotherConnection(first.pid, [h1, h2], () => setting(a, 'statement_timeout'));
    expect([first.v, second.v]).toEqual(['7s', '7s']);
  });

  it('keeps a SET sent as its own Query in the same write as a failing one, as separate requests commit alone', async () => {
    const a = await rawLogin();
    const [h1, h2] = [await connect('trustuser'), await connect('trustuser')];
    a.write(Buffer.concat([queryMessage("SET myapp.tenant = 'kept'"), queryMessage('SELECT 1/0')]));
    expect([(await readCycle(a)).errors, (await readCycle(a)).errors]).toEqual([[], ['22012']]);
    const read = async (): Promise<(string | null)[]> => {
      a.write(queryMessage("SELECT current_setting('myapp.tenant', true), pg_backend_pid()"));
      return (await readCycle(a)).rows[0]!;
    };
    const first = await read();
    const second = await onAnotherConnection(Number(first[1]), [h1, h2], read);
    expect([first[0], second[0], first[1] !== second[1]]).toEqual(['kept', 'kept', true]);
  });

  it('drops a SET whose text fails before its COMMIT, as on a direct connection', async () => {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const d = await direct();
    for (const c of [a, d]) {
      await expect(c.query("SET statement_timeout = '9s'; SELECT 1/0; COMMIT")).rejects.toMatchObject({ code: '22012' });
    }
    const expected = (await setting(d, 'statement_timeout')).v;
    const first = await setting(a, 'statement_timeout');
    const second = await onAnotherConnection(first.pid, [h1, h2], () => setting(a, 'statement_timeout'));
    expect([first.v, second.v]).toEqual([expected, expected]);
    expect(expected).not.toBe('9s');
  });

  it('keeps a SET committed by COMMIT AND CHAIN when the chained transaction rolls back', async () => {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const d = await direct();
    for (const c of [a, d]) {
      await c.query('BEGIN');
      await c.query("SET statement_timeout = '6s'");
      await c.query('COMMIT AND CHAIN');
      await c.query("SET statement_timeout = '66s'");
      await c.query('ROLLBACK');
    }
    expect((await setting(d, 'statement_timeout')).v).toBe('6s');
    const first = await setting(a, 'statement_timeout');
    const second = await onAnotherConnection(first.pid, [h1, h2], () => setting(a, 'statement_timeout'));
    expect([first.v, second.v]).toEqual(['6s', '6s']);
  });

  it('survives SET transaction_isolation inside a transaction, then moving to another connection', async () => {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const d = await direct();
    const seen: Record<string, unknown[]> = { direct: [], pgway: [] };
    for (const [name, c] of [['direct', d], ['pgway', a]] as const) {
      await c.query('BEGIN');
      await c.query("SET transaction_isolation = 'repeatable read'");
      seen[name]!.push((await setting(c, 'transaction_isolation')).v);
      await c.query('COMMIT');
    }
    seen.direct!.push((await setting(d, 'transaction_isolation')).v);
    const first = await setting(a, 'transaction_isolation');
    seen.pgway!.push(first.v);
    const moved = await errorOf(onAnotherConnection(first.pid, [h1, h2], async () => {
      seen.pgway!.push((await setting(a, 'transaction_isolation')).v);
    }));
    expect(moved, String(moved)).toBeUndefined();
    expect(seen.pgway).toEqual([...seen.direct!, seen.direct![1]]);
  });
});

describe('set_config with a bound value (extended protocol)', () => {
  it('carries the value bound to the parameter to another connection, without pinning the client', async () => {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    const [h1, h2] = [await connect(), await connect()];
    // Three clients over a pool of 2: a pinned one would leave the third waiting.
    for (const [i, client] of [a, b, c].entries()) await client.query("SELECT set_config('myapp.tenant', $1, false)", [`tenant-${i}`]);
    const read = (client: pg.Client) => setting(client, 'myapp.tenant');
    const first = await read(a);
    const second = await onAnotherConnection(first.pid, [h1, h2], () => read(a));
    expect([first.v, second.v, (await read(b)).v, (await read(c)).v]).toEqual(['tenant-0', 'tenant-0', 'tenant-1', 'tenant-2']);
  });

  it('a NULL value resets the setting, as set_config does', async () => {
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const d = await direct();
    for (const client of [a, d]) {
      await client.query("SET statement_timeout = '42s'");
      await client.query("SELECT set_config('statement_timeout', $1::text, false)", [null]);
    }
    const expected = (await setting(d, 'statement_timeout')).v;
    const first = await setting(a, 'statement_timeout');
    const second = await onAnotherConnection(first.pid, [h1, h2], () => setting(a, 'statement_timeout'));
    expect([first.v, second.v]).toEqual([expected, expected]);
    expect(expected).toBe('0');
  });
});

describe('SETs around savepoints', () => {
  const GUCS = ['statement_timeout', 'lock_timeout', 'work_mem'];
  // Each step is one Query; the settings after the last one must read as on a direct connection.
  const cases: [string, string[]][] = [
    ['ROLLBACK TO SAVEPOINT keeps the SETs made before the savepoint', [
      'BEGIN', "SET statement_timeout = '11s'", 'SAVEPOINT s', "SET lock_timeout = '12s'", 'ROLLBACK TO SAVEPOINT s', 'COMMIT']],
    ['ROLLBACK TO SAVEPOINT after an error recovers the transaction and the SETs before the savepoint', [
      'BEGIN', "SET statement_timeout = '21s'", 'SAVEPOINT s', "SET lock_timeout = '22s'", 'SELECT 1/0',
      'ROLLBACK TO s', "SET work_mem = '2300kB'", 'COMMIT']],
    ['nested savepoints: ROLLBACK TO the outer one undoes both', [
      'BEGIN', "SET statement_timeout = '31s'", 'SAVEPOINT a', "SET statement_timeout = '32s'", 'SAVEPOINT b',
      "SET statement_timeout = '33s'", "SET lock_timeout = '34s'", 'ROLLBACK TO a', 'COMMIT']],
    ['RELEASE keeps what the released savepoint covered', [
      'BEGIN', 'SAVEPOINT a', "SET statement_timeout = '41s'", 'SAVEPOINT b', "SET lock_timeout = '42s'", 'RELEASE a',
      "SET work_mem = '4300kB'", 'COMMIT']],
    ["psql's ON_ERROR_ROLLBACK pattern: a savepoint per statement", [
      'BEGIN', 'SAVEPOINT p', "SET statement_timeout = '51s'", 'RELEASE p', 'SAVEPOINT p', 'SELECT 1/0', 'ROLLBACK TO p',
      'SAVEPOINT p', "SET lock_timeout = '52s'", 'RELEASE p', 'COMMIT']],
    ['savepoints inside one query string', [
      'BEGIN', "SET statement_timeout = '61s'; SAVEPOINT s; SET lock_timeout = '62s'; ROLLBACK TO s; SET work_mem = '6300kB'",
      'COMMIT']],
    ['a COMMIT of a transaction failed past its savepoint rolls everything back', [
      'BEGIN', "SET statement_timeout = '71s'", 'SAVEPOINT s', 'SELECT 1/0', 'COMMIT']],
    ['a SAVEPOINT reused by name: ROLLBACK TO goes back to the latest', [
      'BEGIN', 'SAVEPOINT s', "SET statement_timeout = '81s'", 'SAVEPOINT s', "SET lock_timeout = '82s'", 'ROLLBACK TO s',
      'COMMIT']],
    ['ROLLBACK TO a savepoint made before the first SET undoes all of them', [
      'BEGIN', 'SAVEPOINT s', "SET statement_timeout = '91s'", "SET lock_timeout = '92s'", 'ROLLBACK TO s', 'COMMIT']],
  ];

  for (const [name, steps] of cases) {
    it(name, async () => {
      const a = await connect();
      const [h1, h2] = [await connect(), await connect()];
      const d = await direct();
      const run = async (c: pg.Client): Promise<string[]> => {
        const codes: string[] = [];
        for (const sql of steps) codes.push(sqlstate(await errorOf(c.query(sql))) ?? 'ok');
        return codes;
      };
      const read = async (c: pg.Client): Promise<{ values: (string | null)[]; pid: number }> => {
        const sql = `SELECT ${GUCS.map((g) => `current_setting('${g}')`).join(', ')}, pg_backend_pid()`;
        const row = (await c.query<unknown[]>({ text: sql, rowMode: 'array' })).rows[0]!;
        return { values: row.slice(0, GUCS.length) as string[], pid: row[GUCS.length] as number };
      };
      const [directCodes, pgwayCodes] = [await run(d), await run(a)];
      const expected = (await read(d)).values;
      const first = await read(a);
      const second = await onAnotherConnection(first.pid, [h1, h2], () => read(a));
      expect(pgwayCodes).toEqual(directCodes);
      expect({ first: first.values, second: second.values }).toEqual({ first: expected, second: expected });
      expect(second.pid).not.toBe(first.pid);
    });
  }
});

describe('a long transaction full of SETs', () => {
  /** The server connection SHOW CLIENTS lists for the client with this application_name ('' when none). */
  async function linkOf(applicationName: string): Promise<string> {
    const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
    testClients.opened.push(admin);
    await admin.connect();
    const { rows } = await admin.query<{ application_name: string; link: string | null }>('SHOW CLIENTS');
    const row = rows.find((r) => r.application_name === applicationName);
    expect(row).toBeDefined();
    return row!.link ?? '';
  }

  it('follows the same setting set 12,000 times in one transaction without pinning the client', async () => {
    const a = await connect('app', { application_name: 'ps-many-sets' });
    const [h1, h2] = [await connect(), await connect()];
    await a.query('BEGIN');
    for (let i = 1; i <= 12_000; i++) await a.query(`SET statement_timeout = '${i}ms'`);
    await a.query('COMMIT');
    expect(await linkOf('ps-many-sets')).toBe('');
    const first = await setting(a, 'statement_timeout');
    const second = await onAnotherConnection(first.pid, [h1, h2], () => setting(a, 'statement_timeout'));
    expect([first.v, second.v]).toEqual(['12s', '12s']);
  }, 60_000);

  it('pins a client that makes more distinct SETs in one transaction than pgway follows, until DISCARD ALL', async () => {
    const a = await connect('app', { application_name: 'ps-wide-sets' });
    const sets = Array.from({ length: 10_050 }, (_, i) => `SET ps_wide.v${i} = '${i}'`).join('; ');
    await a.query('BEGIN');
    await a.query(`${sets}; SET statement_timeout = '77s'`);
    await a.query('COMMIT');
    expect(await linkOf('ps-wide-sets')).not.toBe('');
    expect((await setting(a, 'ps_wide.v10049')).v).toBe('10049');
    expect((await setting(a, 'statement_timeout')).v).toBe('77s');
    await a.query('DISCARD ALL');
    // Unpinned; the connection goes back once pgway has laid the client's settings on it again.
    await waitFor('the client to give its server connection back', async () => (await linkOf('ps-wide-sets')) === '');
    expect((await setting(a, 'statement_timeout')).v).toBe('0');
  }, 60_000);
});

describe('pins released', () => {
  for (const [what, make, undo] of [
    ['its temp table is dropped', 'CREATE TEMP TABLE ps_tmp (x int)', 'DROP TABLE ps_tmp'],
    ['its hold cursor is closed by name', 'DECLARE ps_cur CURSOR WITH HOLD FOR SELECT 1', 'CLOSE ps_cur'],
    ['pg_advisory_unlock_all()', 'SELECT pg_advisory_lock(4242)', 'SELECT pg_advisory_unlock_all()'],
    ['UNLISTEN *', 'LISTEN ps_ch', 'UNLISTEN *'],
    ['UNLISTEN of its only channel', 'LISTEN ps_ch1', 'UNLISTEN ps_ch1'],
  ] as const) {
    it(`frees the server connection of a client once ${what}`, async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query(make);
      await a.query(undo);
      await b.query(make);
      await b.query(undo);
      // Both clients idle, state gone: a third client must get a connection.
      const r = await errorOf(c.query('SELECT 1'));
      expect(sqlstate(r)).toBeUndefined();
    });
  }
});


describe('a LISTEN pin after UNLISTEN of one channel', () => {
  it('keeps the client on its connection, hearing its other channel, while it listens to one', async () => {
    const [a, notifier] = [await connect(), await connect()];
    const heard: string[] = [];
    a.on('notification', (n) => heard.push(`${n.channel}:${n.payload ?? ''}`));
    await a.query('LISTEN ps_keep1; LISTEN ps_keep2');
    await a.query('UNLISTEN ps_keep1');
    const [b, c] = [await connect(), await connect()];
    await Promise.all([b.query('SELECT 1'), c.query('SELECT 1')].map((p) => p.catch(() => undefined)));
    await notifier.query(`SELECT pg_notify('ps_keep1', 'one'), pg_notify('ps_keep2', 'two')`);
    await waitFor('the notification', () => heard.length > 0);
    expect(heard).toEqual(['ps_keep2:two']);
  });
});

describe('advisory locks: the pin lasts as long as the server says a lock is held', () => {
  for (const [what, key, statements] of [
    ['a SQL-level EXECUTE took a lock, as a SELECT of it would', 4650, ['PREPARE ps_lockit AS SELECT pg_advisory_lock(4650)', 'EXECUTE ps_lockit']],
    // EXPLAIN plans the statement, but evaluates the parameters it is given.
    ['EXPLAIN EXECUTE took a lock in a parameter', 4653, ['PREPARE ps_explained(text) AS SELECT $1', 'EXPLAIN EXECUTE ps_explained(pg_advisory_lock(4653)::text)']],
  ] as const) {
    it(`pins a client whose ${what}`, async () => {
      const a = await connect();
      for (const sql of statements) await a.query(sql);
      const [b, c] = [await connect(), await connect()];
      await Promise.all([b.query('SELECT 1'), c.query('SELECT 1')].map((p) => p.catch(() => undefined)));
      // Only the session that holds a lock can unlock it: a is still on it.
      expect((await a.query<{ ok: boolean }>('SELECT pg_advisory_unlock($1) AS ok', [key])).rows).toEqual([{ ok: true }]);
    });
  }

  it('frees the connection of a client whose pg_try_advisory_lock did not get the lock', async () => {
    const holder = await direct();
    await holder.query('SELECT pg_advisory_lock(4545)');
    try {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      for (const client of [a, b]) {
        expect((await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock(4545) AS got')).rows).toEqual([{ got: false }]);
      }
      expect(sqlstate(await errorOf(c.query('SELECT 1')))).toBeUndefined();
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
    }
  });

  it('frees it once pg_advisory_unlock released the last lock the client held', async () => {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    for (const [client, key] of [[a, 4646], [b, 4647]] as const) {
      await client.query('SELECT pg_advisory_lock($1)', [key]);
      expect((await client.query<{ ok: boolean }>('SELECT pg_advisory_unlock($1) AS ok', [key])).rows).toEqual([{ ok: true }]);
    }
    expect(sqlstate(await errorOf(c.query('SELECT 1')))).toBeUndefined();
  });

  it('keeps the client on its connection while it still holds one of its locks', async () => {
    const a = await connect();
    await a.query('SELECT pg_advisory_lock(4648), pg_advisory_lock(4649)');
    expect((await a.query<{ ok: boolean }>('SELECT pg_advisory_unlock(4648) AS ok')).rows).toEqual([{ ok: true }]);
    const [b, c] = [await connect(), await connect()];
    await Promise.all([b.query('SELECT 1'), c.query('SELECT 1')].map((p) => p.catch(() => undefined)));
    // Only the session that holds a lock can unlock it: a is still on it.
    expect((await a.query<{ ok: boolean }>('SELECT pg_advisory_unlock(4649) AS ok')).rows).toEqual([{ ok: true }]);
  });
});

describe('pins of state a rolled-back transaction took with it', () => {
  for (const [what, make] of [
    ['a LISTEN', 'LISTEN ps_rb_ch'],
    ['a temp table', 'CREATE TEMP TABLE ps_rb_tmp (x int)'],
    ['a hold cursor', 'DECLARE ps_rb_cur CURSOR WITH HOLD FOR SELECT 1'],
  ] as const) {
    it(`frees the server connection of a client whose transaction with ${what} rolled back`, async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      for (const client of [a, b]) {
        await client.query('BEGIN');
        await client.query(make);
        await client.query('ROLLBACK');
      }
      // Nothing is left on either connection: a third client must get one.
      expect(sqlstate(await errorOf(c.query('SELECT 1')))).toBeUndefined();
    });
  }

  it('frees it after an error in the same query string, as the implicit transaction rolls back', async () => {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    for (const client of [a, b]) expect(sqlstate(await errorOf(client.query('LISTEN ps_rb_ch; SELECT 1/0')))).toBe('22012');
    expect(sqlstate(await errorOf(c.query('SELECT 1')))).toBeUndefined();
  });

  it('keeps a LISTEN that a COMMIT earlier in the failing query string kept: the client still hears its channel', async () => {
    const a = await connect();
    expect(sqlstate(await errorOf(a.query('BEGIN; LISTEN ps_rb_kept; COMMIT; SELECT 1/0')))).toBe('22012');
    // Other clients take turns on the connections meanwhile.
    const [b, c] = [await connect(), await connect()];
    await Promise.all([b.query('SELECT 1'), c.query('SELECT 1')]);
    const heard = new Promise<string | undefined>((resolve) => a.once('notification', (n) => resolve(n.payload)));
    await adminQuery("SELECT pg_notify('ps_rb_kept', 'still here')");
    expect(await Promise.race([heard, sleep(3000).then(() => 'nothing heard')])).toBe('still here');
  });

  it('keeps a session advisory lock taken in a transaction that rolled back, as PostgreSQL keeps it', async () => {
    const a = await connect();
    await a.query('BEGIN');
    await a.query('SELECT pg_advisory_lock(4343)');
    await a.query('ROLLBACK');
    const [b, c] = [await connect(), await connect()];
    await Promise.all([b.query('SELECT 1'), c.query('SELECT 1')]);
    // Still a's: released by a's own unlock, which must reach the connection that holds it.
    expect((await a.query<{ ok: boolean }>('SELECT pg_advisory_unlock(4343) AS ok')).rows).toEqual([{ ok: true }]);
  });
});

describe('a named statement run after the client changed its search_path', () => {
  beforeAll(async () => {
    await adminQuery('DROP SCHEMA IF EXISTS ps_path1, ps_path2 CASCADE');
    await adminQuery('CREATE SCHEMA ps_path1; CREATE SCHEMA ps_path2');
    await adminQuery('CREATE TABLE ps_path1.ps_pt (a int); INSERT INTO ps_path1.ps_pt VALUES (1)');
    await adminQuery("CREATE TABLE ps_path2.ps_pt (a text, b text); INSERT INTO ps_path2.ps_pt VALUES ('two', 'bee')");
    await adminQuery('GRANT USAGE ON SCHEMA ps_path1, ps_path2 TO app; GRANT SELECT ON ALL TABLES IN SCHEMA ps_path1, ps_path2 TO app');
  });
  afterAll(() => adminQuery('DROP SCHEMA IF EXISTS ps_path1, ps_path2 CASCADE'));

  it("is refused under another path where it returns something else, as PostgreSQL refuses it; never leaves another client a plan made for that path", async () => {
    const q = { name: 'ps_q', text: 'SELECT * FROM ps_pt' };
    const [a, b, c] = [await connect(), await connect(), await connect()];
    for (const client of [a, c]) await client.query('SET search_path = ps_path1');
    await b.query('SET search_path = ps_path2');
    expect((await c.query(q)).rows).toEqual([{ a: 1 }]);
    expect((await a.query(q)).rows).toEqual([{ a: 1 }]);
    await a.query('SET search_path = ps_path2');
    for (let round = 0; round < 4; round++) {
      // a's statement under its new path, b's prepared under that path, c's under the first, on
      // whichever connections: each must find its own path's plan, and a's is refused each time.
      const [ra, rb, rc] = await Promise.all([errorOf(a.query(q)), b.query(q), c.query(q)]);
      expect(sqlstate(ra)).toBe('0A000');
      expect(rb.rows).toEqual([{ a: 'two', b: 'bee' }]);
      expect(rc.rows).toEqual([{ a: 1 }]);
    }
    // Back under the path it was prepared under, it runs again.
    await a.query('SET search_path = ps_path1');
    expect((await a.query(q)).rows).toEqual([{ a: 1 }]);
  });
});

describe('placeholder settings after RESET', () => {
  it("reads a custom setting that was set and reset as '' on every connection, as on a direct connection", async () => {
    const d = await direct();
    const a = await connect();
    const [h1, h2] = [await connect(), await connect()];
    const name = `ps_reset.v${Date.now()}`; // never seen by any other connection
    for (const c of [d, a]) {
      await c.query(`SET ${name} = 'x'`);
      await c.query(`RESET ${name}`);
    }
    const sql = `SELECT current_setting('${name}') AS v, pg_backend_pid() AS pid`;
    const want = (await d.query<{ v: string }>(sql)).rows[0]!.v;
    expect(want).toBe('');
    const here = (await a.query<{ v: string; pid: number }>(sql)).rows[0]!;
    const there = await onAnotherConnection(here.pid, [h1, h2], async () => {
      const err = await errorOf(a.query<{ v: string }>(sql));
      return err ? `error ${sqlstate(err)}` : (await a.query<{ v: string }>(sql)).rows[0]!.v;
    });
    expect([here.v, there]).toEqual(['', '']);
  });
});

describe('values replayed on another connection read as on a direct connection', () => {
  const cases: [string, string[], string[]][] = [
    ['quoted and odd search_path items', [`SET search_path = "My Schema", 'a,b', "$user", public, "UPPER", "select", ''`], ['search_path']],
    ['search_path through set_config', [`SELECT set_config('search_path', 'x, "B c" ,  public', false)`], ['search_path']],
    ['SET TIME ZONE forms', ['SET TIME ZONE -7', `SET TIME ZONE INTERVAL '+05:30'`], ['TimeZone']],
    ['SET TIME ZONE LOCAL', [`SET TIME ZONE 'Asia/Tokyo'`, 'SET TIME ZONE LOCAL'], ['TimeZone']],
    ['SET SESSION CHARACTERISTICS', ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE'],
      ['default_transaction_isolation', 'default_transaction_read_only', 'default_transaction_deferrable', 'transaction_isolation', 'transaction_read_only']],
    ['list and numeric values', ['SET DateStyle = German, DMY', 'SET extra_float_digits = -3', 'SET work_mem = 65536', 'SET statement_timeout = 1.5e3'],
      ['DateStyle', 'extra_float_digits', 'work_mem', 'statement_timeout']],
    ['SET SCHEMA / NAMES / XML OPTION', [`SET SCHEMA 'pub lic'`, `SET NAMES 'UTF8'`, 'SET XML OPTION CONTENT'], ['search_path', 'client_encoding', 'xmloption']],
    ['an old name of a setting (sort_mem is work_mem)', [`SET sort_mem = '16MB'`, 'RESET work_mem', `SET vacuum_mem = '32MB'`], ['work_mem', 'maintenance_work_mem']],
    ['set_config run by a SQL-level EXECUTE', [`PREPARE setapp AS SELECT set_config('application_name', 'via_execute', false)`, 'EXECUTE setapp'], ['application_name']],
    ['EXPLAIN EXECUTE plans a set_config without running it', [`PREPARE setapp AS SELECT set_config('application_name', 'via_explain', false)`, 'EXPLAIN EXECUTE setapp'], ['application_name']],
  ];
  for (const [name, statements, names] of cases) {
    it(name, async () => {
      const d = await direct();
      const a = await connect();
      const [h1, h2] = [await connect(), await connect()];
      const read = async (c: pg.Client): Promise<{ values: Record<string, string | null>; pid: number }> => {
        const values: Record<string, string | null> = {};
        let pid = 0;
        for (const n of names) {
          const r = await setting(c, n);
          values[n] = r.v;
          pid = r.pid;
        }
        return { values, pid };
      };
      for (const sql of statements) {
        const [outD, outA] = [await errorOf(d.query(sql)), await errorOf(a.query(sql))];
        expect(sqlstate(outA), `pgway vs direct for ${sql}`).toBe(sqlstate(outD));
      }
      const want = (await read(d)).values;
      const here = await read(a);
      const there = await onAnotherConnection(here.pid, [h1, h2], () => read(a));
      expect({ here: here.values, there: there.values }).toEqual({ here: want, there: want });
    });
  }

  it('SET ROLE survives moving and RESET ALL, and ends with DISCARD ALL, as on a direct connection', async () => {
    const d = await directSuperuser();
    const [a, h1, h2] = [await connect('admin'), await connect('admin'), await connect('admin')];
    const who = 'SELECT current_user::text AS u, pg_backend_pid() AS pid';
    const trace: Record<string, string[]> = { direct: [], pgway: [] };
    for (const [k, c] of [['direct', d], ['pgway', a]] as const) {
      for (const sql of ['SET ROLE app', 'RESET ALL', 'DISCARD ALL']) {
        await c.query(sql);
        const r = (await c.query<{ u: string; pid: number }>(who)).rows[0]!;
        const moved = k === 'pgway'
          ? await onAnotherConnection(r.pid, [h1, h2], async () => (await c.query<{ u: string }>(who)).rows[0]!.u)
          : r.u;
        trace[k]!.push(r.u, moved);
      }
    }
    expect(trace.pgway).toEqual(trace.direct);
  });
});

describe('settings laid on where the last client left its own', () => {
  it("reads a non-ASCII value as sent, though the connection's last client set client_encoding LATIN1", async () => {
    const d = await direct();
    const a = await connect();
    const b = await connect();
    for (const c of [d, a]) await c.query(`SET myapp.label = 'café'`);
    const want = (await setting(d, 'myapp.label')).v;
    // b leaves LATIN1 on its connection; idle connections are reused last in, first out, so a gets it next
    const bPid = await pidOf(b);
    await b.query(`SET client_encoding = 'LATIN1'`);
    const after = await setting(a, 'myapp.label');
    expect(after.pid).toBe(bPid);
    expect(after.v).toBe(want);
  });

  it('replays settings in the order of their last change: a superuser setting made before SET ROLE app', async () => {
    const d = await directSuperuser();
    const [a, h1, h2] = [await connect('admin'), await connect('admin'), await connect('admin')];
    for (const sql of ['SET ROLE app', 'SET ROLE NONE', 'SET log_min_duration_statement = 5', 'SET ROLE app']) {
      expect(await errorOf(d.query(sql)), sql).toBeUndefined();
      expect(await errorOf(a.query(sql)), sql).toBeUndefined();
    }
    const q = `SELECT current_user::text AS u, current_setting('log_min_duration_statement') AS l, pg_backend_pid() AS pid`;
    const want = (await d.query(q)).rows[0]!;
    const here = (await a.query(q)).rows[0]!;
    // Laid on in the order first made, SET ROLE app came first and the superuser setting then failed (42501).
    const there = await onAnotherConnection(here.pid, [h1, h2], async () => (await a.query(q)).rows[0]!);
    expect([here, there].map((r) => ({ u: r.u, l: r.l }))).toEqual([{ u: want.u, l: want.l }, { u: want.u, l: want.l }]);
  });
});

/**
 * A table of one name in `schema` and in public, both app's to write: which of them a row lands in
 * tells whether the request ran under the client's search_path (`s`) or without it (`p`).
 */
const twoTables = {
  async make(schema: string, table: string): Promise<void> {
    await twoTables.drop(schema, table);
    await adminQuery(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.${table} (v text); CREATE TABLE public.${table} (v text)`);
    await adminQuery(`GRANT USAGE ON SCHEMA ${schema} TO app; GRANT ALL ON ${schema}.${table}, public.${table} TO app`);
  },
  async rows(schema: string, table: string): Promise<{ s: number; p: number }> {
    const sql = `SELECT (SELECT count(*) FROM ${schema}.${table})::int AS s, (SELECT count(*) FROM public.${table})::int AS p`;
    return (await adminQuery<{ s: number; p: number }>(sql)).rows[0]!;
  },
  drop: (schema: string, table: string) => adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP TABLE IF EXISTS public.${table}`),
};

describe('settings made under a role', () => {
  /** Runs `work` with ps_setter, a role app may SET ROLE to (not inherit) that may set log_min_duration_statement. */
  async function withSetter(work: () => Promise<void>): Promise<void> {
    await adminQuery('DROP ROLE IF EXISTS ps_setter');
    await adminQuery('CREATE ROLE ps_setter NOLOGIN');
    await adminQuery('GRANT SET ON PARAMETER log_min_duration_statement TO ps_setter');
    await adminQuery('GRANT ps_setter TO app WITH INHERIT FALSE');
    try {
      await work();
    } finally {
      await testClients.endAll();
      await adminQuery('REVOKE ps_setter FROM app').catch(() => undefined);
      await adminQuery('REVOKE SET ON PARAMETER log_min_duration_statement FROM ps_setter');
      await adminQuery('DROP ROLE ps_setter');
    }
  }

  const q = `SELECT current_user::text AS u, current_setting('log_min_duration_statement') AS l, current_setting('work_mem') AS w, pg_backend_pid() AS pid`;
  const pick = (r: { u: string; l: string; w: string }) => ({ u: r.u, l: r.l, w: r.w });

  /** `statements` on a direct connection and through pgway: what each reads, here and on the other connection. */
  async function sameAsDirect(statements: string[]): Promise<void> {
    const d = await direct();
    const [a, h1, h2] = [await connect(), await connect(), await connect()];
    for (const sql of statements) {
      expect(await errorOf(d.query(sql)), sql).toBeUndefined();
      expect(await errorOf(a.query(sql)), sql).toBeUndefined();
    }
    const want = (await d.query(q)).rows[0]!;
    const here = (await a.query(q)).rows[0]!;
    const there = await onAnotherConnection(here.pid, [h1, h2], async () => (await a.query(q)).rows[0]!);
    expect([pick(here), pick(there)]).toEqual([pick(want), pick(want)]);
  }

  it('lays a setting the role was granted to set on under that role, ending on the role the client has', () =>
    // Laid on in the order of last change alone, the setting would come before SET ROLE ps_setter (42501).
    withSetter(() => sameAsDirect(['SET ROLE ps_setter', 'SET log_min_duration_statement = 5', 'SET ROLE ps_setter', 'SET work_mem = 1234'])));

  it('keeps a SET ROLE a later request of the same transaction reset: the setting between them was made under it', () =>
    withSetter(() => sameAsDirect(['BEGIN', 'SET ROLE ps_setter', 'SET log_min_duration_statement = 5', 'RESET ROLE', 'COMMIT'])));

  it('a transaction that switches role thousands of times keeps only what it needs: the client is not pinned', { timeout: 120_000 }, () =>
    withSetter(async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query('BEGIN');
      // Each SET ROLE / RESET ROLE replaces the one before: kept, 10,000 of them would pin the client (MAX_STAGED).
      for (let i = 0; i < 5_001; i++) {
        await a.query('SET ROLE ps_setter');
        await a.query('RESET ROLE');
      }
      await a.query('COMMIT');
      await a.query('SELECT 1');
      await b.query('BEGIN'); // b holds one connection: c gets the other only if a gave it back
      expect(sqlstate(await errorOf(c.query('SELECT 1')))).toBeUndefined();
      await b.query('COMMIT');
    }));

  it('never runs a request without its settings when their role was revoked since: the client is refused first', async () => {
    await twoTables.make('ps_rs', 'ps_rt');
    try {
      await withSetter(async () => {
        const [a, h1, h2] = [await connect(), await connect(), await connect()];
        for (const sql of ['SET ROLE ps_setter', 'SET search_path = ps_rs, public', 'RESET ROLE']) await a.query(sql);
        const pid = await pidOf(a);
        // Laid on another connection once, the settings are known to be accepted.
        const other = await onAnotherConnection(pid, [h1, h2], () => pidOf(a));
        await adminQuery('REVOKE ps_setter FROM app');
        const err = await onAnotherConnection(other, [h1, h2], () => errorOf(a.query(`INSERT INTO ps_rt VALUES ('a')`)));
        const rows = await twoTables.rows('ps_rs', 'ps_rt');
        // PostgreSQL would go on (the session keeps what it set); pgway cannot lay the settings on
        // without the role they were made under, and must not run the INSERT without them.
        expect({ err: sqlstate(err), rows }).toEqual({ err: '42501', rows: { s: 0, p: 0 } });
      });
    } finally {
      await twoTables.drop('ps_rs', 'ps_rt');
    }
  });
});

describe('a request sent while its settings are being laid on', () => {
  let proxy: HoldingProxy;
  let pgw: TestGateway;
  beforeAll(async () => {
    proxy = await startHoldingProxy();
    pgw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }', primary: { host: '127.0.0.1', port: proxy.port } });
    await adminQuery('DROP ROLE IF EXISTS ps_held');
    await adminQuery('CREATE ROLE ps_held NOLOGIN');
    await adminQuery('GRANT ps_held TO app WITH INHERIT FALSE');
    await twoTables.make('ps_hs', 'ps_ht');
  });
  afterAll(async () => {
    await pgw?.stop();
    proxy?.close();
    await twoTables.drop('ps_hs', 'ps_ht');
    await adminQuery('DROP ROLE IF EXISTS ps_held');
  });

  it('does not run before the server accepted them: refused, neither request ran', async () => {
    // A raw client, to pipeline a request behind one that waits (node-postgres sends one at a time).
    const { client: a } = await rawTrustLogin({ host: pgw.host, port: pgw.port }, { user: 'trustuser', database: 'app', client_encoding: 'UTF8' });
    raws.push(a);
    for (const sql of ['SET ROLE ps_held', 'SET search_path = ps_hs, public', 'RESET ROLE']) {
      a.write(queryMessage(sql));
      expect((await readCycle(a)).errors, sql).toEqual([]);
    }
    // Another client leaves other settings on the connection a had: a's settings are laid on again.
    const other = await testClients.connect(pgw.url('trustuser')); // the same pool as a
    await other.query(`SET work_mem = '1234kB'`);
    await adminQuery('REVOKE ps_held FROM app');
    proxy.frozen = true; // the server's answers wait: pgway has sent the settings and waits for their verdict
    a.write(queryMessage('SELECT 1'));
    await sleep(200);
    a.write(queryMessage(`INSERT INTO ps_ht VALUES ('sent during the wait')`));
    await sleep(300);
    const rows = await twoTables.rows('ps_hs', 'ps_ht');
    proxy.release();
    const answer = await a.readToClose();
    expect({ rows, errors: answer.filter((m) => m.type === 'E').map((m) => errorFields(m.body).get('C')) }).toEqual({ rows: { s: 0, p: 0 }, errors: ['42501'] });
  });
});

describe('a startup setting the server refuses', () => {
  it('is refused to every client that sends it, not only the first on a connection (a non-ASCII value)', async () => {
    const options = '-c DateStyle=Zürich';
    const directly = await errorOf(direct({ options } as pg.ClientConfig));
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const refused = testClients.connect({ connectionString: gw.url('app'), options } as pg.ClientConfig);
      codes.push(sqlstate(await errorOf(refused.then((c) => c.query('SELECT 1')))));
    }
    expect(sqlstate(directly)).toBe('22023');
    expect(codes).toEqual(['22023', '22023', '22023']);
  });
});

describe('login ParameterStatus', () => {
  it("reports the login user's own session_authorization and is_superuser when another user's pool opened first", async () => {
    const g = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
    try {
      const reported = async (url: string): Promise<Record<string, string | undefined>> => {
        const c = new pg.Client({ connectionString: url });
        const ps = new Map<string, string>();
        (c as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } })
          .connection.on('parameterStatus', (m) => ps.set(m.parameterName, m.parameterValue));
        c.on('error', () => undefined);
        testClients.opened.push(c);
        await c.connect();
        await c.query('SELECT 1');
        return { session_authorization: ps.get('session_authorization'), is_superuser: ps.get('is_superuser') };
      };
      await reported(g.url('admin')); // the superuser's pool knows the server's parameters first
      const viaPool = await reported(g.url('app'));
      const directly = await reported(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
      expect(viaPool).toEqual(directly);
      expect(viaPool).toEqual({ session_authorization: 'app', is_superuser: 'off' });
    } finally {
      await g.stop();
    }
  });
});

// --- a pooled client's lifecycle: shared statements, Terminate, vanishing, cancel ---------------

describe('prepared statements and DEALLOCATE ALL / DISCARD ALL', () => {
  for (const stmt of ['DEALLOCATE ALL', 'DISCARD ALL']) {
    it(`does not break another client's named statement when one client runs ${stmt}`, async () => {
      const [a, b, h1, h2] = [await connect(), await connect(), await connect(), await connect()];
      const q = { name: 'ps-named', text: "SELECT $1::int + 1 AS v, pg_backend_pid() AS pid" };
      const r1 = await b.query<{ v: number; pid: number }>({ ...q, values: [1] });
      const pid = r1.rows[0]!.pid;
      // b's statement now exists on connection `pid` and on no other: make sure the other one has it too.
      await onAnotherConnection(pid, [h1, h2], () => b.query({ ...q, values: [1] }));
      await onConnection(pid, [h1, h2], async () => {
        await a.query(stmt);
        expect(await pidOf(a)).toBe(pid);
      });
      const after = await onConnection(pid, [h1, h2], () => errorOf(b.query({ ...q, values: [2] })));
      expect(after, String(after)).toBeUndefined();
    });
  }
});

describe('disconnects', () => {
  it('runs a Query sent in the same write as Terminate, as PostgreSQL does', async () => {
    // The same bytes on a pg client's socket, directly and through pgway.
    const rows = async (tag: string): Promise<number> => (await adminQuery('SELECT 1 FROM ps_log WHERE tag = $1', [tag])).rowCount ?? 0;
    for (const [tag, c] of [['terminate-direct', await direct()], ['terminate-pgway', await connect()]] as const) {
      const stream = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
      stream.write(Buffer.concat([queryMessage(`INSERT INTO ps_log VALUES ('${tag}')`), typedMessage('X')]));
      await waitFor(`the ${tag} insert`, async () => (await rows(tag)) === 1, 3000).catch(() => undefined);
    }
    expect({ direct: await rows('terminate-direct'), pgway: await rows('terminate-pgway') }).toEqual({ direct: 1, pgway: 1 });
  });

  it("never hands a vanished client's last SET to a client with the same startup settings", async () => {
    const a = await rawLogin();
    a.write(Buffer.concat([queryMessage("SET myapp.tenant = 'leaked'"), queryMessage('SELECT pg_sleep(2)')]));
    await sleep(300);
    a.destroy();
    await sleep(500);
    const [b, h1, h2] = [await connect('trustuser'), await connect('trustuser'), await connect('trustuser')];
    const first = await setting(b, 'myapp.tenant');
    const second = await onAnotherConnection(first.pid, [h1, h2], () => setting(b, 'myapp.tenant'));
    expect([first.v, second.v].filter((v) => v === 'leaked')).toEqual([]);
  });
});

describe('cancel', () => {
  it('cancels a query that is waiting for a server connection', async () => {
    const [h1, h2] = [await connect(), await connect()];
    const a = await connect();
    await h1.query('BEGIN');
    await h2.query('BEGIN');
    const outcome = errorOf(a.query("INSERT INTO ps_log SELECT 'queued-' || pg_sleep(2)::text"));
    await sleep(200);
    const key = backendKey(a);
    await sendCancel(key.processID, key.secretKey);
    await sleep(200);
    await h1.query('COMMIT');
    await h2.query('COMMIT');
    const err = await outcome;
    // Uncancelled, the INSERT would run once a connection came free, and succeed.
    expect(sqlstate(err)).toBe('57014');
  });

  it('cancels the first of pipelined requests that waited for a server connection; the next one runs, as on a direct connection', async () => {
    const [h1, h2] = [await connect('trustuser'), await connect('trustuser')];
    await h1.query('BEGIN');
    await h2.query('BEGIN');
    const { client: a, pid, secret } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', client_encoding: 'UTF8' });
    raws.push(a);
    a.write(Buffer.concat([queryMessage('SELECT pg_sleep(3)'), queryMessage("SELECT 'after'")]));
    await sleep(200);
    await sendCancel(pid, secret);
    await sleep(100);
    await h1.query('COMMIT');
    await h2.query('COMMIT');
    const first = await readCycle(a);
    expect({ first: first.errors, second: (await readCycle(a)).rows }).toEqual({ first: ['57014'], second: [['after']] });
  });
});


describe('cancel under rotation', () => {
  it("never cancels another client's statement, with cancels racing the end of the client's own", async () => {
    const a = await connect();
    const others = [await connect(), await connect(), await connect()];
    const key = backendKey(a);
    const stray: string[] = [];
    let stop = false;
    const churning = Promise.all(others.map(async (c) => {
      while (!stop) {
        const err = await errorOf(c.query('SELECT pg_sleep(0.01)'));
        if (err) stray.push(String(sqlstate(err)));
      }
    }));
    let cancelledOwn = 0;
    for (let k = 0; k < 60; k++) {
      const q = errorOf(a.query('SELECT pg_sleep(0.02)'));
      await sleep(15 + (k % 10));
      await sendCancel(key.processID, key.secretKey);
      if (await q) cancelledOwn++;
    }
    stop = true;
    await churning;
    expect(stray).toEqual([]);
    expect(cancelledOwn).toBeGreaterThan(0);
  });
});
