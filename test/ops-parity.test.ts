// The admin console, RELOAD and the pool settings, judged by what a PgBouncer 1.18 user
// expects (its usage.md / config.md, and its admin.c where the docs are silent). Every gateway is
// started from a YAML file, so RELOAD and SIGHUP re-read it as in production; its log lines are
// captured so a refused reload can be checked for its reason. The databases are this file's own
// (hop_db, hop_db2), so pg_stat_activity shows only pgway's connections to them.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { FileGateways, type FileGateway, type FileGatewayOptions } from './helpers/file-gateway.js';
import { clientsOfEachTest, errorOf, pidOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';
import { cancelRequestPacket, cstring, errorFields, queryMessage, RawClient, rawTrustLogin, startupPacket, typedMessage } from './helpers/raw-client.js';

const DB = 'hop_db';
const DB2 = 'hop_db2';

const files = new FileGateways(DB, 'info');

beforeAll(async () => {
  for (const db of [DB, DB2]) {
    await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await adminQuery(`CREATE DATABASE ${db} OWNER app`);
    await adminQuery('CREATE TABLE hop_rows (marker text)', [], 'primary', db);
    await adminQuery('GRANT ALL ON hop_rows TO app', [], 'primary', db);
  }
});

afterAll(async () => {
  for (const db of [DB, DB2]) await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  files.removeFiles();
});

// --- a gateway from a YAML file, with its log captured ------------------------------------------------

const startFromFile = (o: FileGatewayOptions): Promise<FileGateway> => files.start(o);

afterEach(() => files.stopAll()); // after the clients' afterEach below (hooks run last registered first)

const clientErrors = new Map<pg.Client, Error[]>();
const ended = new Set<pg.Client>();
const testClients = clientsOfEachTest({
  onCreate: (client) => {
    const errors: Error[] = [];
    client.on('error', (err) => errors.push(err));
    client.on('end', () => ended.add(client));
    clientErrors.set(client, errors);
  },
});
const connect = (gw: FileGateway, user = 'app', database = DB, applicationName = 'hop', password?: string): Promise<pg.Client> =>
  testClients.connect({ connectionString: gw.url(user, database, password), application_name: applicationName });

const console_ = (gw: FileGateway): Promise<pg.Client> => connect(gw, 'admin', 'pgway', 'hop-admin');

type Row = Record<string, string | null>;

async function show(admin: pg.Client, what: string): Promise<Row[]> {
  return (await admin.query<Row>(`SHOW ${what}`)).rows;
}

async function poolRow(admin: pg.Client, user = 'app', database = DB): Promise<Row | undefined> {
  return (await show(admin, 'POOLS')).find((r) => r.database === database && r.user === user);
}

/** The process id pgway gave the client in BackendKeyData (pg keeps it; @types/pg does not declare it). */
const processId = (client: pg.Client): number => (client as unknown as { processID: number }).processID;

/** Whether `p` has settled yet, read at any time. */
function track(p: Promise<unknown>): { settled: boolean } {
  const state = { settled: false };
  p.then(() => { state.settled = true; }, () => { state.settled = true; });
  return state;
}

/** Resolves with true when `p` settles within `ms`, false otherwise (p keeps running). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const state = track(p);
  const deadline = Date.now() + ms;
  while (!state.settled && Date.now() < deadline) await sleep(20);
  return state.settled;
}

async function waitingClients(gw: FileGateway, n: number, user = 'app'): Promise<void> {
  await waitFor(`${n} client(s) of ${user} to wait`, () => gw.gateway.clients().filter((c) => c.user === user && c.state === 'waiting').length === n);
}

/** Client backends open on `db` now (pgway's server connections). */
async function backendsOf(db: string, where = 'true'): Promise<number> {
  const r = await adminQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND ${where}`, [db]);
  return r.rows[0]!.n;
}

async function backendAlive(pid: number): Promise<boolean> {
  const r = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]);
  return r.rows[0]!.n > 0;
}

async function scrape(gw: FileGateway): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
}

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Waits (bounded) until a gateway shut down by SHUTDOWN has let every client go. */
async function settleShutdown(gw: FileGateway, ms = 8000): Promise<void> {
  await waitFor('the shutdown to finish', () => gw.gateway.clientCount === 0, ms).catch(() => undefined);
  await sleep(100);
}

// --- SHOW POOLS / CLIENTS / SERVERS / STATS ----------------------------------------------------------

describe('SHOW POOLS / CLIENTS / SERVERS / STATS while clients work', () => {
  it('SHOW POOLS cl_active counts idle transaction-mode clients too, as PgBouncer does', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 10000 }' });
    const [idle1, idle2, holder, waiter] = await Promise.all([0, 1, 2, 3].map(() => connect(gw)));
    await idle1!.query('SELECT 1');
    await idle2!.query('SELECT 1');
    await holder!.query('BEGIN');
    await holder!.query('SELECT 1');
    const waiting = waiter!.query('SELECT 1');
    await waitingClients(gw, 1);
    const admin = await console_(gw);
    const row = await poolRow(admin);
    await holder!.query('COMMIT');
    await waiting;
    // PgBouncer usage.md, SHOW POOLS: "cl_active: Client connections that are either linked to server
    // connections or are idle with no queries waiting to be processed." idle1, idle2 and holder.
    expect({ cl_active: row?.cl_active, cl_waiting: row?.cl_waiting, sv_active: row?.sv_active })
      .toEqual({ cl_active: '3', cl_waiting: '1', sv_active: '1' });
  });

  it('SHOW CLIENTS and SHOW SERVERS link the same pair, show a waiter and its wait, and leave no stale rows', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 10000 }' });
    const a = await connect(gw, 'app', DB, 'hop-a');
    const c = await connect(gw, 'app', DB, 'hop-c');
    await a.query('BEGIN');
    const pid = await pidOf(a);
    const waiting = c.query('SELECT 1');
    await waitingClients(gw, 1);
    await sleep(1100);
    const admin = await console_(gw);
    const clients = await show(admin, 'CLIENTS');
    const servers = await show(admin, 'SERVERS');
    const ca = clients.find((r) => r.application_name === 'hop-a')!;
    const cc = clients.find((r) => r.application_name === 'hop-c')!;
    const sa = servers.find((r) => r.remote_pid === String(pid))!;
    expect(ca).toMatchObject({ type: 'C', user: 'app', database: DB, state: 'active' });
    expect(sa).toMatchObject({ type: 'S', user: 'app', database: DB, state: 'active' });
    expect(ca.link).toBe(sa.id);
    expect(sa.link).toBe(ca.id);
    expect(cc).toMatchObject({ state: 'waiting', link: null });
    // PgBouncer's format_time_s: whole seconds, then the zone.
    expect([ca.connect_time, ca.request_time, sa.connect_time, sa.request_time]).toEqual(
      Array(4).fill(expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/)));
    expect(Number(cc.wait)).toBeGreaterThanOrEqual(1);
    const pool = await poolRow(admin);
    expect(Number(pool?.maxwait)).toBeGreaterThanOrEqual(1);
    expect(pool?.cl_waiting).toBe('1');

    await a.query('COMMIT');
    await waiting;
    await Promise.all([a.end(), c.end()]);
    await waitFor('the two clients to leave SHOW CLIENTS', async () =>
      !(await show(admin, 'CLIENTS')).some((r) => r.application_name === 'hop-a' || r.application_name === 'hop-c'));
    const after = (await show(admin, 'SERVERS')).filter((r) => r.database === DB);
    expect(after.map((r) => ({ state: r.state, link: r.link }))).toEqual([{ state: 'idle', link: null }]);
    expect(await poolRow(admin)).toMatchObject({ cl_waiting: '0', sv_active: '0', sv_idle: '1', maxwait: '0' });
  });

  it('SHOW CLIENTS remote_pid is the client\'s own process id (0 over TCP), not the server backend\'s', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1 }' });
    const a = await connect(gw, 'app', DB, 'hop-remote-pid');
    await a.query('BEGIN');
    const backend = await pidOf(a);
    const admin = await console_(gw);
    const row = (await show(admin, 'CLIENTS')).find((r) => r.application_name === 'hop-remote-pid');
    await a.query('COMMIT');
    // PgBouncer usage.md, SHOW CLIENTS: "remote_pid: Process ID, in case client connects over Unix
    // socket and OS supports getting it." The backend's pid belongs in SHOW SERVERS.remote_pid.
    expect(row?.remote_pid).not.toBe(String(backend));
    expect(row?.remote_pid).toBe('0');
  });

  it("session mode: SHOW STATS and /metrics time transactions, not the client's idle time between them", async () => {
    const gw = await startFromFile({ pool: '{ mode: session, size: 2 }', http: true });
    const app = await connect(gw);
    for (let i = 0; i < 3; i++) {
      await sleep(700);
      await app.query('SELECT 1');
    }
    const admin = await console_(gw);
    const row = (await show(admin, 'STATS')).find((r) => r.database === DB)!;
    const metrics = await scrape(gw);
    expect(Number(row.total_xact_count)).toBe(3);
    // Before, each transaction counted from the end of the one before (the first from login): 2.1 s in all.
    expect(Number(row.total_xact_time)).toBeLessThan(700_000);
    expect(sample(metrics, `pgway_transaction_duration_seconds_sum{pool="${DB}/app"}`)).toBeLessThan(0.7);
  });

  it('SHOW STATS counts each transaction and request once, and the time a client waited', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
    const a = await connect(gw);
    const b = await connect(gw);
    const admin = await console_(gw);
    const stats = async (): Promise<Row> => (await show(admin, 'STATS')).find((r) => r.database === DB) ?? {};
    const n = (r: Row, k: string): number => Number(r[k] ?? 0);
    const before = await stats();
    for (let i = 0; i < 3; i++) await a.query('SELECT 1');
    await a.query('BEGIN');
    await a.query('SELECT 1');
    await a.query('COMMIT');
    const mid = await stats();
    expect(n(mid, 'total_xact_count') - n(before, 'total_xact_count')).toBe(4);
    expect(n(mid, 'total_query_count') - n(before, 'total_query_count')).toBe(6);

    await b.query('BEGIN');
    const waited = a.query('SELECT 1');
    await waitingClients(gw, 1);
    await sleep(400);
    await b.query('COMMIT');
    await waited;
    const after = await stats();
    expect(n(after, 'total_wait_time') - n(mid, 'total_wait_time')).toBeGreaterThanOrEqual(350_000);
    expect(n(after, 'total_xact_count') - n(mid, 'total_xact_count')).toBe(2);
  });

  it("SHOW SERVERS' and SHOW CLIENTS' link column is int8 whether or not any row is linked", async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const a = await connect(gw);
    const admin = await console_(gw);
    await a.query('SELECT 1'); // a server connection now idle: its link is null
    const linkType = async (what: string): Promise<number> => {
      const r = await admin.query(`SHOW ${what}`);
      return r.fields.find((f) => f.name === 'link')!.dataTypeID;
    };
    expect(await linkType('SERVERS')).toBe(20);
    expect(await linkType('CLIENTS')).toBe(20);
    await a.query('BEGIN');
    expect(await linkType('SERVERS')).toBe(20);
    expect(await linkType('CLIENTS')).toBe(20);
    await a.query('COMMIT');
  });

  it("SHOW STATS' avg_* columns are the last stats period's, as PgBouncer's: rates per second, mean times, back to 0 after an idle period", async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }', extra: 'stats_period_ms: 400', logLevel: 'info' });
    const a = await connect(gw);
    const admin = await console_(gw);
    const averages = async (): Promise<Row> => (await show(admin, 'STATS_AVERAGES')).find((r) => r.database === DB) ?? {};
    for (let i = 0; i < 3; i++) await a.query('SELECT pg_sleep(0.1)');
    let busy: Row = {};
    await waitFor('a period with the transactions', async () => Number((busy = await averages()).xact_count) > 0);
    // Each transaction slept 100 ms: the mean is the period's own transactions', in microseconds.
    expect(Number(busy.xact_time)).toBeGreaterThanOrEqual(100_000);
    expect(Number(busy.xact_time)).toBeLessThan(1_000_000);
    expect(Number(busy.query_time)).toBeGreaterThanOrEqual(100_000);
    expect(Number(busy.bytes_received)).toBeGreaterThan(0);
    const stats = (await show(admin, 'STATS')).find((r) => r.database === DB)!;
    expect(Number(stats.total_xact_count)).toBe(3);
    expect(Object.keys(stats)).toEqual(expect.arrayContaining(
      ['avg_server_assignment_count', 'avg_xact_count', 'avg_query_count', 'avg_recv', 'avg_sent', 'avg_xact_time', 'avg_query_time', 'avg_wait_time']));
    // A period without traffic brings the averages back to 0; the totals stay.
    await waitFor('an idle period', async () => Number((await averages()).xact_count) === 0, 3000);
    const idle = (await show(admin, 'STATS')).find((r) => r.database === DB)!;
    expect(idle).toMatchObject({ avg_xact_count: '0', avg_xact_time: '0', avg_query_count: '0', total_xact_count: '3' });
    const totals = (await show(admin, 'STATS_TOTALS')).find((r) => r.database === DB)!;
    expect(totals).toMatchObject({ xact_count: '3', query_count: '3' });
    // PgBouncer's log_stats: a line per database that had traffic in the period.
    const lines = gw.logs.map((l) => JSON.parse(l) as { msg: string; database?: string; xactsPerSec?: number });
    expect(lines.some((l) => l.msg === 'stats' && l.database === DB && l.xactsPerSec! > 0)).toBe(true);
  });

  it('SHOW STATS counts a server assignment when a client gets a connection: not a wait that timed out, once a wait a RELOAD moved', async () => {
    const pool = '{ mode: transaction, size: 1, query_wait_timeout_ms: 700 }';
    const gw = await startFromFile({ pool, databases: { [DB]: DB, [DB2]: DB2 } });
    const [a, b, c] = [await connect(gw), await connect(gw), await connect(gw)];
    const admin = await console_(gw);
    const assigned = async (): Promise<number> => Number((await show(admin, 'STATS')).find((r) => r.database === DB)?.total_server_assignment_count ?? 0);
    const start = await assigned();
    await a.query('BEGIN');
    expect(sqlstate(await errorOf(b.query('SELECT 1')))).toBe('57P05');
    await a.query('COMMIT');
    expect(await assigned() - start).toBe(1);

    await a.query('BEGIN');
    // b's timeout ended its session, as PgBouncer's does: c waits now.
    const moved = c.query<{ d: string }>('SELECT current_database() AS d');
    await waitingClients(gw, 1);
    gw.write({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }', databases: { [DB]: DB2, [DB2]: DB2 } });
    await admin.query('RELOAD');
    expect((await moved).rows).toEqual([{ d: DB2 }]);
    await a.query('COMMIT');
    expect(await assigned() - start).toBe(3);
  });
});

// --- RELOAD and pool sizes ---------------------------------------------------------------------------

describe('RELOAD of pool limits while clients wait', () => {
  it('raising pool.size serves the clients already waiting at once', async () => {
    const pool = (size: number): string => `{ mode: transaction, size: ${size}, query_wait_timeout_ms: 8000 }`;
    const gw = await startFromFile({ pool: pool(1) });
    const [holder, w1, w2] = await Promise.all([0, 1, 2].map(() => connect(gw)));
    await holder!.query('BEGIN');
    await holder!.query('SELECT 1');
    const waits = Promise.all([w1!.query('SELECT 1 AS n'), w2!.query('SELECT 2 AS n')]);
    await waitingClients(gw, 2);
    const admin = await console_(gw);
    gw.write({ pool: pool(3) });
    await admin.query('RELOAD');
    try {
      // The holder is still inside its transaction: only the new room can serve them.
      expect(await settlesWithin(waits, 2000), 'waiters served within 2 s of the RELOAD').toBe(true);
      expect((await waits).map((r) => r.rows[0])).toEqual([{ n: 1 }, { n: 2 }]);
    } finally {
      await holder!.query('COMMIT');
      await waits.catch(() => undefined);
    }
  });

  it('raising max_db_connections serves the client already waiting at once', async () => {
    const pool = (max: number): string => `{ mode: transaction, size: 3, max_db_connections: ${max}, query_wait_timeout_ms: 8000 }`;
    const gw = await startFromFile({ pool: pool(1) });
    const [holder, w] = await Promise.all([0, 1].map(() => connect(gw)));
    await holder!.query('BEGIN');
    await holder!.query('SELECT 1');
    const waiting = w!.query('SELECT 1 AS n');
    await waitingClients(gw, 1);
    gw.write({ pool: pool(3) });
    const admin = await console_(gw);
    await admin.query('RELOAD');
    try {
      expect(await settlesWithin(waiting, 2000), 'waiter served within 2 s of the RELOAD').toBe(true);
    } finally {
      await holder!.query('COMMIT');
      await waiting.catch(() => undefined);
    }
  });

  it('lowering pool.size closes the idle connections above the new size, as PgBouncer\'s janitor does', async () => {
    const pool = (size: number): string => `{ mode: transaction, size: ${size}, query_wait_timeout_ms: 3000 }`;
    const gw = await startFromFile({ pool: pool(3) });
    const clients = await Promise.all([0, 1, 2].map(() => connect(gw)));
    for (const c of clients) await c.query('BEGIN');
    for (const c of clients) await c.query('COMMIT');
    expect(await backendsOf(DB)).toBe(3);
    gw.write({ pool: pool(1) });
    const admin = await console_(gw);
    await admin.query('RELOAD');
    // PgBouncer janitor.c check_pool_size: "too many servers in the pool" closes idle ones each second.
    await waitFor('the pool to shrink to its new size', async () => (await backendsOf(DB)) === 1, 3000).catch(() => undefined);
    expect(await backendsOf(DB)).toBe(1);
    const row = await poolRow(admin);
    expect(Number(row?.sv_idle) + Number(row?.sv_active)).toBe(1);
    for (const c of clients) expect((await c.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('lowering query_wait_timeout_ms applies to a client already waiting (57P05)', async () => {
    const pool = (ms: number): string => `{ mode: transaction, size: 1, query_wait_timeout_ms: ${ms} }`;
    const gw = await startFromFile({ pool: pool(15000) });
    const [holder, w] = await Promise.all([0, 1].map(() => connect(gw)));
    await holder!.query('BEGIN');
    const waiting = errorOf(w!.query('SELECT 1'));
    await waitingClients(gw, 1);
    gw.write({ pool: pool(500) });
    await gw.gateway.reload();
    expect(await settlesWithin(waiting, 2000)).toBe(true);
    expect(sqlstate(await waiting)).toBe('57P05');
    await holder!.query('COMMIT');
  });
});

// --- PAUSE / RESUME ------------------------------------------------------------------------------------

describe('PAUSE / RESUME', () => {
  it('RESUME with nothing paused is refused, as PgBouncer refuses it', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await console_(gw);
    // PgBouncer admin.c admin_cmd_resume: "pooler is not paused/suspended" / "database %s is not paused".
    expect.soft(await errorOf(admin.query('RESUME')), 'RESUME').toMatchObject({ message: expect.stringMatching(/not paused/) });
    expect.soft(await errorOf(admin.query(`RESUME ${DB}`)), `RESUME ${DB}`).toMatchObject({ message: expect.stringMatching(/not paused/) });
    expect((await admin.query('SHOW VERSION')).rows.length).toBe(1);
  });

  it('a second PAUSE while paused is refused, as PgBouncer refuses it', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await console_(gw);
    await admin.query('PAUSE');
    try {
      // PgBouncer admin.c admin_cmd_pause: "already suspended/paused".
      expect(await errorOf(admin.query('PAUSE'))).toMatchObject({ message: expect.stringMatching(/already .*paused/) });
    } finally {
      await admin.query('RESUME').catch(() => undefined);
    }
  });

  it('a query held by PAUSE does not time out (57P05) during the pause; /readyz stays 200; RESUME runs it', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 500 }', http: true });
    const a = await connect(gw);
    await a.query('SELECT 1');
    const admin = await console_(gw);
    await admin.query('PAUSE');
    expect((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.paused).toBe('1');
    const held = a.query<{ n: number }>('SELECT 1 AS n');
    const state = track(held);
    await waitingClients(gw, 1);
    await sleep(1200); // more than twice query_wait_timeout_ms
    expect(state.settled).toBe(false);
    expect((await poolRow(admin))?.cl_waiting).toBe('1');
    expect(sample(await scrape(gw), `pgway_clients_waiting{pool="${DB}/app"}`)).toBe(1);
    expect((await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`)).status).toBe(200);
    await admin.query('RESUME');
    expect((await held).rows).toEqual([{ n: 1 }]);
    expect(clientErrors.get(a)).toEqual([]);
  });

  it('PAUSE then SHUTDOWN: a client held by the pause is told 57P01 at once, not after shutdown_timeout_ms', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 0 }', extra: 'shutdown_timeout_ms: 6000' });
    const a = await connect(gw);
    await a.query('SELECT 1');
    const admin = await console_(gw);
    await admin.query('PAUSE');
    const held = errorOf(a.query('SELECT 1'));
    await waitingClients(gw, 1);
    await admin.query('SHUTDOWN').catch(() => undefined);
    try {
      // PgBouncer usage.md: "SHUTDOWN: The PgBouncer process will exit." A held query cannot finish.
      expect(await settlesWithin(held, 2000), 'held query answered within 2 s').toBe(true);
      expect(sqlstate(await held)).toBe('57P01');
    } finally {
      await settleShutdown(gw);
    }
  });
});

describe('PAUSE then SHUTDOWN, session mode', () => {
  it('a session-mode client held by PAUSE at login is told 57P01 at once, not after shutdown_timeout_ms', async () => {
    const gw = await startFromFile({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 0 }', extra: 'shutdown_timeout_ms: 6000' });
    const admin = await console_(gw);
    await admin.query('PAUSE');
    const c = new pg.Client({ connectionString: gw.url() });
    c.on('error', () => undefined);
    const login = errorOf(c.connect());
    await waitFor('the client to wait at login', () => gw.gateway.clients().some((x) => x.user === 'app' && x.state === 'waiting'));
    await admin.query('SHUTDOWN').catch(() => undefined);
    try {
      expect(await settlesWithin(login, 2000), 'held login answered within 2 s').toBe(true);
      expect(sqlstate(await login)).toBe('57P01');
    } finally {
      await settleShutdown(gw);
    }
  });
});

// --- SHUTDOWN ------------------------------------------------------------------------------------------

describe('SHUTDOWN', () => {
  it('turns /readyz to 503 and stops accepting new clients at once', async () => {
    const gw = await startFromFile({ pool: '{ mode: session, size: 2 }', http: true, extra: 'shutdown_timeout_ms: 3000' });
    const session = await connect(gw); // session mode: pgway lets it finish up to the timeout
    await session.query('SELECT 1');
    const admin = await console_(gw);
    expect((await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`)).status).toBe(200);
    await admin.query('SHUTDOWN');
    try {
      expect((await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`)).status).toBe(503);
      expect((await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).status).toBe(200);
      const late = new pg.Client({ connectionString: gw.url() });
      late.on('error', () => undefined);
      expect(await errorOf(late.connect())).toBeDefined();
    } finally {
      await settleShutdown(gw);
    }
  });

  it('closes idle transaction-mode clients and the console promptly, although the console stays connected', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }', extra: 'shutdown_timeout_ms: 6000' });
    const idle = await connect(gw);
    await idle.query('SELECT 1');
    const admin = await console_(gw);
    await admin.query('SHUTDOWN');
    try {
      // Nothing holds a server connection: PgBouncer exits at once; pgway's own rule lets busy sessions
      // finish, and neither an idle pooled client nor the console that ran SHUTDOWN is busy.
      await waitFor('the idle client and the console to be closed', () => ended.has(idle) && ended.has(admin), 2500)
        .catch(() => undefined);
      expect({ idleClosed: ended.has(idle), consoleClosed: ended.has(admin), withinMs: 2500 })
        .toEqual({ idleClosed: true, consoleClosed: true, withinMs: 2500 });
    } finally {
      await settleShutdown(gw);
    }
  });
});

// --- RECONNECT ---------------------------------------------------------------------------------------------

describe('RECONNECT', () => {
  it('transaction mode: the connection in use closes after its transaction, the next one is fresh, SETs survive, other databases untouched', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }', databases: { [DB]: DB, [DB2]: DB2 } });
    const a = await connect(gw, 'app', DB);
    const other = await connect(gw, 'app', DB2);
    await a.query("SET statement_timeout = '4321'");
    const otherPid = await pidOf(other);
    await a.query('BEGIN');
    const first = await pidOf(a);
    const admin = await console_(gw);
    await admin.query(`RECONNECT ${DB}`);
    expect(await pidOf(a)).toBe(first); // not in the middle of the transaction
    await a.query("INSERT INTO hop_rows VALUES ('reconnect')");
    await a.query('COMMIT');
    const next = await pidOf(a);
    expect(next).not.toBe(first);
    expect((await a.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '4321ms' }]);
    await waitFor('the old backend to be gone', async () => !(await backendAlive(first)));
    expect(await pidOf(other)).toBe(otherPid);
    expect(clientErrors.get(a)).toEqual([]);
    const r = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM hop_rows WHERE marker = 'reconnect'", [], 'primary', DB);
    expect(r.rows[0]!.n).toBe(1);
  });

  it('session mode: a connected client keeps its backend; the connection closes once the client leaves', async () => {
    const gw = await startFromFile({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 5000 }' });
    const a = await connect(gw);
    const first = await pidOf(a);
    const admin = await console_(gw);
    await admin.query('RECONNECT');
    await a.query('BEGIN');
    expect(await pidOf(a)).toBe(first);
    await a.query('COMMIT');
    expect(await pidOf(a)).toBe(first);
    await a.end();
    await waitFor('the reconnected backend to be gone', async () => !(await backendAlive(first)));
    const b = await connect(gw);
    expect(await pidOf(b)).not.toBe(first);
  });
});

// --- KILL ------------------------------------------------------------------------------------------------

describe('KILL', () => {
  it('ends a client running a query with 57P01, drops its server connection, spares the other database; RESUME reopens', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 10000 }', databases: { [DB]: DB, [DB2]: DB2 } });
    const a = await connect(gw, 'app', DB, 'hop-kill-a');
    const other = await connect(gw, 'app', DB2, 'hop-kill-other');
    const running = errorOf(a.query('SELECT pg_sleep(10)'));
    await waitFor('the sleep to run', async () => (await backendsOf(DB, "query LIKE '%pg_sleep(10)%' AND state = 'active'")) === 1);
    const admin = await console_(gw);
    await admin.query(`KILL ${DB}`);
    expect(await settlesWithin(running, 2000)).toBe(true);
    expect(sqlstate(await running)).toBe('57P01');
    await waitFor('no server connection left to the killed database', async () => (await backendsOf(DB)) === 0, 3000);
    expect((await show(admin, 'CLIENTS')).filter((r) => r.database === DB)).toEqual([]);
    expect((await show(admin, 'SERVERS')).filter((r) => r.database === DB)).toEqual([]);
    expect((await other.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(clientErrors.get(other)).toEqual([]);
    await admin.query(`RESUME ${DB}`);
    const fresh = await connect(gw, 'app', DB);
    expect((await fresh.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });
});

// --- RELOAD: what changes, what is refused ----------------------------------------------------------------

/** The salt pgway offers `user` in its SCRAM server-first message (the exchange is left there). */
async function scramSalt(gw: FileGateway, user: string): Promise<string> {
  const raw = await RawClient.connect({ host: gw.host, port: gw.port });
  try {
    raw.write(startupPacket({ user, database: DB }));
    await raw.readUntil('R');
    const first = Buffer.from('n,,n=,r=0123456789abcdefghijklmn');
    const len = Buffer.alloc(4);
    len.writeInt32BE(first.length);
    raw.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), len, first])));
    const { message } = await raw.readUntil('R');
    return /,s=([^,]+),/.exec(message.body.subarray(4).toString())![1]!;
  } finally {
    raw.destroy();
  }
}

describe('RELOAD config changes', () => {
  it("keeps the SCRAM keys of a user whose password did not change (no PBKDF2 per user per RELOAD); a new password's are new", async () => {
    const pool = '{ mode: transaction, size: 2 }';
    const gw = await startFromFile({ pool, users: ['{ name: other, password: other-secret, server_user: app, server_password: app-secret }'] });
    const admin = await console_(gw);
    const [app, other] = [await scramSalt(gw, 'app'), await scramSalt(gw, 'other')];
    gw.write({ pool, users: ['{ name: other, password: changed-secret, server_user: app, server_password: app-secret }'] });
    await admin.query('RELOAD');
    expect(await scramSalt(gw, 'app')).toBe(app);
    expect(await scramSalt(gw, 'other')).not.toBe(other);
    const c = await connect(gw, 'other', DB, 'hop-new-password', 'changed-secret');
    expect((await c.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('removing a database lets a running transaction commit, then ends the client with 57P01; new logins get 3D000', async () => {
    const pool = '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }';
    const gw = await startFromFile({ pool, databases: { [DB]: DB, [DB2]: DB2 } });
    const a = await connect(gw, 'app', DB2);
    await a.query('BEGIN');
    await a.query("INSERT INTO hop_rows VALUES ('removed-db')");
    gw.write({ pool, databases: { [DB]: DB } });
    const admin = await console_(gw);
    await admin.query('RELOAD');
    await a.query("INSERT INTO hop_rows VALUES ('removed-db')");
    await a.query('COMMIT');
    const r = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM hop_rows WHERE marker = 'removed-db'", [], 'primary', DB2);
    expect(r.rows[0]!.n).toBe(2);
    expect(await errorOf(a.query('SELECT 1'))).toMatchObject({ code: '57P01', message: expect.stringMatching(/removed/) });
    const late = new pg.Client({ connectionString: gw.url('app', DB2) });
    late.on('error', () => undefined);
    expect(sqlstate(await errorOf(late.connect()))).toBe('3D000');
    expect((await show(admin, 'DATABASES')).map((d) => d.name)).toEqual([DB]);
  });

  it('adding a user, changing a password, removing a user: new logins follow the file, open sessions go on', async () => {
    const pool = '{ mode: transaction, size: 3, query_wait_timeout_ms: 3000 }';
    const rot = (pw: string): string => `{ name: rot, password: ${pw}, server_user: app, server_password: app-secret }`;
    const gw = await startFromFile({ pool, users: [rot('old-pass')] });
    const before = await connect(gw, 'rot', DB, 'hop-rot', 'old-pass');
    await before.query('SELECT 1');
    gw.write({ pool, users: [rot('new-pass'), '{ name: newbie, password: newbie-pass, server_user: app, server_password: app-secret }'] });
    const admin = await console_(gw);
    await admin.query('RELOAD');

    const old = new pg.Client({ connectionString: gw.url('rot', DB, 'old-pass') });
    old.on('error', () => undefined);
    expect(sqlstate(await errorOf(old.connect()))).toBe('28P01');
    const renewed = await connect(gw, 'rot', DB, 'hop-rot2', 'new-pass');
    expect((await renewed.query<{ u: string }>('SELECT current_user AS u')).rows).toEqual([{ u: 'app' }]);
    expect((await before.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    const newbie = await connect(gw, 'newbie', DB, 'hop-newbie', 'newbie-pass');
    expect((await newbie.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);

    gw.write({ pool });
    await admin.query('RELOAD');
    expect(await errorOf(before.query('SELECT 1'))).toMatchObject({ code: '57P01', message: expect.stringMatching(/user "rot" was removed/) });
    const gone = new pg.Client({ connectionString: gw.url('rot', DB, 'new-pass') });
    gone.on('error', () => undefined);
    expect(sqlstate(await errorOf(gone.connect()))).toBe('28P01');
  });

  it("changing a database's pool mode applies to new clients; a client already in takes no harm", async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 3, query_wait_timeout_ms: 3000 }' });
    const old = await connect(gw);
    await old.query('SELECT 1');
    expect(processId(old)).not.toBe(await pidOf(old)); // transaction mode: a pid of pgway's own
    gw.write({ pool: '{ mode: session, size: 3, query_wait_timeout_ms: 3000 }' });
    const admin = await console_(gw);
    await admin.query('RELOAD');
    expect((await poolRow(admin))?.pool_mode).toBe('session');
    expect((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.pool_mode).toBe('session');
    const fresh = await connect(gw);
    const pid = await pidOf(fresh);
    expect(processId(fresh)).toBe(pid); // session mode: the server's own pid
    await fresh.query('SELECT 1');
    expect(await pidOf(fresh)).toBe(pid);
    expect((await old.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(clientErrors.get(old)).toEqual([]);
  });

  it('an invalid YAML, an unknown key, a bad type or min_size > size is refused with the reason, logged; the old config stays', async () => {
    const pool = '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }';
    const gw = await startFromFile({ pool });
    const app = await connect(gw);
    const admin = await console_(gw);
    const good = files.yaml({ pool });
    const cases: [string, string, RegExp][] = [
      ['invalid YAML', `${good}\nbroken: { yaml: [\n`, /.+/],
      ['unknown key', files.yaml({ pool: '{ mode: transaction, sise: 3 }' }), /pool\.sise: unknown key, did you mean "size"/],
      ['bad type', files.yaml({ pool: '{ mode: transaction, size: lots }' }), /pool\.size: expected an integer/],
      ['min_size > size', files.yaml({ pool: '{ mode: transaction, size: 2, min_size: 5 }' }), /min_size \(5\) must not exceed size \(2\)/],
      ['bad pool mode', files.yaml({ pool: '{ mode: sessions, size: 2 }' }), /pool\.mode/],
    ];
    for (const [name, text, reason] of cases) {
      gw.writeRaw(text);
      const logsBefore = gw.logs.length;
      const err = await errorOf(admin.query('RELOAD'));
      expect(err, name).toMatchObject({ code: 'F0000', message: expect.stringMatching(/config not reloaded/) });
      expect((err as Error).message, name).toMatch(reason);
      const logged = gw.logs.slice(logsBefore).map((l) => JSON.parse(l) as { level: number; msg: string; err?: string });
      expect(logged.some((l) => l.level >= 50 && /reload refused/.test(l.msg) && reason.test(l.err ?? '')), `${name}: log line`).toBe(true);
      expect((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.pool_size, name).toBe('2');
      expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows, name).toEqual([{ n: 1 }]);
    }
    expect(clientErrors.get(app)).toEqual([]);
  });

  it('a RELOAD that moves a database: SHOW POOLS still counts the old server connection a transaction is using', async () => {
    const pool = '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }';
    const gw = await startFromFile({ pool });
    const a = await connect(gw);
    await a.query('BEGIN');
    const pid = await pidOf(a);
    gw.write({ pool, databases: { [DB]: DB2 } });
    const admin = await console_(gw);
    await admin.query('RELOAD');
    try {
      const servers = (await show(admin, 'SERVERS')).filter((r) => r.database === DB && r.user === 'app');
      expect(servers.map((r) => [r.remote_pid, r.state])).toEqual([[String(pid), 'active']]);
      // PgBouncer keeps one pool per (database, user) and marks the old connection close_needed; its
      // SHOW POOLS / SHOW DATABASES agree with SHOW SERVERS.
      const row = await poolRow(admin);
      expect({ cl_active: row?.cl_active, sv_active: row?.sv_active }).toEqual({ cl_active: '1', sv_active: '1' });
      expect((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.current_connections).toBe('1');
    } finally {
      await a.query('COMMIT');
    }
    expect((await a.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB2 }]);
  });

  it('a RELOAD that moves a database keeps its SHOW POOLS / SHOW STATS rows and /metrics series for the clients still in', async () => {
    const pool = '{ mode: transaction, size: 2 }';
    const gw = await startFromFile({ pool, http: true });
    const [a, b] = [await connect(gw), await connect(gw)];
    await a.query('SELECT 1');
    await b.query('SELECT 1');
    const admin = await console_(gw);
    expect((await poolRow(admin))?.cl_active).toBe('2');
    gw.write({ pool, databases: { [DB]: DB2 } });
    await admin.query('RELOAD');
    const stats = (await show(admin, 'STATS')).find((r) => r.database === DB);
    const metrics = await scrape(gw);
    expect({ cl_active: (await poolRow(admin))?.cl_active, xacts: stats?.total_xact_count }).toEqual({ cl_active: '2', xacts: '2' });
    expect(sample(metrics, `pgway_transaction_duration_seconds_count{pool="${DB}/app"}`)).toBe(2);
    expect((await a.query<{ d: string }>('SELECT current_database() AS d')).rows).toEqual([{ d: DB2 }]);
  });

  it('removing a database ends its session-mode clients with 57P01 at their next request, as transaction-mode ones', async () => {
    const pool = '{ mode: session, size: 2, query_wait_timeout_ms: 3000 }';
    const gw = await startFromFile({ pool, databases: { [DB]: DB, [DB2]: DB2 } });
    const a = await connect(gw, 'app', DB2);
    await a.query('SELECT 1');
    gw.write({ pool, databases: { [DB]: DB } });
    const admin = await console_(gw);
    await admin.query('RELOAD');
    expect(sqlstate(await errorOf(a.query('SELECT current_database()')))).toBe('57P01');
  });

  it('a file caught empty (truncated while written) is refused, as PgBouncer refuses one; the old config stays', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const app = await connect(gw);
    await app.query('SELECT 1');
    const admin = await console_(gw);
    gw.writeRaw('');
    expect(sqlstate(await errorOf(admin.query('RELOAD')))).toBe('F0000');
    expect((await show(admin, 'DATABASES')).map((d) => d.name)).toEqual([DB]);
    expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('a restart-only setting changed by RELOAD: SHOW CONFIG shows the value in effect, not the unapplied one', async () => {
    const pool = '{ mode: transaction, size: 2 }';
    const gw = await startFromFile({ pool });
    const admin = await console_(gw);
    const value = async (key: string): Promise<Row | undefined> => (await show(admin, 'CONFIG')).find((r) => r.key === key);
    expect(await value('listen.port')).toMatchObject({ value: '0', changeable: 'no' });
    gw.write({ pool, listen: '{ host: 127.0.0.1, port: 1 }' });
    await admin.query('RELOAD');
    // pgway still listens where it started (the console answers there). PgBouncer keeps a CF_NO_RELOAD
    // setting's running value on RELOAD (libusual cfparser: "silently ignore"), so SHOW CONFIG tells the truth.
    expect((await value('listen.port'))?.value).toBe('0');
  });
});

// --- SIGHUP on a real pgway process ----------------------------------------------------------------------

describe('SIGHUP on the pgway process', () => {
  let child: ChildProcess | undefined;
  let stdout = '';
  let file: string;
  let port: number;

  const procYaml = (level: string, pool = '{ mode: transaction, size: 2 }'): string => files.yaml({
    pool, logLevel: level, listen: `{ host: 127.0.0.1, port: ${port} }`,
  });

  beforeAll(async () => {
    port = await freePort();
    file = files.pathOf('process.yaml');
    writeFileSync(file, procYaml('warn'));
    // One node process (the tsx CLI would put a wrapper process in between that the signal reaches instead).
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { stdout += c.toString(); });
    await waitFor('the pgway process to accept clients', async () => {
      const c = new pg.Client({ connectionString: `postgres://app:app-secret@127.0.0.1:${port}/${DB}` });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.end();
        return true;
      } catch {
        return false;
      }
    }, 30_000);
  }, 45_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  async function appQuery(): Promise<unknown> {
    const c = new pg.Client({ connectionString: `postgres://app:app-secret@127.0.0.1:${port}/${DB}` });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query<{ n: number }>('SELECT 1 AS n')).rows;
    } finally {
      await c.end();
    }
  }

  it('refuses an invalid file with a log line naming the field, and keeps serving', async () => {
    writeFileSync(file, files.yaml({ pool: '{ mode: transaction, size: nope }', listen: `{ host: 127.0.0.1, port: ${port} }`, logLevel: 'warn' }));
    const mark = stdout.length;
    child!.kill('SIGHUP');
    await waitFor('the refusal to be logged', () => /reload refused/.test(stdout.slice(mark)), 5000);
    expect(stdout.slice(mark)).toMatch(/pool\.size: expected an integer/);
    expect(await appQuery()).toEqual([{ n: 1 }]);
    expect(child!.exitCode).toBe(null);
  });

  it('applies a changed log.level', async () => {
    const reloadMark = stdout.length;
    writeFileSync(file, procYaml('info'));
    child!.kill('SIGHUP');
    // Logged at info, so only once the new level applies.
    await waitFor('the reload to be logged', () => /config reloaded/.test(stdout.slice(reloadMark)), 5000);
    const mark = stdout.length;
    // A refused login is logged at info ("client refused"); at warn it is not.
    const bad = new pg.Client({ connectionString: `postgres://app:wrong@127.0.0.1:${port}/${DB}` });
    bad.on('error', () => undefined);
    expect(sqlstate(await errorOf(bad.connect()))).toBe('28P01');
    await waitFor('the refused login to be logged', () => /client refused/.test(stdout.slice(mark)), 5000);
  });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// --- pool settings at their edges -------------------------------------------------------------------------

describe('pool settings at their edges', () => {
  it('server_connect_timeout: a server that accepts but never answers fails the login within the timeout (08006)', async () => {
    const silent = net.createServer((socket) => { socket.on('error', () => undefined); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const gw = await startFromFile({
        pool: '{ mode: transaction, size: 1, server_connect_timeout_ms: 500, query_wait_timeout_ms: 10000 }',
        primaryPort: port,
      });
      const c = new pg.Client({ connectionString: gw.url() });
      c.on('error', () => undefined);
      // The connect timeout (08006), not the client's query_wait_timeout_ms (57P05), ends the wait.
      const err = await errorOf(c.connect());
      expect(sqlstate(err)).toBe('08006');
    } finally {
      silent.close();
    }
  });

  it('min_size: connections killed with pg_terminate_backend are replaced without a client asking', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 3, min_size: 2, query_wait_timeout_ms: 3000 }' });
    const app = await connect(gw);
    await app.query('SELECT 1');
    await waitFor('min_size to be filled', async () => (await backendsOf(DB)) === 2);
    const pids = (await adminQuery<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", [DB])).rows.map((r) => r.pid);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    await waitFor('two new connections', async () => {
      const now = (await adminQuery<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", [DB])).rows.map((r) => r.pid);
      return now.length === 2 && now.every((p) => !pids.includes(p));
    }, 5000);
    expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(clientErrors.get(app)).toEqual([]);
  });

  it('server_lifetime: an idle connection past its lifetime is replaced; one in a transaction is not cut', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, server_lifetime_ms: 800, query_wait_timeout_ms: 3000 }' });
    const a = await connect(gw);
    const first = await pidOf(a);
    await sleep(2100);
    const second = await pidOf(a);
    expect(second).not.toBe(first);
    expect(await backendAlive(first)).toBe(false);
    await a.query('BEGIN');
    const inTx = await pidOf(a);
    await sleep(1500); // past the lifetime, inside the transaction
    expect(await pidOf(a)).toBe(inTx);
    await a.query('COMMIT');
    expect(clientErrors.get(a)).toEqual([]);
  });

  it('server_idle_timeout: idle connections close down to min_size, not below', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 3, min_size: 1, server_idle_timeout_ms: 300, query_wait_timeout_ms: 3000 }' });
    const clients = await Promise.all([0, 1, 2].map(() => connect(gw)));
    for (const c of clients) await c.query('BEGIN');
    expect(await backendsOf(DB)).toBe(3); // counted while held: idle ones may close 300 ms after COMMIT
    for (const c of clients) await c.query('COMMIT');
    await waitFor('idle connections to close', async () => (await backendsOf(DB)) === 1, 5000);
    await sleep(1500);
    expect(await backendsOf(DB)).toBe(1);
  });

  it('reserve: the reserve connection goes away once nobody waits', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, reserve_size: 1, reserve_timeout_ms: 200, query_wait_timeout_ms: 3000 }' });
    const [a, b] = await Promise.all([connect(gw), connect(gw)]);
    await a!.query('BEGIN');
    await a!.query('SELECT 1');
    expect((await b!.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    await a!.query('COMMIT');
    await waitFor('the pool back to one connection', async () => (await backendsOf(DB)) === 1);
    const admin = await console_(gw);
    const row = await poolRow(admin);
    expect(Number(row?.sv_active) + Number(row?.sv_idle)).toBe(1);
  });

  it('idle_transaction_timeout: ends a session-mode client idle in a transaction (25P03), never one idle outside', async () => {
    const gw = await startFromFile({ pool: '{ mode: session, size: 2, idle_transaction_timeout_ms: 400 }' });
    const idleOutside = await connect(gw);
    await idleOutside.query('SELECT 1');
    const inTx = await connect(gw);
    await inTx.query('BEGIN');
    await inTx.query("INSERT INTO hop_rows VALUES ('idle-tx')");
    await waitFor('the idle transaction to be ended', () => ended.has(inTx), 3000);
    expect(clientErrors.get(inTx)?.map(sqlstate)).toContain('25P03');
    await sleep(600);
    expect((await idleOutside.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    const r = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM hop_rows WHERE marker = 'idle-tx'", [], 'primary', DB);
    expect(r.rows[0]!.n).toBe(0);
  });

  it('max_client_conn: one client too many gets 53300; refused logins and departed clients free their slots; RELOAD raises it', async () => {
    const pool = '{ mode: transaction, size: 2 }';
    const gw = await startFromFile({ pool, extra: 'limits: { max_client_conn: 3 }' });
    const admin = await console_(gw); // the console counts, as in PgBouncer
    const a = await connect(gw);
    const b = await connect(gw);
    const tooMany = new pg.Client({ connectionString: gw.url() });
    tooMany.on('error', () => undefined);
    expect(await errorOf(tooMany.connect())).toMatchObject({ code: '53300', message: expect.stringMatching(/max_client_conn/) });
    await b.end();
    for (let i = 0; i < 5; i++) {
      const wrong = new pg.Client({ connectionString: gw.url('app', DB, 'wrong') });
      wrong.on('error', () => undefined);
      expect(sqlstate(await errorOf(wrong.connect()))).toBe('28P01');
    }
    const c = await connect(gw); // the slot b left, not used up by the refused logins
    expect((await c.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    gw.write({ pool, extra: 'limits: { max_client_conn: 4 }' });
    await admin.query('RELOAD');
    const d = await connect(gw);
    expect((await d.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect((await a.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });
});

// --- /metrics ------------------------------------------------------------------------------------------------

describe('/metrics', () => {
  it('client and server gauges by state, and the wait histogram, move as the clients do', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }', http: true });
    const pool = `${DB}/app`;
    const [idle, holder, waiter] = await Promise.all([0, 1, 2].map(() => connect(gw)));
    await idle!.query('SELECT 1');
    const base = await scrape(gw);
    await holder!.query('BEGIN');
    const waited = waiter!.query('SELECT 1');
    await waitingClients(gw, 1);
    const during = await scrape(gw);
    expect({
      active: sample(during, 'pgway_client_connections{state="active"}'),
      waiting: sample(during, 'pgway_client_connections{state="waiting"}'),
      idle: sample(during, 'pgway_client_connections{state="idle"}'),
      serverActive: sample(during, `pgway_server_connections{pool="${pool}",state="active"}`),
      serverIdle: sample(during, `pgway_server_connections{pool="${pool}",state="idle"}`),
      clientsWaiting: sample(during, `pgway_clients_waiting{pool="${pool}"}`),
    }).toEqual({ active: 1, waiting: 1, idle: 1, serverActive: 1, serverIdle: 0, clientsWaiting: 1 });
    await sleep(200);
    await holder!.query('COMMIT');
    await waited;
    const after = await scrape(gw);
    const count = (t: string): number => sample(t, `pgway_pool_wait_seconds_count{pool="${pool}"}`);
    const le = (t: string, b: string): number => sample(t, `pgway_pool_wait_seconds_bucket{pool="${pool}",le="${b}"}`);
    // holder's BEGIN (no wait) and waiter's wait of 200 ms and more.
    expect(count(after) - count(base)).toBe(2);
    expect(le(after, '0.1') - le(base, '0.1')).toBe(1);
    expect(le(after, '1') - le(base, '1')).toBe(2);
    expect(sample(after, `pgway_pool_wait_seconds_sum{pool="${pool}"}`) - sample(base, `pgway_pool_wait_seconds_sum{pool="${pool}"}`)).toBeGreaterThan(0.15);
    expect(sample(after, 'pgway_client_connections{state="waiting"}')).toBe(0);
  });

  it('pgway_errors_total counts each 57P05 and 57P01 a client got, once', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 300 }', http: true });
    const series = (s: string): string => `pgway_errors_total{source="gateway",sqlstate="${s}"}`;
    const base = await scrape(gw);
    const [holder, w1, w2] = await Promise.all([0, 1, 2].map(() => connect(gw)));
    await holder!.query('BEGIN');
    const errs = await Promise.all([errorOf(w1!.query('SELECT 1')), errorOf(w2!.query('SELECT 1'))]);
    expect(errs.map(sqlstate)).toEqual(['57P05', '57P05']);
    await holder!.query('COMMIT');
    const admin = await console_(gw);
    await admin.query(`KILL ${DB}`);
    await waitFor('the holder to be ended', () => ended.has(holder!));
    await admin.query(`RESUME ${DB}`);
    const after = await scrape(gw);
    expect(sample(after, series('57P05')) - sample(base, series('57P05'))).toBe(2);
    expect(sample(after, series('57P01')) - sample(base, series('57P01'))).toBe(1);
  });

  it('pgway_errors_total counts the 57014 a client got for a cancelled waiting request', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }', http: true });
    const holder = await connect(gw, 'trustapp');
    await holder.query('BEGIN');
    const { client, pid, secret } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustapp', database: DB });
    try {
      const base = await scrape(gw);
      client.write(queryMessage('SELECT 1'));
      await waitingClients(gw, 1, 'trustapp');
      const canceller = await RawClient.connect({ host: gw.host, port: gw.port });
      canceller.write(cancelRequestPacket(pid, secret));
      const { before } = await client.readUntil('Z');
      const error = before.find((m) => m.type === 'E');
      expect(error && errorFields(error.body).get('C')).toBe('57014');
      canceller.destroy();
      const after = await scrape(gw);
      const total = (t: string): number =>
        sample(t, 'pgway_errors_total{source="gateway",sqlstate="57014"}') + sample(t, 'pgway_errors_total{source="server",sqlstate="57014"}');
      expect(total(after) - total(base)).toBe(1);
    } finally {
      client.destroy();
      await holder.query('COMMIT');
    }
  });

  it('pgway_errors_total counts no error for a client that left mid-query (it got none)', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }', http: true });
    const a = await connect(gw);
    await a.query('SELECT 1');
    const base = await scrape(gw);
    void a.query('SELECT pg_sleep(5)').catch(() => undefined);
    await waitFor('the sleep to run', async () => (await backendsOf(DB, "query LIKE '%pg_sleep(5)%' AND state = 'active'")) === 1);
    (a.connection.stream as net.Socket).destroy();
    // pgway cancels the statement the departed client left running and keeps the connection.
    await waitFor('the connection to be idle again', async () => (await backendsOf(DB, "state = 'idle'")) === 1, 3000);
    const after = await scrape(gw);
    const errorSeries = (t: string): Map<string, number> => new Map(t.split('\n').filter((l) => l.startsWith('pgway_errors_total{'))
      .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
    const [b, aft] = [errorSeries(base), errorSeries(after)];
    expect([...aft].filter(([k, v]) => v !== (b.get(k) ?? 0)).map(([k, v]) => `${k} +${v - (b.get(k) ?? 0)}`)).toEqual([]);
  });
});

// --- the console's bad input -----------------------------------------------------------------------------------

describe('admin console bad input', () => {
  it('SQL, bare SHOW, SHOW of an unknown item, KILL without a database, PAUSE of the console: clear errors, console usable', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await console_(gw);
    const cases: [string, RegExp][] = [
      ['SELECT 1', /unknown admin command/],
      ['SHOW', /unknown SHOW command/],
      ['SHOW FDS_AND_MORE', /unknown SHOW command/],
      ['KILL', /database/],
      ['PAUSE pgbouncer', /admin db/],
      ['RECONNECT pgway', /admin db/],
      ['SHOW VERSION; SHOW POOLS', /.+/],
    ];
    for (const [sql, message] of cases) {
      const err = await errorOf(admin.query(sql));
      expect(err, sql).toMatchObject({ severity: 'ERROR', message: expect.stringMatching(message) });
      expect(sqlstate(err), sql).toMatch(/^(42601|08P01)$/);
      expect((await admin.query('SHOW VERSION')).rows.length, `usable after ${sql}`).toBe(1);
    }
    expect(clientErrors.get(admin)).toEqual([]);
    expect((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.paused).toBe('0');
  });

  it('a database name in double quotes is taken, as PgBouncer takes PAUSE "db"', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await console_(gw);
    for (const sql of [`PAUSE "${DB}"`, `RESUME "${DB}"`, `RECONNECT "${DB}"`, `KILL "${DB}"`, `RESUME "${DB}"`]) {
      expect(await errorOf(admin.query(sql)), sql).toBeUndefined();
    }
    // An unterminated quote is a mistake to hear of, not PAUSE of the name without it.
    expect(sqlstate(await errorOf(admin.query(`PAUSE "${DB}`)))).toBe('42601');
    expect((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.paused).toBe('0');
  });

  it("shows what PgBouncer 1.18 shows: reserve_pool, paused as 0/1, an idle client as active, the file's key names", async () => {
    const users = ['{ name: "svc/app", method: trust, server_user: app, server_password: app-secret }'];
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }', users });
    const app = await connect(gw, 'svc/app');
    await app.query('SELECT 1');
    const admin = await console_(gw);
    await admin.query(`PAUSE ${DB}`);
    const db = (await show(admin, 'DATABASES')).find((r) => r.name === DB)!;
    expect({ reserve_pool: db.reserve_pool, paused: db.paused, disabled: db.disabled }).toEqual({ reserve_pool: '0', paused: '1', disabled: '0' });
    await admin.query(`RESUME ${DB}`);
    expect((await show(admin, 'CLIENTS')).filter((r) => r.user === 'svc/app').map((r) => r.state)).toEqual(['active']);
    expect((await show(admin, 'POOLS')).filter((r) => r.database === DB).map((r) => r.user)).toEqual(['svc/app']);
    expect((await show(admin, 'CONFIG')).map((r) => r.key)).toContain('pool.query_wait_timeout_ms');
  });

  it('commands with extra words are refused and do nothing (SHUTDOWN now, PAUSE db extra, RELOAD x), as PgBouncer refuses them', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }', extra: 'shutdown_timeout_ms: 1000' });
    const admin = await console_(gw);
    try {
      // PgBouncer admin.c: RELOAD and SHUTDOWN with an argument are a syntax error; three words match no command.
      expect.soft(await errorOf(admin.query(`PAUSE ${DB} extra`)), 'PAUSE db extra').toBeDefined();
      expect.soft((await show(admin, 'DATABASES')).find((r) => r.name === DB)?.paused, 'paused after PAUSE db extra').toBe('0');
      await admin.query('RESUME').catch(() => undefined);
      expect.soft(await errorOf(admin.query('RELOAD now')), 'RELOAD now').toBeDefined();
      expect.soft(await errorOf(admin.query('SHUTDOWN now')), 'SHUTDOWN now').toBeDefined();
      await sleep(300);
      expect(gw.gateway.ready, 'pgway still serving after "SHUTDOWN now"').toBe(true);
      const app = await connect(gw);
      expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await settleShutdown(gw, 3000);
    }
  });

  it('SHOW CONFIG does not show a password written into a URL (cache.redis)', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }', extra: 'cache: { redis: "redis://:hop-redis-secret@127.0.0.1:6379" }' });
    const admin = await console_(gw);
    const rows = await show(admin, 'CONFIG');
    expect(rows.some((r) => r.key === 'cache.redis')).toBe(true);
    expect(rows.filter((r) => (r.value ?? '').includes('hop-redis-secret')).map((r) => r.key)).toEqual([]);
  });

  it('logins to the console: wrong password and unknown user get 28P01, a non-admin user 28000', async () => {
    const gw = await startFromFile({ pool: '{ mode: transaction, size: 2 }' });
    const attempt = async (user: string, password: string): Promise<unknown> => {
      const c = new pg.Client({ connectionString: gw.url(user, 'pgbouncer', password) });
      c.on('error', () => undefined);
      const err = await errorOf(c.connect());
      await c.end().catch(() => undefined);
      return err;
    };
    expect(sqlstate(await attempt('admin', 'wrong'))).toBe('28P01');
    expect(sqlstate(await attempt('nobody', 'x'))).toBe('28P01');
    expect(await attempt('app', 'app-secret')).toMatchObject({ code: '28000', severity: 'FATAL' });
    const admin = await connect(gw, 'admin', 'pgbouncer');
    expect((await admin.query('SHOW VERSION')).rows.length).toBe(1);
  });
});
