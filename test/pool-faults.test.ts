// What clients see when things go wrong around a transaction-mode pool: clients and servers that
// vanish, an exhausted pool, a broken config reload, the admin console's PAUSE/KILL, a pgbench storm,
// and the HTTP endpoint. Gateways here are started from a YAML file (as in production) with their own
// database, so pg_stat_activity shows only their server connections.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import postgres from 'postgres';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { run, start, type RunResult } from './helpers/run.js';
import { errorOf, pidOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';

const DB = 'tp_faults';
const POOL_OF_2 = '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }';

let configDir: string;

beforeAll(async () => {
  configDir = mkdtempSync(path.join(os.tmpdir(), 'pgway-faults-'));
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
  await adminQuery('CREATE TABLE tp_fault_rows (marker text)', [], 'primary', DB);
  await adminQuery('GRANT ALL ON tp_fault_rows TO app', [], 'primary', DB);
});

afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  rmSync(configDir, { recursive: true, force: true });
});

// --- a gateway from a config file ------------------------------------------------------------------

interface FileGateway {
  gateway: Gateway;
  file: string;
  host: string;
  port: number;
  httpPort: number | undefined;
  url(user?: string, database?: string): string;
  stop(): Promise<void>;
}

const PASSWORDS: Record<string, string> = { app: 'app-secret', admin: 'admin-secret' };

interface ConfigOptions {
  pool: string;
  http?: boolean;
  /** Databases served, each on the lab primary under the same name. */
  databases?: string[];
  /** The app user's server connections log in as the superuser instead of as app. */
  appAsSuperuser?: boolean;
}

function configYaml(options: ConfigOptions): string {
  const l = lab();
  const databases = (options.databases ?? [DB]).map((name) => `
  ${name}:
    primary: { host: ${l.primary.host}, port: ${l.primary.port}, dbname: ${name}, sslmode: disable }`).join('');
  return `
listen: { host: 127.0.0.1, port: 0 }
http: { enabled: ${options.http ? 'true' : 'false'}, host: 127.0.0.1, port: 0 }
log: { level: silent }
auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret${options.appAsSuperuser ? `, server_user: postgres, server_password: ${l.superuserPassword}` : ''} }
    - { name: admin, password: admin-secret, admin: true, server_user: postgres, server_password: ${l.superuserPassword} }
pool: ${options.pool}
databases:${databases}
`;
}

let configCount = 0;

async function startFromFile(options: ConfigOptions): Promise<FileGateway> {
  const file = path.join(configDir, `pgway-${++configCount}.yaml`);
  writeFileSync(file, configYaml(options));
  const gateway = new Gateway(loadConfig(file), pino({ level: 'silent' }));
  const address = await gateway.start();
  return {
    gateway,
    file,
    host: address.host,
    port: address.port,
    httpPort: address.httpPort,
    url: (user = 'app', database = DB) => `postgres://${user}:${PASSWORDS[user] ?? ''}@${address.host}:${address.port}/${database}`,
    stop: () => gateway.shutdown(200),
  };
}

// --- helpers ---------------------------------------------------------------------------------------

const opened: pg.Client[] = [];
const asyncErrors = new Map<pg.Client, Error[]>();
const endedClients = new Set<pg.Client>();

afterEach(async () => {
  await Promise.all(opened.splice(0).map(endQuietly));
});

async function connect(gw: FileGateway, applicationName = 'tp-faults', user = 'app', database = DB): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: gw.url(user, database), application_name: applicationName });
  const errors: Error[] = [];
  client.on('error', (err) => errors.push(err));
  client.on('end', () => endedClients.add(client));
  asyncErrors.set(client, errors);
  opened.push(client);
  await client.connect();
  return client;
}

async function endQuietly(client: pg.Client): Promise<void> {
  await Promise.race([client.end().catch(() => undefined), sleep(2000)]);
}


function socketOf(client: pg.Client): net.Socket {
  return client.connection.stream as net.Socket;
}





/** Server backends of `database` (pgway's server connections) matching `where`, seen directly. */
async function backends(where = 'true', database = DB): Promise<number> {
  const r = await adminQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND ${where}`, [database]);
  return r.rows[0]!.n;
}

async function runningPid(marker: string): Promise<number> {
  let pid: number | undefined;
  await waitFor(`a backend running ${marker}`, async () => {
    const r = await adminQuery<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()", [`%${marker}%`]);
    pid = r.rows[0]?.pid;
    return pid !== undefined;
  });
  return pid!;
}

async function committedRows(marker: string): Promise<number> {
  const r = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM tp_fault_rows WHERE marker = $1', [marker], 'primary', DB);
  return r.rows[0]!.n;
}

/** Clients inside transactions at the same moment; returns the server pids they got. */
async function simultaneousTransactions(clients: pg.Client[]): Promise<number[]> {
  for (const c of clients) await c.query('BEGIN');
  const pids: number[] = [];
  for (const c of clients) pids.push(await pidOf(c));
  await Promise.all(clients.map((c) => c.query('COMMIT')));
  return pids;
}

async function churn(clients: pg.Client[], rounds: number): Promise<void> {
  await Promise.all(clients.map(async (c, i) => {
    for (let r = 0; r < rounds; r++) {
      await c.query('BEGIN');
      const v = await c.query<{ v: number }>('SELECT $1::int AS v', [i * 1000 + r]);
      await c.query('COMMIT');
      expect(v.rows).toEqual([{ v: i * 1000 + r }]);
    }
  }));
}

// --- clients and servers that go away -----------------------------------------------------------

describe('failures under a transaction-mode pool of 2', () => {
  let gw: FileGateway;

  beforeAll(async () => {
    gw = await startFromFile({ pool: POOL_OF_2 });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('rolls back a client that vanishes mid-transaction and reuses its server connection, clean', async () => {
    const a = await connect(gw, 'tp-vanish');
    await a.query('BEGIN');
    await a.query("INSERT INTO tp_fault_rows VALUES ('vanished')");
    const pidA = await pidOf(a);
    expect(await backends("state LIKE 'idle in transaction%'")).toBe(1);
    socketOf(a).destroy();

    await waitFor('no server connection left idle in transaction', async () => (await backends("state LIKE 'idle in transaction%'")) === 0);
    expect(await committedRows('vanished')).toBe(0);

    const [b, c] = await Promise.all([connect(gw, 'tp-after-vanish-b'), connect(gw, 'tp-after-vanish-c')]);
    await b.query('BEGIN');
    await c.query('BEGIN');
    const state = 'SELECT pg_backend_pid() AS pid, txid_current_if_assigned()::text AS tx, (SELECT count(*)::int FROM tp_fault_rows WHERE marker = $1) AS n';
    const rows = [(await b.query<{ pid: number; tx: string | null; n: number }>(state, ['vanished'])).rows[0]!,
      (await c.query<{ pid: number; tx: string | null; n: number }>(state, ['vanished'])).rows[0]!];
    await Promise.all([b.query('COMMIT'), c.query('COMMIT')]);
    expect(rows.map(({ tx, n }) => ({ tx, n }))).toEqual([{ tx: null, n: 0 }, { tx: null, n: 0 }]);
    const pids = rows.map((r) => r.pid);
    expect(new Set(pids).size).toBe(2);
    expect(pids).toContain(pidA); // rolled back and reused, not thrown away
    expect(await backends()).toBeLessThanOrEqual(2);
  });

  it('fails only the query whose server was terminated; other clients keep working and the pool replaces it', async () => {
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((n) => connect(gw, `tp-terminate-${n}`)));
    const sleeping = a!.query('SELECT pg_sleep(5) /* tp-terminate-me */');
    const outcome = errorOf(sleeping);
    const victim = await runningPid('tp-terminate-me');
    const churning = churn([b!, c!, d!], 10);
    const killed = await adminQuery<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [victim]);
    expect(killed.rows).toEqual([{ ok: true }]);

    const err = await outcome;
    expect(['57P01', '08006']).toContain(sqlstate(err));
    await churning;
    const pids = await simultaneousTransactions([b!, c!]);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(victim);
    expect(await backends()).toBeLessThanOrEqual(2);
  });
});

describe('an exhausted pool (size 1, query_wait_timeout_ms 1000)', () => {
  let gw: FileGateway;

  beforeAll(async () => {
    gw = await startFromFile({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1000 }' });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('fails a waiting query with 57P05 and a clear message, and serves everyone again after the holder commits', async () => {
    const holder = await connect(gw, 'tp-holder');
    await holder.query('BEGIN');
    await holder.query("INSERT INTO tp_fault_rows VALUES ('held')");

    const waiter = await connect(gw, 'tp-waiter');
    await expect(waiter.query('SELECT 1')).rejects.toMatchObject({
      code: '57P05',
      message: expect.stringMatching(/no server connection available .* after \d+ ms \(query_wait_timeout\)/),
    });

    await holder.query("INSERT INTO tp_fault_rows VALUES ('held')");
    await holder.query('COMMIT');
    expect(await committedRows('held')).toBe(2);
    const next = await connect(gw, 'tp-next');
    expect((await next.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect((await holder.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  });

  it('times each waiting client out from its own arrival, and serves one that arrived later when a connection frees up', async () => {
    const holder = await connect(gw, 'tp-holder-3');
    await holder.query('BEGIN');
    const first = await connect(gw, 'tp-first');
    const second = await connect(gw, 'tp-second');
    const third = await connect(gw, 'tp-third');
    const settled = new Set<string>();
    const track = (name: string, p: Promise<unknown>): Promise<unknown> => p.then(
      (v) => { settled.add(name); return v; },
      (e: unknown) => { settled.add(name); throw e; },
    );
    const a = track('first', first.query('SELECT 1'));
    await sleep(600);
    const b = track('second', second.query('SELECT 2 AS n'));
    await sleep(300);
    const c = track('third', third.query('SELECT 3 AS n'));
    await expect(a).rejects.toMatchObject({ code: '57P05' });
    // The first one's deadline is not the others': they are still waiting.
    expect(settled.has('second') || settled.has('third')).toBe(false);
    await holder.query('COMMIT');
    expect(((await b) as pg.QueryResult).rows).toEqual([{ n: 2 }]);
    expect(((await c) as pg.QueryResult).rows).toEqual([{ n: 3 }]);
  });

  it("keeps a waiting client's pipelined requests intact, small and large, while it reads more of them", async () => {
    const sql = postgres(gw.url(), { max: 1, onnotice: () => undefined });
    try {
      await sql`SELECT 1`;
      const holder = await connect(gw, 'tp-holder-2');
      await holder.query('BEGIN');
      // postgres.js pipelines: these arrive over many reads while every request waits for the one
      // server connection, held as views of what was read. Sizes cross the read buffer's steps.
      const sizes = [10, 700, 1500, 5000, 20_000, 70_000, 300, 130_000, 3];
      const payloads = sizes.map((n, i) => `${i}:`.padEnd(n, String.fromCharCode(97 + (i % 26))));
      const answers = Promise.all(payloads.map((p) => sql<{ v: string }[]>`SELECT ${p}::text AS v`));
      await sleep(150);
      await holder.query('COMMIT');
      const rows = await answers;
      expect(rows.map((r) => r[0]!.v)).toEqual(payloads);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

// --- reload --------------------------------------------------------------------------------------

describe('reload from the config file', () => {
  let gw: FileGateway;

  beforeAll(async () => {
    gw = await startFromFile({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 1000 }' });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  const poolSize = (): number | undefined => gw.gateway.config().databases.find((d) => d.name === DB)?.pool.size;

  it('refuses a broken file, keeps serving with the old config, then applies a valid change without dropping anyone', async () => {
    const clients = await Promise.all([0, 1, 2].map((i) => connect(gw, `tp-reload-${i}`)));
    const allWork = async (): Promise<void> => {
      for (const [i, c] of clients.entries()) expect((await c.query<{ n: number }>('SELECT $1::int AS n', [i])).rows).toEqual([{ n: i }]);
    };
    await allWork();
    const valid = configYaml({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 1000 }' });

    writeFileSync(gw.file, `${valid}\nbroken: { yaml: [\n`);
    await expect(gw.gateway.reload()).rejects.toBeInstanceOf(ConfigError);
    await allWork();

    writeFileSync(gw.file, configYaml({ pool: '{ mode: transaction, size: 0 }' }));
    await expect(gw.gateway.reload()).rejects.toThrow(/pool\.size/);
    writeFileSync(gw.file, configYaml({ pool: '{ mode: transaction, sise: 3 }' }));
    await expect(gw.gateway.reload()).rejects.toThrow(/unknown key/);
    expect(poolSize()).toBe(2);
    await allWork();

    writeFileSync(gw.file, configYaml({ pool: '{ mode: transaction, size: 3, query_wait_timeout_ms: 1000 }' }));
    await gw.gateway.reload();
    expect(poolSize()).toBe(3);
    // Three transactions at once need three server connections: size 2 would fail the third with 57P05.
    const pids = await simultaneousTransactions(clients);
    expect(new Set(pids).size).toBe(3);
    await allWork();
    expect(clients.filter((c) => endedClients.has(c) || (asyncErrors.get(c)?.length ?? 0) > 0)).toEqual([]);

    const admin = await connect(gw, 'tp-reload-admin', 'admin', 'pgway');
    const dbs = await admin.query<{ name: string; pool_size: string }>('SHOW DATABASES');
    expect(dbs.rows.find((r) => r.name === DB)?.pool_size).toBe('3');
  });
});

// --- the admin console ------------------------------------------------------------------------------

describe('admin console through psql', () => {
  let gw: FileGateway;

  beforeAll(async () => {
    gw = await startFromFile({ pool: POOL_OF_2 });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  function psqlArgs(command: string, user = 'admin'): string[] {
    return ['-X', '-A', '-F', '\t', '-P', 'footer=off', '-d', gw.url(user, 'pgway'), '-c', command];
  }

  function psql(command: string, user = 'admin'): Promise<RunResult> {
    return run('psql', psqlArgs(command, user), { timeoutMs: 20_000 });
  }

  function table(r: RunResult): { columns: string[]; rows: Record<string, string>[] } {
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [header = '', ...lines] = r.stdout.trimEnd().split('\n');
    const columns = header.split('\t');
    return { columns, rows: lines.map((line) => Object.fromEntries(line.split('\t').map((v, i) => [columns[i] ?? `?${i}`, v]))) };
  }

  it("answers SHOW POOLS/CLIENTS/SERVERS/STATS/DATABASES/CONFIG/VERSION with PgBouncer's column names", async () => {
    const app = await connect(gw, 'tp-admin-app');
    await app.query('BEGIN');
    const serverPid = await pidOf(app);
    try {
      const pools = table(await psql('SHOW POOLS'));
      expect(pools.columns).toEqual(expect.arrayContaining(
        ['database', 'user', 'cl_active', 'cl_waiting', 'sv_active', 'sv_idle', 'sv_used', 'sv_login', 'maxwait', 'maxwait_us', 'pool_mode']));
      expect(pools.rows.find((r) => r.database === DB && r.user === 'app')).toMatchObject({ pool_mode: 'transaction', cl_active: '1', sv_active: '1' });

      const clients = table(await psql('SHOW CLIENTS'));
      expect(clients.columns).toEqual(expect.arrayContaining(
        ['type', 'user', 'database', 'state', 'addr', 'port', 'connect_time', 'request_time', 'wait', 'wait_us', 'link', 'remote_pid', 'tls', 'application_name', 'prepared_statements', 'id']));
      expect(clients.rows.find((r) => r.application_name === 'tp-admin-app')).toMatchObject({ type: 'C', user: 'app', database: DB, state: 'active' });

      const servers = table(await psql('SHOW SERVERS'));
      expect(servers.columns).toEqual(expect.arrayContaining(
        ['type', 'user', 'database', 'state', 'addr', 'port', 'connect_time', 'request_time', 'link', 'remote_pid', 'tls', 'prepared_statements', 'id']));
      expect(servers.rows.find((r) => r.remote_pid === String(serverPid))).toMatchObject({ type: 'S', user: 'app', database: DB, state: 'active' });

      const stats = table(await psql('SHOW STATS'));
      expect(stats.columns).toEqual(expect.arrayContaining(
        ['database', 'total_xact_count', 'total_query_count', 'total_received', 'total_sent', 'total_xact_time', 'total_query_time', 'total_wait_time', 'avg_xact_time', 'avg_query_time']));
      expect(Number(stats.rows.find((r) => r.database === DB)?.total_query_count)).toBeGreaterThan(0);

      const databases = table(await psql('SHOW DATABASES'));
      expect(databases.columns).toEqual(expect.arrayContaining(
        ['name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool', 'server_lifetime', 'pool_mode', 'max_connections', 'current_connections', 'paused', 'disabled']));
      expect(databases.rows.find((r) => r.name === DB)).toMatchObject({ database: DB, pool_size: '2', pool_mode: 'transaction' });

      const config = table(await psql('SHOW CONFIG'));
      expect(config.columns).toEqual(['key', 'value', 'default', 'changeable']);
      expect(config.rows.length).toBeGreaterThan(0);

      const version = table(await psql('SHOW VERSION'));
      expect(version.columns).toEqual(['version']);
      expect(version.rows[0]?.version).toMatch(/\d+\.\d+/);
    } finally {
      await app.query('COMMIT');
    }
  });

  it('refuses a user without admin rights with 28000', async () => {
    const r = await psql('SHOW POOLS', 'app');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/FATAL/);
    expect(r.stdout).toBe('');
    const client = new pg.Client({ connectionString: gw.url('app', 'pgway') });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toMatchObject({ code: '28000', severity: 'FATAL' });
  });

  it('answers an extended-protocol statement with 0A000 and keeps the console usable', async () => {
    // postgres.js sends every tagged query as Parse/Bind/Describe/Execute/Sync; .simple() as a Query.
    const sql = postgres(gw.url('admin', 'pgway'), { max: 1, fetch_types: false, onnotice: () => undefined });
    try {
      await expect(sql`SHOW VERSION`).rejects.toMatchObject({ code: '0A000', message: expect.stringMatching(/simple query protocol/) });
      const rows = await sql`SHOW VERSION`.simple();
      expect(rows[0]?.version).toMatch(/\d+\.\d+/);
      const pools = await sql`SHOW POOLS`.simple();
      expect(pools.some((r) => r.database === DB)).toBe(true);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });

  it('PAUSE returns after the open transaction commits; a query sent during the pause waits and runs after RESUME', async () => {
    const a = await connect(gw, 'tp-pause-a');
    await a.query('BEGIN');
    await a.query("INSERT INTO tp_fault_rows VALUES ('across-pause')");

    const pausing = start('psql', psqlArgs('PAUSE'), { timeoutMs: 20_000 });
    let pauseReturned = false;
    void pausing.result.then(() => { pauseReturned = true; });
    await waitFor('the pool to be paused', () => gw.gateway.pools().some((p) => p.database === DB && p.paused));
    expect(pauseReturned).toBe(false); // a's transaction is still open

    const b = await connect(gw, 'tp-pause-b');
    let bSettled = false;
    const waiting = b.query<{ n: number }>('SELECT 1 AS n');
    void waiting.then(() => { bSettled = true; }, () => { bSettled = true; });
    await waitFor('b to wait for a server connection', () => gw.gateway.clients().some((c) => c.state === 'waiting'));
    expect(bSettled).toBe(false);

    await a.query("INSERT INTO tp_fault_rows VALUES ('across-pause')");
    await a.query('COMMIT');
    const paused = await pausing.result;
    expect(paused.stderr).toBe('');
    expect(paused.code).toBe(0);
    expect(await committedRows('across-pause')).toBe(2);
    expect(bSettled).toBe(false); // still paused: waiting, not failed

    const resumed = await psql('RESUME');
    expect(resumed.code).toBe(0);
    expect((await waiting).rows).toEqual([{ n: 1 }]);
    expect((await a.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  });

  it('RELOAD re-reads the config file and refuses a broken one with an error, keeping the old config', async () => {
    const ok = await psql('RELOAD');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/RELOAD/);

    const good = configYaml({ pool: POOL_OF_2 });
    try {
      writeFileSync(gw.file, configYaml({ pool: '{ mode: transaction, size: -1 }' }));
      const refused = await psql('RELOAD');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/config not reloaded/);
      expect(table(await psql('SHOW DATABASES')).rows.find((r) => r.name === DB)?.pool_size).toBe('2');

      writeFileSync(gw.file, configYaml({ pool: '{ mode: transaction, size: 4, query_wait_timeout_ms: 5000 }' }));
      expect((await psql('RELOAD')).code).toBe(0);
      expect(table(await psql('SHOW DATABASES')).rows.find((r) => r.name === DB)?.pool_size).toBe('4');
    } finally {
      writeFileSync(gw.file, good);
      await gw.gateway.reload();
    }
    const app = await connect(gw, 'tp-after-reload');
    expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it("KILL disconnects the database's clients and leaves the console working", async () => {
    const idle = await connect(gw, 'tp-kill-idle');
    const busy = await connect(gw, 'tp-kill-busy');
    await busy.query('BEGIN');
    await busy.query("INSERT INTO tp_fault_rows VALUES ('killed')");

    const killed = await psql(`KILL ${DB}`);
    expect(killed.stderr).toBe('');
    expect(killed.code).toBe(0);
    await waitFor('both app clients to be disconnected', () => endedClients.has(idle) && endedClients.has(busy));
    await expect(idle.query('SELECT 1')).rejects.toThrow();
    expect(await committedRows('killed')).toBe(0);

    expect(table(await psql('SHOW POOLS')).columns).toContain('database');
    expect((await psql(`RESUME ${DB}`)).code).toBe(0);
    const fresh = await connect(gw, 'tp-after-kill');
    expect((await fresh.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });
});

// --- pgbench ----------------------------------------------------------------------------------------

describe('pgbench -M prepared, 32 clients over a transaction pool of 8', () => {
  const BENCH_DB = 'bench2';
  let gw: FileGateway;

  beforeAll(async () => {
    const l = lab();
    await adminQuery(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
    await adminQuery(`CREATE DATABASE ${BENCH_DB} OWNER app`);
    // Initialized directly: the run, not the setup, is what goes through pgway.
    const init = await run('pgbench', ['-i', '-s', '1', '-q', '-h', l.primary.host, '-p', String(l.primary.port), '-U', 'app', BENCH_DB], {
      env: { PGPASSWORD: 'app-secret' }, timeoutMs: 60_000,
    });
    if (init.code !== 0) throw new Error(`pgbench -i failed (${init.code}):\n${init.stderr}`);
    gw = await startFromFile({ pool: '{ mode: transaction, size: 8, query_wait_timeout_ms: 10000 }', databases: [BENCH_DB] });
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
    await adminQuery(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
  });

  it('finishes with zero failed transactions, consistent balances and at most 8 server connections', async () => {
    let running = true;
    let maxBackends = 0;
    const sampler = (async () => {
      while (running) {
        maxBackends = Math.max(maxBackends, await backends("usename = 'app'", BENCH_DB));
        await sleep(100);
      }
    })();
    let r: RunResult;
    try {
      r = await run('pgbench', ['-M', 'prepared', '-c', '32', '-j', '2', '-T', '5', '-h', gw.host, '-p', String(gw.port), '-U', 'app', BENCH_DB], {
        env: { PGPASSWORD: 'app-secret' }, timeoutMs: 60_000,
      });
    } finally {
      running = false;
      await sampler;
    }
    expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/aborted|error/i);
    expect(r.code).toBe(0);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? -1);
    const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
    expect(processed).toBeGreaterThan(0);
    expect(failed?.[1]).toBe('0');
    expect(maxBackends).toBeGreaterThan(0);
    expect(maxBackends).toBeLessThanOrEqual(8);

    const sums = await adminQuery<{ history: string; accounts: string; branches: string; tellers: string; rows: string }>(
      `SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AS history, (SELECT sum(abalance) FROM pgbench_accounts) AS accounts,
              (SELECT sum(bbalance) FROM pgbench_branches) AS branches, (SELECT sum(tbalance) FROM pgbench_tellers) AS tellers,
              (SELECT count(*) FROM pgbench_history) AS rows`, [], 'primary', BENCH_DB);
    const s = sums.rows[0]!;
    expect([s.accounts, s.branches, s.tellers]).toEqual([s.history, s.history, s.history]);
    expect(Number(s.rows)).toBe(processed);
  }, 90_000);
});

// --- HTTP ---------------------------------------------------------------------------------------------

describe('HTTP endpoint', () => {
  let gw: FileGateway;
  let base: string;

  beforeAll(async () => {
    gw = await startFromFile({ pool: POOL_OF_2, http: true });
    expect(gw.httpPort).toBeGreaterThan(0);
    base = `http://127.0.0.1:${gw.httpPort}`;
  });

  afterAll(async () => {
    await gw?.stop();
  });

  const sample = (text: string, series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('answers /healthz and /readyz with 200', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('exports connection gauges, wait and query histograms, and server errors by SQLSTATE', async () => {
    const divisionByZero = 'pgway_errors_total{source="server",sqlstate="22012"}';
    const before = sample(await (await fetch(`${base}/metrics`)).text(), divisionByZero) ?? 0;

    const client = await connect(gw, 'tp-metrics');
    expect((await client.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    // PostgreSQL flushes an ErrorResponse on its own, so pg rejects before pgway has read the
    // ReadyForQuery that frees the server connection; a result comes with its ReadyForQuery.
    expect((await client.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const pool = `${DB}/app`;
    // On failure, show the pgway_ series that were scraped.
    const scraped = text.split('\n').filter((l) => l.startsWith('pgway_') && !l.includes('_bucket')).join('\n');
    expect(text, scraped).toMatch(/^pgway_client_connections\{state="idle"\} [1-9]/m);
    expect(sample(text, `pgway_server_connections{pool="${pool}",state="idle"}`), scraped).toBeGreaterThanOrEqual(1);
    expect(sample(text, `pgway_pool_wait_seconds_count{pool="${pool}"}`), scraped).toBeGreaterThanOrEqual(1);
    const queries = sample(text, `pgway_query_duration_seconds_count{pool="${pool}"}`);
    expect(queries, scraped).toBeGreaterThanOrEqual(2);
    // Buckets are cumulative and the last one holds every observation.
    expect(sample(text, `pgway_query_duration_seconds_bucket{pool="${pool}",le="+Inf"}`)).toBe(queries);
    expect(sample(text, `pgway_query_duration_seconds_bucket{pool="${pool}",le="0.001"}`)).toBeLessThanOrEqual(queries!);
    expect(sample(text, `pgway_query_duration_seconds_sum{pool="${pool}"}`)).toBeGreaterThan(0);
    expect(text).toMatch(/^# TYPE pgway_transaction_duration_seconds histogram$/m);
    expect(sample(text, divisionByZero), scraped).toBe(before + 1);
  });
});

describe('metrics across a RELOAD that replaces a pool', () => {
  let gw: FileGateway;

  beforeAll(async () => {
    gw = await startFromFile({ pool: POOL_OF_2, http: true });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('keeps counting where the old pool stopped: histograms and SHOW STATS never go backwards', async () => {
    const pool = `${DB}/app`;
    const series = `pgway_query_duration_seconds_count{pool="${pool}"}`;
    const scrape = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    const client = await connect(gw, 'tp-metrics-reload');
    for (let i = 0; i < 5; i++) await client.query('SELECT 1');
    const before = await scrape();
    expect(before).toBeGreaterThanOrEqual(5);

    // New server credentials for app: the pool is replaced by one that logs in as the superuser.
    writeFileSync(gw.file, configYaml({ pool: POOL_OF_2, http: true, appAsSuperuser: true }));
    await gw.gateway.reload();
    expect((await client.query<{ who: string }>('SELECT current_user AS who')).rows).toEqual([{ who: 'postgres' }]);

    expect(await scrape()).toBe(before + 1);
    const stats = gw.gateway.pools().find((p) => p.database === DB && p.user === 'app')!.counters;
    expect(stats.requests).toBe(before + 1);
  });
});
