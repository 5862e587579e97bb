// The admin console's operations around live clients, as a user sees them: PAUSE/RESUME (also of pools
// made after the PAUSE, and a switchover to a new target), commands naming a database that does not
// exist, KILL and RECONNECT, a RELOAD that removes a database (a PAUSE waiting for it is told so; one paused comes back unpaused when added
// again) or moves it while clients wait, and the console's answer to the extended protocol. Each gateway
// is started from a YAML file, so RELOAD re-reads it as in production; each database here is the tests'
// own, so pg_stat_database counts only pgway's logins.
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { FileGateways, type FileGateway, type FileGatewayOptions } from './helpers/file-gateway.js';
import { cstring, errorFields, queryMessage, rawTrustLogin, typedMessage } from './helpers/raw-client.js';
import { clientsOfEachTest, errorOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';

const DB = 'admin_ops';
const DB2 = 'admin_ops2';

const files = new FileGateways(DB);

beforeAll(async () => {
  for (const db of [DB, DB2]) {
    await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await adminQuery(`CREATE DATABASE ${db} OWNER app`);
  }
});

afterAll(async () => {
  for (const db of [DB, DB2]) await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  files.removeFiles();
});

const startFromFile = (o: FileGatewayOptions): Promise<FileGateway> => files.start(o);

afterEach(() => files.stopAll()); // after the clients' afterEach below (hooks run last registered first)

const clientErrors = new Map<pg.Client, Error[]>();
const testClients = clientsOfEachTest({
  onCreate: (client) => {
    const errors: Error[] = [];
    client.on('error', (err) => errors.push(err));
    clientErrors.set(client, errors);
  },
});
const connect = (gw: FileGateway, user = 'app', database = DB): Promise<pg.Client> => testClients.connect(gw.url(user, database));

/** Whether `p` has settled yet, read at any time. */
function track(p: Promise<unknown>): { settled: boolean } {
  const state = { settled: false };
  p.then(() => { state.settled = true; }, () => { state.settled = true; });
  return state;
}

/** Waits until a client of `user` waits for a server connection (SHOW CLIENTS state `waiting`). */
async function waitingClient(gw: FileGateway, user = 'app'): Promise<void> {
  await waitFor(`a client of ${user} to wait`, () => gw.gateway.clients().some((c) => c.user === user && c.state === 'waiting'));
}

/** Server sessions PostgreSQL counted for `db` (pg_stat_database.sessions). */
async function sessionsOf(db: string): Promise<number> {
  const r = await adminQuery<{ n: string }>('SELECT sessions AS n FROM pg_stat_database WHERE datname = $1', [db]);
  return Number(r.rows[0]?.n ?? 0);
}

/** Server sessions open on `db` now (pg_stat_activity). */
async function backendsOf(db: string): Promise<number> {
  const r = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [db]);
  return Number(r.rows[0]?.n ?? 0);
}

async function pausedColumn(admin: pg.Client, db: string): Promise<string | undefined> {
  const r = await admin.query<{ name: string; paused: string }>('SHOW DATABASES');
  return r.rows.find((row) => row.name === db)?.paused;
}

// --- PAUSE / RESUME ---------------------------------------------------------------------------------

describe('PAUSE / RESUME', () => {
  it('PAUSE holds a client whose pool did not exist yet when PAUSE ran (global PAUSE and PAUSE db)', async () => {
    for (const pauseArg of [` ${DB}`, '']) {
      const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
      const app = await connect(gw);
      await app.query('SELECT 1'); // the (db, app) pool exists when PAUSE runs
      const admin = await connect(gw, 'admin', 'pgway');
      await admin.query(`PAUSE${pauseArg}`);
      expect(await pausedColumn(admin, DB), `PAUSE${pauseArg}: SHOW DATABASES`).toBe('1');
      // Another user of the paused database: its pool is made after PAUSE.
      const other = await connect(gw, 'trustapp', DB);
      const q = other.query<{ n: number }>('SELECT 1 AS n');
      const state = track(q);
      await waitingClient(gw, 'trustapp');
      expect(state.settled, `PAUSE${pauseArg}: a query ran against the paused database`).toBe(false);
      await admin.query(`RESUME${pauseArg}`);
      expect((await q).rows).toEqual([{ n: 1 }]);
      expect(await pausedColumn(admin, DB)).toBe('0');
      await gw.stop();
    }
  });

  it('a PAUSE still waiting for a transaction answers with an error when RESUME ends it from another console', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
    const app = await connect(gw);
    await app.query('BEGIN');
    const a1 = await connect(gw, 'admin', 'pgway');
    const a2 = await connect(gw, 'admin', 'pgway');
    const pausing = errorOf(a1.query('PAUSE'));
    await waitFor('paused', () => gw.gateway.pools().some((p) => p.paused));
    await a2.query('RESUME');
    expect(await pausing).toMatchObject({ code: '57014', message: expect.stringMatching(/RESUME/) });
    await app.query('COMMIT');
    // Nothing stays paused, and the first console is usable again.
    expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect((await a1.query('SHOW VERSION')).rows.length).toBe(1);
  });

  it('switchover: PAUSE, RELOAD to a new target, RESUME releases the clients that waited during the pause', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
    const app = await connect(gw);
    expect((await app.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB }]);
    const admin = await connect(gw, 'admin', 'pgway');
    await admin.query('PAUSE');
    const waiting = app.query<{ d: string }>('SELECT current_database() AS d');
    const state = track(waiting);
    await waitingClient(gw);
    gw.write({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 1500 }', databases: { [DB]: DB2 } });
    await admin.query('RELOAD');
    // The pool that replaced the paused one is paused too, until RESUME.
    await waitingClient(gw);
    expect(state.settled).toBe(false);
    await admin.query('RESUME');
    expect((await waiting).rows).toEqual([{ d: DB2 }]);
    expect((await app.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB2 }]);
  });

  it('a client waiting in a paused database that RELOAD removes is told so at once', async () => {
    const gw = await startFromFile({
      pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 0 }',
      databases: { [DB]: DB, [DB2]: DB2 },
    });
    const app = await connect(gw, 'app', DB2);
    await app.query('SELECT 1');
    const admin = await connect(gw, 'admin', 'pgway');
    await admin.query('PAUSE');
    const waiting = errorOf(app.query('SELECT 1'));
    await waitingClient(gw);
    gw.write({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 0 }', databases: { [DB]: DB } });
    await admin.query('RELOAD');
    // query_wait_timeout_ms 0 and a paused pool: without the answer the client would wait forever.
    expect(await waiting).toMatchObject({ code: '57P01', message: expect.stringMatching(/database "admin_ops2" was removed/) });
    await admin.query('RESUME');
  });

  it('a PAUSE db still waiting when RELOAD removes its database is told the database went, not that RESUME ran', async () => {
    const pool = '{ mode: transaction, size: 2, query_wait_timeout_ms: 1000 }';
    const gw = await startFromFile({ pool, databases: { [DB]: DB, [DB2]: DB2 } });
    const app = await connect(gw, 'app', DB2);
    await app.query('BEGIN');
    const admin = await connect(gw, 'admin', 'pgway');
    const pausing = errorOf(admin.query(`PAUSE ${DB2}`));
    await sleep(200); // the PAUSE waits for app's transaction
    gw.write({ pool, databases: { [DB]: DB } });
    await gw.gateway.reload();
    await app.query('COMMIT').catch(() => undefined);
    expect(await pausing).toMatchObject({ message: `PAUSE ended: database "${DB2}" was removed from the config` });
    // The console goes on.
    expect((await admin.query('SHOW VERSION')).rows).toHaveLength(1);
  });

  it('a database paused (PAUSE db or KILL db), removed by RELOAD and added back, comes back unpaused', async () => {
    const pool = '{ mode: transaction, size: 2, query_wait_timeout_ms: 1000 }';
    const both = { [DB]: DB, [DB2]: DB2 };
    for (const verb of ['PAUSE', 'KILL']) {
      const gw = await startFromFile({ pool, databases: both });
      const admin = await connect(gw, 'admin', 'pgway');
      await admin.query(`${verb} ${DB2}`);
      gw.write({ pool, databases: { [DB]: DB } });
      await admin.query('RELOAD');
      // Once removed, RESUME db can no longer name it: only its removal can end the pause.
      expect(await errorOf(admin.query(`RESUME ${DB2}`))).toMatchObject({ message: expect.stringMatching(/no such database/) });
      gw.write({ pool, databases: both });
      await admin.query('RELOAD');
      expect(await pausedColumn(admin, DB2), `${verb}: SHOW DATABASES`).toBe('0');
      // A paused wait never times out: without the fix this query would hang, so it is bounded here.
      const app = await connect(gw, 'app', DB2);
      const q = app.query<{ n: number }>('SELECT 1 AS n');
      const state = track(q);
      await waitFor(`${verb}: a query of the database added back to be answered`, () => state.settled, 3000);
      expect((await q).rows).toEqual([{ n: 1 }]);
      await gw.stop();
    }
  });

  it('PAUSE of one database leaves another running', async () => {
    const gw = await startFromFile({
      pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }',
      databases: { [DB]: DB, [DB2]: DB2 },
    });
    const a = await connect(gw, 'app', DB);
    const b = await connect(gw, 'app', DB2);
    await a.query('SELECT 1');
    await b.query('SELECT 1');
    const admin = await connect(gw, 'admin', 'pgway');
    await admin.query(`PAUSE ${DB}`);
    const held = a.query('SELECT 1 AS n');
    const state = track(held);
    await waitingClient(gw);
    expect((await b.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    expect(state.settled).toBe(false);
    expect(await pausedColumn(admin, DB2)).toBe('0');
    await admin.query(`RESUME ${DB}`);
    expect((await held).rows).toEqual([{ n: 1 }]);
  });
});

// --- admin commands naming an unknown database ----------------------------------------------------------

describe('admin commands on a database that does not exist', () => {
  it.each(['PAUSE', 'RESUME', 'KILL', 'RECONNECT'])('%s nosuchdb is refused with an error', async (verb) => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await connect(gw, 'admin', 'pgway');
    // PgBouncer: ERROR no such database: nosuchdb. A typo must not look like a successful PAUSE.
    await expect(admin.query(`${verb} nosuchdb`)).rejects.toMatchObject({
      severity: 'ERROR', code: '08P01', message: 'no such database: nosuchdb',
    });
    expect((await admin.query('SHOW VERSION')).rows.length).toBe(1);
  });
});

// --- the console's protocol -----------------------------------------------------------------------------

describe('admin console protocol', () => {
  it('answers an extended-protocol request with exactly one ErrorResponse before ReadyForQuery', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'tadmin', database: 'pgway' });
    try {
      const parse = typedMessage('P', Buffer.concat([cstring(''), cstring('SHOW VERSION'), Buffer.from([0, 0])]));
      const bind = typedMessage('B', Buffer.concat([cstring(''), cstring(''), Buffer.from([0, 0, 0, 0, 0, 0])]));
      const describe = typedMessage('D', Buffer.concat([Buffer.from('P'), cstring('')]));
      const execute = typedMessage('E', Buffer.concat([cstring(''), Buffer.from([0, 0, 0, 0])]));
      const sync = typedMessage('S');
      client.write(Buffer.concat([parse, bind, describe, execute, sync]));
      const { before } = await client.readUntil('Z');
      expect(before.map((m) => m.type)).toEqual(['E']);
      expect(errorFields(before[0]!.body).get('C')).toBe('0A000');
      client.write(queryMessage('SHOW VERSION'));
      const { before: rows } = await client.readUntil('Z');
      expect(rows.map((m) => m.type)).toEqual(['T', 'D', 'C']);
    } finally {
      client.destroy();
    }
  });

  it('a pg client running a parameterized statement gets one rejection and no connection error', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await connect(gw, 'admin', 'pgway');
    const err = await admin.query('SHOW VERSION', [1]).then(() => undefined, (e: unknown) => e);
    expect(sqlstate(err)).toBe('0A000');
    // A second ErrorResponse would arrive before this answer and reach the client as a connection error.
    expect((await admin.query('SHOW VERSION')).rows.length).toBe(1);
    expect(clientErrors.get(admin)).toEqual([]);
  });

  it('accepts odd case, whitespace and trailing semicolons', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await connect(gw, 'admin', 'pgway');
    for (const sql of ['show pools', '  SHOW\tPOOLS  ', 'Show Pools;', 'SHOW POOLS ;  ', 'show version;\n']) {
      await expect(admin.query(sql), sql).resolves.toBeDefined();
    }
    await expect(admin.query('SHOW NOTHING')).rejects.toMatchObject({ code: '42601' });
    await expect(admin.query('FROB')).rejects.toMatchObject({ code: '42601' });
    const empty = await admin.query('');
    expect(empty.rows).toEqual([]);
  });
});

// --- RELOAD around live clients -----------------------------------------------------------------------

describe('RELOAD around live clients', () => {
  it('removing a database: its idle client is told why on its next query, and pgway logs in to it no more', async () => {
    const gw = await startFromFile({
      pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 0 }',
      databases: { [DB]: DB, [DB2]: DB2 },
    });
    const app = await connect(gw, 'app', DB2);
    await app.query('SELECT 1');
    gw.write({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 0 }', databases: { [DB]: DB } });
    await gw.gateway.reload();
    await waitFor('the removed database\'s idle connection to close', async () => (await backendsOf(DB2)) === 0);
    await sleep(1200); // PostgreSQL's session counter of that connection settles
    const before = await sessionsOf(DB2);
    // query_wait_timeout_ms 0: a client left waiting would never hear back.
    expect(await errorOf(app.query('SELECT 1'))).toMatchObject({
      code: '57P01', message: expect.stringMatching(/database "admin_ops2" was removed from the config/),
    });
    await sleep(1200); // a storm of logins would show here
    expect((await sessionsOf(DB2)) - before).toBe(0);
  });

  it('changing the target while a client waits: the waiting client is served by the new target', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
    const a = await connect(gw);
    const b = await connect(gw);
    await a.query('BEGIN');
    const waiting = b.query<{ d: string }>('SELECT current_database() AS d');
    await waitFor('b to wait', () => gw.gateway.clients().some((c) => c.state === 'waiting'));
    gw.write({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }', databases: { [DB]: DB2 } });
    await gw.gateway.reload();
    // b is served by the new target without waiting for a's transaction on the old one.
    expect((await waiting).rows).toEqual([{ d: DB2 }]);
    expect((await a.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB }]);
    await a.query('COMMIT');
    expect((await a.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB2 }]);
  });

  it("a waiting client moved to the new target times out from its arrival, not from the RELOAD", async () => {
    // max_db_connections counts the old target's busy connection, so the new pool cannot serve b either.
    const pool = '{ mode: transaction, size: 1, max_db_connections: 1, query_wait_timeout_ms: 2000 }';
    const gw = await startFromFile({ pool });
    const a = await connect(gw);
    const b = await connect(gw);
    await a.query('BEGIN');
    const sentAt = Date.now();
    const outcome = errorOf(b.query('SELECT 1')).then((err) => ({ code: sqlstate(err), afterMs: Date.now() - sentAt }));
    await waitingClient(gw);
    await sleep(1200);
    gw.write({ pool, databases: { [DB]: DB2 } });
    await gw.gateway.reload();
    const { code, afterMs } = await outcome;
    // From the RELOAD the timeout would end 3200 ms after b's query.
    expect({ code, beforeRestartedTimeout: afterMs < 2800 }).toEqual({ code: '57P05', beforeRestartedTimeout: true });
    // The old target's connection goes once given back, and the new target serves the next client.
    await a.query('COMMIT');
    const c = await connect(gw);
    expect((await c.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB2 }]);
  });

  it('shrinking pool.size below the busy connections drops nobody', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 4, query_wait_timeout_ms: 5000 }' });
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(gw)));
    for (const c of clients) await c.query('BEGIN');
    gw.write({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
    await gw.gateway.reload();
    for (const c of clients) await c.query('SELECT 1');
    for (const c of clients) await c.query('COMMIT');
    await Promise.all(clients.map((c) => c.query('SELECT 1')));
    expect(gw.gateway.pools().reduce((n, p) => n + p.serversActive + p.serversUsed + p.serversIdle, 0)).toBeLessThanOrEqual(1);
    for (const c of clients) expect(clientErrors.get(c)).toEqual([]);
  });
});

// --- KILL / RECONNECT ---------------------------------------------------------------------------------

describe('KILL and RECONNECT', () => {
  it('RECONNECT under load: no client sees an error', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 3, query_wait_timeout_ms: 5000 }' });
    const clients = await Promise.all([0, 1, 2, 3, 4].map(() => connect(gw)));
    const admin = await connect(gw, 'admin', 'pgway');
    let running = true;
    const errors: unknown[] = [];
    let done = 0;
    const loops = clients.map(async (c) => {
      while (running) {
        try {
          await c.query('BEGIN');
          await c.query('SELECT pg_sleep(0.005)');
          await c.query('COMMIT');
          done++;
        } catch (err) {
          errors.push(err);
          return;
        }
      }
    });
    for (let i = 0; i < 10; i++) {
      await admin.query('RECONNECT');
      const before = done;
      await waitFor('transactions to go on', () => done > before + 2 || errors.length > 0);
    }
    running = false;
    await Promise.all(loops);
    expect(errors).toEqual([]);
  });

  it('KILL tells clients why with an admin-command error that does not claim pgway is shutting down', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const app = await connect(gw);
    const admin = await connect(gw, 'admin', 'pgway');
    await admin.query(`KILL ${DB}`);
    await waitFor('the app client to hear', () => (clientErrors.get(app)?.length ?? 0) > 0);
    const err = clientErrors.get(app)![0]!;
    expect(sqlstate(err)).toBe('57P01');
    expect(err.message).toBe(`terminating connection due to administrator command (KILL ${DB})`);
  });

  it('KILL leaves the database paused, as PgBouncer does: new clients wait until RESUME', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 10000 }' });
    await (await connect(gw)).query('SELECT 1'); // the pool knows the server's parameters
    const admin = await connect(gw, 'admin', 'pgway');
    await admin.query(`KILL ${DB}`);
    const fresh = await connect(gw);
    let answered = false;
    const query = fresh.query<{ n: number }>('SELECT 1 AS n').finally(() => (answered = true));
    await waitFor('the new client to wait for a server connection', async () =>
      (await admin.query<{ cl_waiting: number }>('SHOW POOLS')).rows.some((r) => Number(r.cl_waiting) > 0));
    // Without the pause it would be answered as soon as a server connection opens, in milliseconds.
    await sleep(500);
    expect(answered).toBe(false);
    await admin.query(`RESUME ${DB}`);
    expect((await query).rows).toEqual([{ n: 1 }]);
  });

  it('KILL of the admin database is refused and leaves the consoles open', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await connect(gw, 'admin', 'pgway');
    const other = await connect(gw, 'admin', 'pgbouncer');
    await expect(admin.query('KILL pgway')).rejects.toMatchObject({ severity: 'ERROR', code: '08P01', message: 'cannot kill admin db: pgway' });
    expect((await admin.query('SHOW VERSION')).rows.length).toBe(1);
    expect((await other.query('SHOW VERSION')).rows.length).toBe(1);
  });
});

// --- pools a RELOAD replaced ------------------------------------------------------------------------

describe('a pool replaced by RELOAD', () => {
  it('stops opening min_size connections to the old target', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, min_size: 2 }' });
    const app = await connect(gw);
    await app.query('SELECT 1');
    await waitFor('min_size to be filled', async () => (await backendsOf(DB)) === 2);
    gw.write({ pool: '{ mode: transaction, size: 2, min_size: 2 }', databases: { [DB]: DB2 } });
    await gw.gateway.reload();
    await waitFor('the old target\'s connections to close', async () => (await backendsOf(DB)) === 0);
    await sleep(1200); // PostgreSQL's session counter of those connections settles
    const before = await sessionsOf(DB);
    await sleep(3000); // three rounds of pool maintenance
    // The old target (dbname admin_ops) is no longer in the config: pgway must not log in to it again.
    expect((await sessionsOf(DB)) - before).toBe(0);
    // The client goes on with the new target, whose pool keeps min_size.
    expect((await app.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB2 }]);
  }, 15_000);
});
