// Transaction pooling as an application sees it. The compatibility tests run four or more clients
// over a pool of 2, and where it matters force a client's next statement onto the other server
// connection (see onAnotherConnection), so a pass cannot come from a client getting its own
// connection back. Expectations are what the same code observes on a direct connection, except
// where a comment says pgway promises more.
import net from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { cancelRequestPacket, cstring, dataRowValues, errorFields, rawTrustLogin, typedMessage } from './helpers/raw-client.js';
import { bothConnectionsUsable, errorOf, onAnotherConnection, onConnection, pidOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';

const TRANSACTION_POOL_OF_2 = '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: TRANSACTION_POOL_OF_2 });
  await adminQuery('DROP TABLE IF EXISTS tp_pids, tp_ddl, tp_cancel, tp_statement_mode');
  await adminQuery('CREATE TABLE tp_pids (client int, tx int, pid int, PRIMARY KEY (client, tx))');
  await adminQuery('CREATE TABLE tp_ddl (a int)');
  await adminQuery('INSERT INTO tp_ddl VALUES (1)');
  await adminQuery('CREATE TABLE tp_cancel (tag text)');
  await adminQuery('CREATE TABLE tp_statement_mode (tag text)');
  await adminQuery('GRANT ALL ON tp_pids, tp_ddl, tp_cancel, tp_statement_mode TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS tp_pids, tp_ddl, tp_cancel, tp_statement_mode');
});

// --- helpers ---------------------------------------------------------------------------------------

/** Every pg client a test opened; closed after each test whatever happened. */
const opened: pg.Client[] = [];
/** Errors a client emitted outside a query (a FATAL from pgway, a dropped connection). */
const asyncErrors = new Map<pg.Client, Error[]>();

afterEach(async () => {
  await Promise.all(opened.splice(0).map(endQuietly));
});

async function connect(target: TestGateway, config: Omit<pg.ClientConfig, 'connectionString'> = {}, user = 'app'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url(user), ...config });
  const errors: Error[] = [];
  client.on('error', (err) => errors.push(err));
  asyncErrors.set(client, errors);
  opened.push(client);
  await client.connect();
  return client;
}

function connectMany(target: TestGateway, n: number, user = 'app', prefix = 'tp'): Promise<pg.Client[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => connect(target, { application_name: `${prefix}-${i}` }, user)));
}

/** end(), bounded: a client whose socket is gone may never see the end it waits for. */
async function endQuietly(client: pg.Client): Promise<void> {
  await Promise.race([client.end().catch(() => undefined), sleep(2000)]);
}






/** The server pid running a statement whose text contains `marker` (seen directly, not through pgway). */
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

/** Sends a CancelRequest for (pid, secret) to pgway on its own socket, as libpq does. */
function sendCancel(target: TestGateway, pid: number, secret: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port }, () => socket.end(cancelRequestPacket(pid, secret)));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

/** What pg's Client keeps from BackendKeyData; @types/pg does not declare it. */
function backendKey(client: pg.Client): { processID: number; secretKey: number } {
  return client as unknown as { processID: number; secretKey: number };
}

/** Keeps the pool busy: each client alternates transactions and single statements running `sql`, each row passed to `check`. */
async function churn(clients: pg.Client[], rounds: number, check?: (row: Record<string, unknown>) => void, sql = 'SELECT pg_backend_pid() AS pid'): Promise<void> {
  await Promise.all(clients.map(async (c) => {
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        await c.query('BEGIN');
        const { rows } = await c.query<Record<string, unknown>>(sql);
        await c.query('COMMIT');
        check?.(rows[0]!);
      } else {
        const { rows } = await c.query<Record<string, unknown>>(sql);
        check?.(rows[0]!);
      }
    }
  }));
}

// --- many clients ------------------------------------------------------------------------------------

describe('200 clients over a pool of 10', () => {
  const DB = 'tp_many';
  let gateway: Gateway;
  let url: string;

  beforeAll(async () => {
    const l = lab();
    await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
    await adminQuery('CREATE TABLE tp_log (client int, round int, how text, PRIMARY KEY (client, round))', [], 'primary', DB);
    await adminQuery('CREATE TABLE tp_accounts (id int PRIMARY KEY, balance int NOT NULL)', [], 'primary', DB);
    await adminQuery('INSERT INTO tp_accounts SELECT g, 0 FROM generate_series(0, 9) g', [], 'primary', DB);
    await adminQuery('GRANT ALL ON tp_log, tp_accounts TO app', [], 'primary', DB);
    // Its own database, so pg_stat_activity shows exactly pgway's server connections.
    const yaml = `
listen: { host: 127.0.0.1, port: 0 }
http: { enabled: false }
log: { level: warn }
auth:
  users:
    - { name: app, password: app-secret }
pool: { mode: transaction, size: 10, query_wait_timeout_ms: 20000 }
databases:
  ${DB}:
    primary: { host: ${l.primary.host}, port: ${l.primary.port}, dbname: ${DB}, sslmode: disable }
`;
    gateway = new Gateway(parseConfig(yaml, 'tp-many.yaml'), pino({ level: 'warn' }));
    const address = await gateway.start();
    url = `postgres://app:app-secret@${address.host}:${address.port}/${DB}`;
  });

  afterAll(async () => {
    await gateway?.shutdown(200);
    await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  });

  it('runs mixed transactions from 200 clients correctly and never opens more than 10 server connections', async () => {
    const CLIENTS = 200;
    const ROUNDS = 5;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, async () => {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => undefined);
      opened.push(client);
      await client.connect();
      return client;
    }));

    let working = true;
    let maxServerBackends = 0;
    let maxPoolConnections = 0;
    const sampler = (async () => {
      while (working) {
        const r = await adminQuery<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = 'app' AND backend_type = 'client backend'", [DB]);
        maxServerBackends = Math.max(maxServerBackends, r.rows[0]!.n);
        for (const p of gateway.pools()) maxPoolConnections = Math.max(maxPoolConnections, p.serversActive + p.serversUsed + p.serversIdle + p.serversLogin);
        await sleep(50);
      }
    })();

    // kind 0: committed transaction; 1: rolled back; 2: autocommit insert (simple protocol);
    // 3: autocommit update; 4: transaction that fails and rolls back.
    const kindOf = (client: number, round: number): number => (client + round) % 5;
    try {
      await Promise.all(clients.map(async (c, i) => {
        let mine = 0; // this client's committed log rows so far
        for (let round = 0; round < ROUNDS; round++) {
          switch (kindOf(i, round)) {
            case 0: {
              await c.query('BEGIN');
              await c.query('INSERT INTO tp_log VALUES ($1, $2, $3)', [i, round, 'tx']);
              await c.query('UPDATE tp_accounts SET balance = balance + 1 WHERE id = $1', [i % 10]);
              const seen = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM tp_log WHERE client = $1', [i]);
              expect(seen.rows[0]!.n).toBe(mine + 1); // its own uncommitted insert: same backend
              await c.query('COMMIT');
              mine++;
              break;
            }
            case 1: {
              await c.query('BEGIN');
              await c.query('INSERT INTO tp_log VALUES ($1, $2, $3)', [i, round, 'rolled-back']);
              await c.query('UPDATE tp_accounts SET balance = balance + 1000 WHERE id = $1', [i % 10]);
              await c.query('ROLLBACK');
              break;
            }
            case 2:
              await c.query(`INSERT INTO tp_log VALUES (${i}, ${round}, 'auto')`);
              mine++;
              break;
            case 3: {
              const r = await c.query('UPDATE tp_accounts SET balance = balance + 1 WHERE id = $1', [i % 10]);
              expect(r.rowCount).toBe(1);
              break;
            }
            default: {
              await c.query('BEGIN');
              await c.query('INSERT INTO tp_log VALUES ($1, $2, $3)', [i, round, 'failed']);
              await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
              await c.query('ROLLBACK');
            }
          }
        }
      }));
    } finally {
      working = false;
      await sampler;
    }

    const expectedLog: string[] = [];
    const expectedBalance = new Array<number>(10).fill(0);
    for (let i = 0; i < CLIENTS; i++) {
      for (let round = 0; round < ROUNDS; round++) {
        const kind = kindOf(i, round);
        if (kind === 0) expectedLog.push(`${i}/${round}/tx`);
        if (kind === 2) expectedLog.push(`${i}/${round}/auto`);
        if (kind === 0 || kind === 3) expectedBalance[i % 10]!++;
      }
    }
    const log = await adminQuery<{ k: string }>("SELECT client || '/' || round || '/' || how AS k FROM tp_log", [], 'primary', DB);
    expect(log.rows.map((r) => r.k).sort()).toEqual(expectedLog.sort());
    const balances = await adminQuery<{ balance: number }>('SELECT balance FROM tp_accounts ORDER BY id', [], 'primary', DB);
    expect(balances.rows.map((r) => r.balance)).toEqual(expectedBalance);

    expect(maxServerBackends).toBeGreaterThan(0);
    expect(maxServerBackends).toBeLessThanOrEqual(10);
    expect(maxPoolConnections).toBeLessThanOrEqual(10);
    const after = await adminQuery<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", [DB]);
    expect(after.rows[0]!.n).toBeLessThanOrEqual(10);
  }, 120_000);
});

// --- one backend per transaction --------------------------------------------------------------------

describe('server connections per transaction', () => {
  it("runs all of a transaction on one backend, and a client's next transaction on another", async () => {
    const clients = await connectMany(gw, 4);
    const TXS = 10;
    const seenInTx = new Map<string, number>();
    await Promise.all(clients.map(async (c, i) => {
      for (let t = 0; t < TXS; t++) {
        await c.query('BEGIN');
        const first = await pidOf(c);
        await c.query('INSERT INTO tp_pids VALUES ($1, $2, pg_backend_pid())', [i, t]);
        await c.query('SELECT pg_sleep(0.002)');
        const last = await pidOf(c);
        await c.query('COMMIT');
        expect(last).toBe(first);
        seenInTx.set(`${i}/${t}`, first);
      }
    }));
    // The INSERT ran on the backend the transaction's SELECTs saw.
    const recorded = await adminQuery<{ k: string; pid: number }>("SELECT client || '/' || tx AS k, pid FROM tp_pids");
    expect(new Map(recorded.rows.map((r) => [r.k, r.pid]))).toEqual(seenInTx);
    expect(new Set(seenInTx.values()).size).toBeLessThanOrEqual(2);

    const [a, b, c] = clients as [pg.Client, pg.Client, pg.Client, pg.Client];
    const before = await pidOf(a);
    const after = await onAnotherConnection(before, [b, c], () => pidOf(a));
    expect(after).not.toBe(before);
  });
});

// --- named prepared statements ------------------------------------------------------------------------

describe('named prepared statements (protocol level)', () => {
  it('serves pg named statements from 4 clients, hundreds of executions, also on a connection that never saw the Parse', async () => {
    const clients = await connectMany(gw, 4);
    await Promise.all(clients.map(async (c, i) => {
      // Two clients per statement name: the same SQL under different client names shares one server statement.
      const sumName = `tp-sum-${i % 2}`;
      for (let k = 0; k < 100; k++) {
        if (k % 10 === 9) {
          await c.query('BEGIN');
          const r1 = await c.query<{ v: number }>({ name: sumName, text: 'SELECT $1::int + $2::int AS v', values: [i, k] });
          const r2 = await c.query<{ v: string }>({ name: 'tp-concat', text: "SELECT $1::text || ':' || $2::text AS v", values: [`c${i}`, k] });
          await c.query('COMMIT');
          expect([r1.rows, r2.rows]).toEqual([[{ v: i + k }], [{ v: `c${i}:${k}` }]]);
        } else if (k % 2 === 0) {
          const r = await c.query<{ v: number }>({ name: sumName, text: 'SELECT $1::int + $2::int AS v', values: [i, k] });
          expect(r.rows).toEqual([{ v: i + k }]);
        } else {
          const r = await c.query<{ v: string }>({ name: 'tp-concat', text: "SELECT $1::text || ':' || $2::text AS v", values: [`c${i}`, k] });
          expect(r.rows).toEqual([{ v: `c${i}:${k}` }]);
        }
      }
    }));

    const [a, b, c] = clients as [pg.Client, pg.Client, pg.Client, pg.Client];
    const fresh = { name: 'tp-rotated', text: 'SELECT $1::int * 7 AS v, pg_backend_pid() AS pid' };
    const first = await a.query<{ v: number; pid: number }>({ ...fresh, values: [6] });
    expect(first.rows[0]!.v).toBe(42);
    const elsewhere = await onAnotherConnection(first.rows[0]!.pid, [b, c], () => a.query<{ v: number; pid: number }>({ ...fresh, values: [3] }));
    expect(elsewhere.rows[0]!.v).toBe(21);
    expect(elsewhere.rows[0]!.pid).not.toBe(first.rows[0]!.pid);
  });

  it('serves postgres.js (prepare: true) from 4 clients, pipelined, in and out of transactions', async () => {
    const sqls = Array.from({ length: 4 }, () => postgres(gw.url(), { max: 1, onnotice: () => undefined, connect_timeout: 10 }));
    try {
      await Promise.all(sqls.map(async (sql, i) => {
        for (let batch = 0; batch < 10; batch++) {
          const results = await Promise.all(Array.from({ length: 20 }, (_, k) => {
            const n = batch * 20 + k;
            switch (n % 4) {
              case 0: return sql<{ v: number }[]>`SELECT ${n}::int + ${i}::int AS v`.then((r) => r[0]!.v === n + i);
              case 1: return sql<{ v: string }[]>`SELECT ${`s${n}`}::text || ${i}::text AS v`.then((r) => r[0]!.v === `s${n}${i}`);
              case 2: return sql<{ v: number }[]>`SELECT count(*)::int AS v FROM generate_series(1, ${n}::int)`.then((r) => r[0]!.v === n);
              default: return sql.begin(async (tx) => {
                const [row] = await tx<{ v: number }[]>`SELECT ${n}::int * 2 AS v`;
                const [again] = await tx<{ v: number }[]>`SELECT ${n}::int + ${i}::int AS v`;
                return row!.v === n * 2 && again!.v === n + i;
              });
            }
          }));
          expect(results.every(Boolean)).toBe(true);
        }
      }));

      const [b, c] = await connectMany(gw, 2);
      const sql = sqls[0]!;
      const [before] = await sql<{ v: number; pid: number }[]>`SELECT ${5}::int AS v, pg_backend_pid() AS pid`;
      const [after] = await onAnotherConnection(before!.pid, [b!, c!], () => sql<{ v: number; pid: number }[]>`SELECT ${6}::int AS v, pg_backend_pid() AS pid`);
      expect([before!.v, after!.v]).toEqual([5, 6]);
      expect(after!.pid).not.toBe(before!.pid);
    } finally {
      await Promise.all(sqls.map((sql) => sql.end()));
    }
  });

  it('keeps working with max_prepared_statements: 3 and 10 distinct statements (LRU eviction)', async () => {
    const small = await startGateway({ pool: '{ mode: transaction, size: 2, max_prepared_statements: 3, query_wait_timeout_ms: 5000 }' });
    try {
      const clients = await connectMany(small, 4);
      await Promise.all(clients.map(async (c, i) => {
        for (let round = 0; round < 5; round++) {
          for (let s = 0; s < 10; s++) {
            const k = (s * 3 + i + round) % 10; // each client walks the ten in its own order
            const text = `SELECT $1::int + ${k} AS v`;
            if (s % 4 === 3) {
              await c.query('BEGIN');
              const r = await c.query<{ v: number }>({ name: `tp-lru-${k}`, text, values: [round] });
              const again = await c.query<{ v: number }>({ name: `tp-lru-${(k + 1) % 10}`, text: `SELECT $1::int + ${(k + 1) % 10} AS v`, values: [round] });
              await c.query('COMMIT');
              expect([r.rows[0]!.v, again.rows[0]!.v]).toEqual([round + k, round + ((k + 1) % 10)]);
            } else {
              const r = await c.query<{ v: number }>({ name: `tp-lru-${k}`, text, values: [round] });
              expect(r.rows).toEqual([{ v: round + k }]);
            }
          }
        }
      }));
      // postgres.js pipelines all ten at once on one connection.
      const sql = postgres(small.url(), { max: 1, onnotice: () => undefined });
      try {
        for (let round = 0; round < 3; round++) {
          const values = await Promise.all(Array.from({ length: 10 }, (_, k) =>
            sql.unsafe<{ v: number }[]>(`SELECT $1::int * 100 + ${k} AS v`, [round], { prepare: true }).then((r) => r[0]!.v)));
          expect(values).toEqual(Array.from({ length: 10 }, (_, k) => round * 100 + k));
        }
      } finally {
        await sql.end();
      }
      for (const server of small.gateway.servers()) expect(server.preparedStatements).toBeLessThanOrEqual(3);
    } finally {
      await Promise.all(opened.splice(0).map(endQuietly));
      await small.stop();
    }
  });

  it("does not break other clients' statement when one client Closes its copy", async () => {
    // All trustuser, so they share one pool; a raw client sends the Close no driver exposes.
    const [b1, b2] = await connectMany(gw, 2, 'trustuser');
    const text = 'SELECT $1::int * 2 AS v';
    const onBothConnections = async (n: number): Promise<void> => {
      await b1!.query('BEGIN');
      await b2!.query('BEGIN');
      const r1 = await b1!.query<{ v: number }>({ name: 'tp-close', text, values: [n] });
      const r2 = await b2!.query<{ v: number }>({ name: 'tp-close', text, values: [n + 1] });
      await Promise.all([b1!.query('COMMIT'), b2!.query('COMMIT')]);
      expect([r1.rows, r2.rows]).toEqual([[{ v: n * 2 }], [{ v: (n + 1) * 2 }]]);
    };
    await onBothConnections(1);

    const { client: raw } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    try {
      const sync = typedMessage('S');
      const bind = (value: string): Buffer => typedMessage('B', Buffer.concat([
        cstring(''), cstring('raw_stmt'), int16(0), int16(1), int32(Buffer.byteLength(value)), Buffer.from(value), int16(0),
      ]));
      const execute = typedMessage('E', Buffer.concat([cstring(''), int32(0)]));
      raw.write(Buffer.concat([typedMessage('P', Buffer.concat([cstring('raw_stmt'), cstring(text), int16(0)])), bind('21'), execute, sync]));
      const run = await raw.readUntil('Z');
      // ParameterStatus may come at any time; what it reports must be this client's own values.
      for (const m of run.before.filter((m) => m.type === 'S')) {
        const [name, value] = m.body.toString('utf8').split('\0');
        if (name === 'application_name') expect(value).toBe('');
      }
      const answers = run.before.filter((m) => m.type !== 'S');
      expect(answers.map((m) => m.type)).toEqual(['1', '2', 'D', 'C']);
      expect(dataRowValues(answers[2]!.body)).toEqual(['42']);

      raw.write(Buffer.concat([typedMessage('C', Buffer.concat([Buffer.from('S'), cstring('raw_stmt')])), sync]));
      const closed = await raw.readUntil('Z');
      expect(closed.before.filter((m) => m.type !== 'S').map((m) => m.type)).toEqual(['3']);

      // As on a direct connection, the closed name is gone for this client...
      raw.write(Buffer.concat([bind('1'), execute, sync]));
      const gone = (await raw.readUntil('Z')).before.filter((m) => m.type !== 'S');
      expect(gone.map((m) => m.type)).toEqual(['E']);
      expect(errorFields(gone[0]!.body).get('C')).toBe('26000');
    } finally {
      raw.destroy();
    }
    // ...and everyone else's statement with the same SQL still works on both connections.
    await onBothConnections(10);
  });

  it("DDL that changes a prepared statement's result: refused at each run for clients that prepared it before, on every connection", async () => {
    const [a, b, c, d] = await connectMany(gw, 4);
    const stmt = { name: 'tp-ddl', text: 'SELECT pg_backend_pid() AS pid, * FROM tp_ddl' };
    const sql = postgres(gw.url(), { max: 1, onnotice: () => undefined });
    type DdlRow = { pid: number; a: number; b?: number };
    try {
      // Prepared on both server connections before the DDL.
      await a!.query('BEGIN');
      await b!.query('BEGIN');
      const before = [(await a!.query<DdlRow>(stmt)).rows[0]!, (await b!.query<DdlRow>(stmt)).rows[0]!];
      await Promise.all([a!.query('COMMIT'), b!.query('COMMIT')]);
      expect(before.map(({ pid: _pid, ...rest }) => rest)).toEqual([{ a: 1 }, { a: 1 }]);
      expect(new Set(before.map((r) => r.pid)).size).toBe(2);
      expect([...await sql`SELECT pg_backend_pid() AS pid, * FROM tp_ddl`].map(({ a: v }) => v)).toEqual([1]);

      await adminQuery('ALTER TABLE tp_ddl ADD COLUMN b int DEFAULT 7');
      // As on a direct connection: pg never prepares a named statement again, and PostgreSQL refuses
      // one prepared before the DDL (0A000) at each run while the table has another shape, whichever
      // connection runs it here.
      const shape = ({ pid: _pid, ...rest }: DdlRow): Omit<DdlRow, 'pid'> => rest;
      for (const client of [a!, b!]) {
        for (const pid of before.map((r) => r.pid)) {
          expect(sqlstate(await onConnection(pid, [c!, d!], () => errorOf(client.query(stmt))))).toBe('0A000');
        }
      }
      // A client that prepares it after the DDL runs it, on either connection.
      const [e] = await connectMany(gw, 1);
      for (const pid of before.map((r) => r.pid)) {
        const row = await onConnection(pid, [c!, d!], async () => (await e!.query<DdlRow>(stmt)).rows[0]!);
        expect([row.pid, shape(row)]).toEqual([pid, { a: 1, b: 7 }]);
      }

      // postgres.js re-prepares after this error by itself: on a direct connection the user sees none.
      const [pjFirst] = await sql<DdlRow[]>`SELECT pg_backend_pid() AS pid, * FROM tp_ddl`;
      const [pjElsewhere] = await onAnotherConnection(pjFirst!.pid, [c!, d!], () => sql<DdlRow[]>`SELECT pg_backend_pid() AS pid, * FROM tp_ddl`);
      expect([shape(pjFirst!), shape(pjElsewhere!)]).toEqual([{ a: 1, b: 7 }, { a: 1, b: 7 }]);
    } finally {
      await sql.end();
    }
  });
});

// --- session state ----------------------------------------------------------------------------------

const SETTINGS = `SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout,
  current_setting('application_name') AS application_name, current_setting('myapp.tenant', true) AS tenant, pg_backend_pid() AS pid`;

interface Settings {
  search_path: string;
  statement_timeout: string;
  application_name: string;
  tenant: string | null;
  pid: number;
}

async function settingsOf(client: pg.Client): Promise<Settings> {
  return (await client.query<Settings>(SETTINGS)).rows[0]!;
}

/** A custom GUC a client never set: NULL on a fresh backend, '' on one where some session defined it. */
const NEVER_SET = [null, ''];

describe('session state follows each client', () => {
  // A gateway of its own: these tests see only the state they create.
  let sgw: TestGateway;

  beforeAll(async () => {
    sgw = await startGateway({ pool: TRANSACTION_POOL_OF_2 });
  });

  afterAll(async () => {
    await sgw?.stop();
  });

  it("keeps each client's SETs through interleaved transactions, and no other client sees them", async () => {
    const clients = await connectMany(sgw, 4, 'app', 'tp-state');
    const bystander = await connect(sgw, { application_name: 'tp-state-bystander' });
    const mine = (i: number): Omit<Settings, 'pid'> => ({
      search_path: `tenant_${i}, public`, statement_timeout: `${10 + i}s`, application_name: `tp-set-${i}`, tenant: `tenant-${i}`,
    });
    for (const [i, c] of clients.entries()) {
      await c.query(`SET search_path = tenant_${i}, public`);
      await c.query(`SET statement_timeout = '${10 + i}s'`);
      await c.query(`SET application_name = 'tp-set-${i}'`);
      await c.query(`SET myapp.tenant = 'tenant-${i}'`);
    }
    await Promise.all([
      ...clients.map(async (c, i) => {
        for (let round = 0; round < 12; round++) {
          if (round % 2 === 0) await c.query('BEGIN');
          const { pid: _pid, ...now } = await settingsOf(c);
          if (round % 2 === 0) await c.query('COMMIT');
          expect(now).toEqual(mine(i));
        }
      }),
      (async () => {
        for (let round = 0; round < 12; round++) {
          const { pid: _pid, tenant, ...now } = await settingsOf(bystander);
          expect(now).toEqual({ search_path: '"$user", public', statement_timeout: '0', application_name: 'tp-state-bystander' });
          expect(NEVER_SET).toContain(tenant);
        }
      })(),
    ]);

    const [a, b, c] = clients as [pg.Client, pg.Client, pg.Client, pg.Client];
    const before = await settingsOf(a);
    const after = await onAnotherConnection(before.pid, [b, c], () => settingsOf(a));
    expect(after.pid).not.toBe(before.pid);
    expect({ ...after, pid: 0 }).toEqual({ ...mine(0), pid: 0 });
  });

  it('RESET and RESET ALL restore the startup values, on whichever connection', async () => {
    const a = await connect(sgw, { application_name: 'tp-reset', options: '-c statement_timeout=1234' });
    const b = await connect(sgw, { application_name: 'tp-reset-b', options: '-c statement_timeout=4321' });
    const c = await connect(sgw, { application_name: 'tp-reset-c' });
    await b.query("SET statement_timeout = '7s'; SET myapp.tenant = 'b'");
    await c.query("SET search_path = tp_c_only; SET application_name = 'tp-c-changed'");
    const startup = { search_path: '"$user", public', statement_timeout: '1234ms', application_name: 'tp-reset' };

    const initial = await settingsOf(a);
    expect(initial).toMatchObject(startup);
    await a.query("SET statement_timeout = '5s'; SET search_path = tp_elsewhere; SET application_name = 'tp-reset-changed'; SET myapp.tenant = 'reset-me'");
    const changed = { search_path: 'tp_elsewhere', statement_timeout: '5s', application_name: 'tp-reset-changed', tenant: 'reset-me' };
    let last = await settingsOf(a);
    expect(last).toMatchObject(changed);
    last = await onAnotherConnection(last.pid, [b, c], () => settingsOf(a));
    expect(last).toMatchObject(changed);

    await a.query('RESET statement_timeout');
    last = await onAnotherConnection(last.pid, [b, c], () => settingsOf(a));
    expect(last).toMatchObject({ ...changed, statement_timeout: '1234ms' });

    await a.query('RESET ALL');
    const reset = await settingsOf(a);
    expect(reset).toMatchObject(startup);
    expect(reset.tenant).toBe(''); // a placeholder GUC that was set reads '' after RESET ALL, as on a direct connection
    last = await onAnotherConnection(reset.pid, [b, c], () => settingsOf(a));
    expect(last).toMatchObject({ ...startup, tenant: '' });

    expect(await settingsOf(b)).toMatchObject({ statement_timeout: '7s', tenant: 'b', application_name: 'tp-reset-b' });
    expect(await settingsOf(c)).toMatchObject({ search_path: 'tp_c_only', statement_timeout: '0', application_name: 'tp-c-changed' });
  });

  it('ends SET LOCAL and set_config(..., true) with the transaction', async () => {
    const a = await connect(sgw, { application_name: 'tp-local', options: '-c statement_timeout=1234' });
    const [b, c] = await connectMany(sgw, 2, 'app', 'tp-local-other');
    await b!.query("SET statement_timeout = '3s'");

    await a.query('BEGIN');
    await a.query("SET LOCAL statement_timeout = '9s'");
    await a.query("SELECT set_config('myapp.tenant', 'local-only', true)");
    const inside = await settingsOf(a);
    await a.query('COMMIT');
    expect(inside).toMatchObject({ statement_timeout: '9s', tenant: 'local-only' });
    let last = await settingsOf(a);
    expect(last.statement_timeout).toBe('1234ms');
    expect(NEVER_SET).toContain(last.tenant);
    last = await onAnotherConnection(last.pid, [b!, c!], () => settingsOf(a));
    expect(last.statement_timeout).toBe('1234ms');
    expect(NEVER_SET).toContain(last.tenant);

    expect((await settingsOf(b!)).statement_timeout).toBe('3s');
  });

  it("reports application_name to each driver as that client set it, never another client's value", async () => {
    const reports = { a: [] as string[], b: [] as string[], c: [] as string[] };
    const open = (name: 'a' | 'b'): postgres.Sql => postgres(sgw.url(), {
      max: 1, onnotice: () => undefined, connection: { application_name: `tp-ps-${name}0` },
      onparameter: (key: string, value: string) => {
        if (key === 'application_name') reports[name].push(value);
      },
    });
    const sa = open('a');
    const sb = open('b');
    try {
      const c = await connect(sgw, { application_name: 'tp-ps-c0' });
      c.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
        if (m.parameterName === 'application_name') reports.c.push(m.parameterValue);
      });
      const d = await connect(sgw, { application_name: 'tp-ps-d0' });
      await sa`SET application_name = 'tp-ps-a'`;
      await sb`SET application_name = 'tp-ps-b'`;
      await c.query("SET application_name = 'tp-ps-c'");
      const fromA = reports.a.length;
      const fromB = reports.b.length;
      const fromC = reports.c.length;
      expect(reports.a.at(-1)).toBe('tp-ps-a');
      expect(reports.b.at(-1)).toBe('tp-ps-b');
      expect(reports.c.at(-1)).toBe('tp-ps-c');

      await Promise.all([
        ...[sa, sb].map(async (sql, i) => {
          for (let round = 0; round < 10; round++) {
            const [row] = round % 2 === 0
              ? await sql<{ v: string }[]>`SELECT current_setting('application_name') AS v`
              : await sql.begin((tx) => tx<{ v: string }[]>`SELECT current_setting('application_name') AS v`);
            expect(row!.v).toBe(i === 0 ? 'tp-ps-a' : 'tp-ps-b');
          }
        }),
        churn([c], 10, (row) => expect(row).toEqual({ v: 'tp-ps-c' }), "SELECT current_setting('application_name') AS v"),
        churn([d], 10),
        (async () => {
          for (let round = 0; round < 5; round++) await d.query(`SET application_name = 'tp-ps-d${round}'`);
        })(),
      ]);

      expect(sa.parameters.application_name).toBe('tp-ps-a');
      expect(sb.parameters.application_name).toBe('tp-ps-b');
      expect(new Set(reports.a.slice(fromA - 1))).toEqual(new Set(['tp-ps-a']));
      expect(new Set(reports.b.slice(fromB - 1))).toEqual(new Set(['tp-ps-b']));
      expect(new Set(reports.c.slice(fromC - 1))).toEqual(new Set(['tp-ps-c']));
    } finally {
      await Promise.all([sa.end(), sb.end()]);
    }
  });

  it('keeps a SET whose transaction committed and forgets one whose transaction rolled back', async () => {
    const a = await connect(sgw, { application_name: 'tp-txset', options: '-c statement_timeout=1234' });
    const [b, c] = await connectMany(sgw, 2, 'app', 'tp-txset-other');
    await a.query('BEGIN');
    await a.query("SET statement_timeout = '8s'");
    await a.query('ROLLBACK');
    let last = await settingsOf(a);
    expect(last.statement_timeout).toBe('1234ms');
    last = await onAnotherConnection(last.pid, [b!, c!], () => settingsOf(a));
    expect(last.statement_timeout).toBe('1234ms');

    await a.query('BEGIN');
    await a.query("SET statement_timeout = '6s'");
    await a.query('COMMIT');
    last = await onAnotherConnection(last.pid, [b!, c!], () => settingsOf(a));
    expect(last.statement_timeout).toBe('6s');

    // ROLLBACK TO SAVEPOINT undoes the SETs made since the savepoint.
    await a.query('BEGIN');
    await a.query('SAVEPOINT sp');
    await a.query("SET statement_timeout = '4s'");
    await a.query('ROLLBACK TO SAVEPOINT sp');
    await a.query('COMMIT');
    last = await onAnotherConnection(last.pid, [b!, c!], () => settingsOf(a));
    expect(last.statement_timeout).toBe('6s');

    // A failed transaction ends in ROLLBACK whatever the client sends: its SETs are undone too.
    await a.query('BEGIN');
    await a.query("SET statement_timeout = '2s'");
    await expect(a.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await a.query('COMMIT');
    last = await onAnotherConnection(last.pid, [b!, c!], () => settingsOf(a));
    expect(last.statement_timeout).toBe('6s');
  });

  it("keeps a client's SET made on a connection where another client's statement had failed", async () => {
    const [a, b, c, d] = await connectMany(sgw, 4, 'app', 'tp-after-error');
    await a!.query('BEGIN');
    const failedOn = await pidOf(a!);
    await expect(a!.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await a!.query('ROLLBACK');
    await onConnection(failedOn, [c!, d!], async () => {
      await b!.query("SET statement_timeout = '20s'");
      expect(await pidOf(b!)).toBe(failedOn);
    });
    const elsewhere = await onAnotherConnection(failedOn, [c!, d!], () => settingsOf(b!));
    expect(elsewhere.statement_timeout).toBe('20s');
    expect((await settingsOf(b!)).statement_timeout).toBe('20s');
  });

});

// --- session-scoped state that cannot move: the client keeps its connection -------------------------

describe('state that pins a client to its server connection', () => {
  it('delivers NOTIFY to a LISTENing client while others run transactions, and to nobody else', async () => {
    const listener = await connect(gw, { application_name: 'tp-listener' });
    const [notifier, c, d] = await connectMany(gw, 3, 'app', 'tp-notify');
    const received: string[] = [];
    listener.on('notification', (n) => received.push(`${n.channel}:${n.payload ?? ''}`));
    const strays: string[] = [];
    for (const other of [notifier!, c!, d!]) other.on('notification', (n) => strays.push(`${n.channel}:${n.payload ?? ''}`));

    await listener.query('LISTEN tp_channel');
    const churning = churn([c!, d!], 20);
    for (let k = 0; k < 3; k++) {
      await notifier!.query(`NOTIFY tp_channel, 'pgway-${k}'`);
      expect((await listener.query<{ n: number }>('SELECT $1::int AS n', [k])).rows).toEqual([{ n: k }]);
    }
    await churning;
    await adminQuery("SELECT pg_notify('tp_channel', 'direct')");
    await waitFor('four notifications', () => received.length >= 4);
    expect(received).toEqual(['tp_channel:pgway-0', 'tp_channel:pgway-1', 'tp_channel:pgway-2', 'tp_channel:direct']);
    expect(strays).toEqual([]);

    await listener.end();
    await bothConnectionsUsable(c!, d!);
  });

  it('keeps a session advisory lock across transactions until pg_advisory_unlock', async () => {
    const KEY = 7424201;
    const [a, b, c, d] = await connectMany(gw, 4, 'app', 'tp-lock');
    const held = (await a!.query<{ pid: number }>('SELECT pg_advisory_lock($1::bigint), pg_backend_pid() AS pid', [KEY])).rows[0]!.pid;
    const holders = async (): Promise<number[]> => (await adminQuery<{ pid: number }>(
      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND objsubid = 1 AND granted", [KEY])).rows.map((r) => r.pid);
    expect(await holders()).toEqual([held]);

    await Promise.all([
      churn([c!, d!], 10),
      (async () => {
        for (let t = 0; t < 5; t++) {
          await a!.query('BEGIN');
          const r = await a!.query<{ mine: boolean }>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND objsubid = 1 AND pid = pg_backend_pid()) AS mine", [KEY]);
          await a!.query('COMMIT');
          expect(r.rows).toEqual([{ mine: true }]);
        }
      })(),
    ]);
    await b!.query('BEGIN');
    expect((await b!.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS got', [KEY])).rows).toEqual([{ got: false }]);
    await b!.query('COMMIT');

    expect((await a!.query<{ released: boolean }>('SELECT pg_advisory_unlock($1::bigint) AS released', [KEY])).rows).toEqual([{ released: true }]);
    expect(await holders()).toEqual([]);
    await b!.query('BEGIN');
    expect((await b!.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS got', [KEY])).rows).toEqual([{ got: true }]);
    await b!.query('COMMIT');
    // Session locks nest, so one unlock need not free the connection; leaving does.
    await endQuietly(a!);
    await bothConnectionsUsable(c!, d!);
  });

  it('keeps a temporary table for its client in later transactions, invisible to others', async () => {
    const [a, b, c, d] = await connectMany(gw, 4, 'app', 'tp-temp');
    await a!.query('CREATE TEMP TABLE tp_tmp (x int)');
    await a!.query('INSERT INTO tp_tmp VALUES (1), (2)');
    await Promise.all([
      churn([c!, d!], 10),
      churn([b!], 6, (row) => expect(row).toEqual({ t: null }), "SELECT to_regclass('pg_temp.tp_tmp')::text AS t"),
      (async () => {
        for (let t = 0; t < 5; t++) {
          await a!.query('BEGIN');
          await a!.query('INSERT INTO tp_tmp VALUES ($1)', [10 + t]);
          const r = await a!.query<{ n: number }>('SELECT count(*)::int AS n FROM tp_tmp');
          await a!.query('COMMIT');
          expect(r.rows).toEqual([{ n: 3 + t }]);
        }
      })(),
    ]);
    expect((await a!.query<{ n: number }>('SELECT count(*)::int AS n FROM tp_tmp')).rows).toEqual([{ n: 7 }]);
    await a!.query('DROP TABLE tp_tmp');
    await endQuietly(a!);
    await bothConnectionsUsable(c!, d!);
  });

  it('keeps a WITH HOLD cursor usable after COMMIT, for its client only', async () => {
    const [a, b, c, d] = await connectMany(gw, 4, 'app', 'tp-cursor');
    await a!.query('BEGIN');
    await a!.query('DECLARE tp_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g');
    await a!.query('COMMIT');
    await churn([b!, c!, d!], 6);
    expect((await a!.query<{ g: number }>('FETCH 3 FROM tp_cur')).rows).toEqual([{ g: 1 }, { g: 2 }, { g: 3 }]);
    await churn([b!, c!, d!], 6);
    await expect(b!.query('FETCH 1 FROM tp_cur')).rejects.toMatchObject({ code: '34000' });
    expect((await a!.query<{ g: number }>('FETCH 3 FROM tp_cur')).rows).toEqual([{ g: 4 }, { g: 5 }, { g: 6 }]);
    await a!.query('CLOSE tp_cur');
    await endQuietly(a!);
    await bothConnectionsUsable(c!, d!);
  });

  it('keeps SET SESSION AUTHORIZATION for its client only, until RESET', async () => {
    // admin logs in to PostgreSQL as the superuser (server_user postgres): only a superuser may do this.
    const [a, b, c, d] = await connectMany(gw, 4, 'admin', 'tp-auth');
    const whoSql = 'SELECT session_user::text AS session_user, current_user::text AS current_user';
    await a!.query('SET SESSION AUTHORIZATION app');
    expect((await a!.query(whoSql)).rows).toEqual([{ session_user: 'app', current_user: 'app' }]);
    await Promise.all([
      churn([b!, c!, d!], 8, (row) => expect(row).toEqual({ session_user: 'postgres', current_user: 'postgres' }), whoSql),
      (async () => {
        for (let t = 0; t < 5; t++) {
          await a!.query('BEGIN');
          const r = await a!.query(whoSql);
          await a!.query('COMMIT');
          expect(r.rows).toEqual([{ session_user: 'app', current_user: 'app' }]);
        }
      })(),
    ]);
    await a!.query('RESET SESSION AUTHORIZATION');
    expect((await a!.query(whoSql)).rows).toEqual([{ session_user: 'postgres', current_user: 'postgres' }]);
    await churn([a!, b!], 4, (row) => expect(row).toEqual({ session_user: 'postgres', current_user: 'postgres' }), whoSql);
    await bothConnectionsUsable(c!, d!);
  });
});

// --- SQL-level PREPARE / EXECUTE ------------------------------------------------------------------

describe('SQL-level PREPARE, EXECUTE and DEALLOCATE', () => {
  it("executes a client's prepared statement on any connection, separately from other clients' same name", async () => {
    const [a, b, c, d] = await connectMany(gw, 4, 'app', 'tp-sqlprep');
    await a!.query('PREPARE tp_p(int) AS SELECT $1 + 1 AS v');
    const first = await pidOf(a!);
    const elsewhere = await onAnotherConnection(first, [c!, d!], async () => {
      const r = await a!.query<{ v: number }>('EXECUTE tp_p(41)');
      return { v: r.rows[0]!.v, pid: await pidOf(a!) };
    });
    expect(elsewhere.v).toBe(42);
    expect(elsewhere.pid).not.toBe(first);

    await b!.query('PREPARE tp_p(int) AS SELECT $1 * 10 AS v');
    await Promise.all([
      churn([c!, d!], 10),
      ...[a!, b!].map(async (client, i) => {
        for (let t = 0; t < 10; t++) {
          const inTx = t % 2 === 0;
          if (inTx) await client.query('BEGIN');
          const r = await client.query<{ v: number }>(`EXECUTE tp_p(${t})`);
          if (inTx) await client.query('COMMIT');
          expect(r.rows).toEqual([{ v: i === 0 ? t + 1 : t * 10 }]);
        }
      }),
    ]);

    await a!.query('DEALLOCATE tp_p');
    await expect(a!.query('EXECUTE tp_p(1)')).rejects.toMatchObject({ code: '26000' });
    for (let t = 0; t < 4; t++) expect((await b!.query<{ v: number }>('EXECUTE tp_p(5)')).rows).toEqual([{ v: 50 }]);
    // The name is free again for a, with a new definition.
    await a!.query("PREPARE tp_p(text) AS SELECT $1 || '!' AS v");
    const bPid = await pidOf(b!);
    const again = await onAnotherConnection(bPid, [c!, d!], () => a!.query<{ v: string }>("EXECUTE tp_p('hi')"));
    expect(again.rows).toEqual([{ v: 'hi!' }]);
    // c never prepared tp_p: as on a direct connection, it must not find a's.
    const leaked = await errorOf(c!.query('EXECUTE tp_p(1)'));
    expect(sqlstate(leaked), "another client's EXECUTE of a's statement").toBe('26000');
  });
});

// --- statement mode -------------------------------------------------------------------------------

describe('statement pooling mode', () => {
  let st: TestGateway;

  beforeAll(async () => {
    st = await startGateway({ pool: '{ mode: statement, size: 2, query_wait_timeout_ms: 5000 }' });
  });

  afterAll(async () => {
    await st?.stop();
  });

  it('runs single statements from 4 clients, simple and extended protocol', async () => {
    const clients = await connectMany(st, 4, 'app', 'tp-stmt');
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 20; k++) {
        const r = k % 3 === 0
          ? await c.query<{ v: number }>(`SELECT ${i * 100 + k} AS v`)
          : k % 3 === 1
            ? await c.query<{ v: number }>('SELECT $1::int AS v', [i * 100 + k])
            : await c.query<{ v: number }>({ name: 'tp-stmt-mode', text: 'SELECT $1::int AS v', values: [i * 100 + k] });
        expect(r.rows).toEqual([{ v: i * 100 + k }]);
      }
    }));
  });

  it('refuses a multi-statement transaction with PgBouncer\'s error (08P01), commits none of it, and keeps serving', async () => {
    const client = await connect(st, { application_name: 'tp-stmt-tx' });
    const failures: unknown[] = [];
    for (const sql of ['BEGIN', "INSERT INTO tp_statement_mode VALUES ('in-a-transaction')", 'COMMIT']) {
      const err = await errorOf(client.query(sql));
      if (err) failures.push(err);
    }
    const seen = [...failures, ...(asyncErrors.get(client) ?? [])];
    const refusal = seen.find((e) => sqlstate(e) === '08P01');
    expect(refusal, `errors seen: ${seen.map(String).join('; ')}`).toBeDefined();
    expect(String((refusal as Error).message)).toBe('transaction blocks not allowed in statement pooling mode');
    expect((await adminQuery("SELECT 1 FROM tp_statement_mode WHERE tag = 'in-a-transaction'")).rowCount).toBe(0);

    const others = await connectMany(st, 2, 'app', 'tp-stmt-after');
    for (const other of others) expect((await other.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });
});

// --- cancel ---------------------------------------------------------------------------------------

describe('cancel requests in transaction mode', () => {
  it("cancels a client's running query without touching another client's transaction", async () => {
    const [b, c, d] = await connectMany(gw, 3, 'app', 'tp-cancel');
    const sql = postgres(gw.url(), { max: 1, onnotice: () => undefined });
    try {
      await sql`SELECT 1`;
      const sleeping = sql`SELECT pg_sleep(10) /* tp-cancel-a */`;
      const outcome = errorOf(sleeping.execute());
      await runningPid('tp-cancel-a');
      await b!.query('BEGIN');
      await b!.query("INSERT INTO tp_cancel VALUES ('b-before')");

      await sleeping.cancel();
      expect(await outcome).toMatchObject({ code: '57014' });

      await b!.query('SELECT pg_sleep(0.1)');
      await b!.query("INSERT INTO tp_cancel VALUES ('b-after')");
      await b!.query('COMMIT');
      const rows = await adminQuery<{ tag: string }>("SELECT tag FROM tp_cancel WHERE tag LIKE 'b-%' ORDER BY tag");
      expect(rows.rows.map((r) => r.tag)).toEqual(['b-after', 'b-before']);
      await churn([c!, d!], 4);
      expect([...await sql<{ n: number }[]>`SELECT 1 AS n`]).toEqual([{ n: 1 }]);
    } finally {
      await sql.end();
    }
  });

  it("does not cancel another client's query with a cancel sent after the client's own query finished", async () => {
    const [a, b, c, _d] = await connectMany(gw, 4, 'app', 'tp-late-cancel');
    // c holds one connection, so a's query and then b's run on the other one.
    await c!.query('BEGIN');
    const cPid = await pidOf(c!);
    const aPid = await pidOf(a!);
    expect(aPid).not.toBe(cPid);
    const sleeping = b!.query<{ done: string; pid: number }>("SELECT pg_sleep(1) /* tp-late-b */, 'finished' AS done, pg_backend_pid() AS pid");
    expect(await runningPid('tp-late-b')).toBe(aPid);
    const key = backendKey(a!);
    await sendCancel(gw, key.processID, key.secretKey);
    const r = await sleeping;
    expect(r.rows[0]).toMatchObject({ done: 'finished', pid: aPid });
    await c!.query('COMMIT');
  });
});

/**
 * A TCP proxy to the lab's primary that holds CancelRequest packets back for `delayMs`, as a busy
 * or distant server would: the cancel then lands well after pgway decided to send it.
 */
async function slowCancelProxy(delayMs: number): Promise<{ host: string; port: number; close(): void }> {
  const { primary } = lab();
  const sockets = new Set<net.Socket>();
  // Half-open: the proxy answers a cancel's end only when PostgreSQL does, after acting on it.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client);
    client.once('data', (first) => {
      client.pause();
      const upstream = net.connect({ host: primary.host, port: primary.port, allowHalfOpen: true });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      const isCancel = first.length >= 8 && first.readInt32BE(4) === 80877102;
      setTimeout(() => {
        upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      }, isCancel ? delayMs : 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('a cancel that lands after its query ended', () => {
  it("never reaches the next client's statement on that server connection", async () => {
    const proxy = await slowCancelProxy(600);
    const single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }', primary: proxy });
    try {
      const [a, b] = await connectMany(single, 2, 'app', 'tp-slow-cancel');
      const first = a!.query("SELECT pg_sleep(0.3) /* tp-slow-a */, 'a finished' AS done");
      await runningPid('tp-slow-a');
      // b waits for the one server connection; a's cancel reaches PostgreSQL while b's query runs there.
      const second = b!.query("SELECT pg_sleep(1) /* tp-slow-b */, 'b finished' AS done");
      const key = backendKey(a!);
      await sendCancel(single, key.processID, key.secretKey);
      const outcomes = await Promise.allSettled([first, second]);
      const seen = outcomes.map((o) => (o.status === 'fulfilled' ? o.value.rows[0]!.done : sqlstate(o.reason)));
      // a's query may or may not be cancelled (it races its own end); b's must run to the end.
      expect(seen[1]).toBe('b finished');
      expect(['a finished', '57014']).toContain(seen[0]);
      for (const c of [a, b]) await endQuietly(c!);
    } finally {
      await single.stop();
      proxy.close();
    }
  });
});

describe('requests held while a client waits for a server connection', () => {
  it('keeps every byte of them, however many reads they took, and runs them in order', async () => {
    // Both of trustuser's server connections are held, so the raw client's requests wait, held
    // as views of what pgway read; each write below arrives in a read of its own.
    const holders = [await connect(gw, {}, 'trustuser'), await connect(gw, {}, 'trustuser')];
    for (const h of holders) await h.query('BEGIN');
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    const text = (tag: string, n: number): string => `${tag}:`.padEnd(n, tag);
    const values = [text('a', 300), text('b', 300), text('c', 300), text('d', 3000), text('e', 200_000), text('f', 20)];
    const parse = typedMessage('P', Buffer.concat([cstring(''), cstring(`SELECT '${values[2]}'::text`), int16(0)]));
    const bind = typedMessage('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(0)]));
    const execute = typedMessage('E', Buffer.concat([cstring(''), int32(0)]));
    const query = (v: string): Buffer => typedMessage('Q', cstring(`SELECT '${v}'::text`));
    const writes = [
      query(values[0]!),
      query(values[1]!),
      parse,
      Buffer.concat([bind, execute]),
      typedMessage('S'),
      query(values[3]!),
      query(values[4]!).subarray(0, 70_000),
      query(values[4]!).subarray(70_000),
      query(values[5]!),
    ];
    for (const w of writes) {
      client.write(w);
      await sleep(30);
    }
    for (const h of holders) await h.query('COMMIT');
    const rows: string[] = [];
    for (let i = 0; i < values.length; i++) {
      const { before } = await client.readUntil('Z');
      const errors = before.filter((m) => m.type === 'E').map((m) => errorFields(m.body).get('M'));
      expect(errors).toEqual([]);
      rows.push(...before.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)[0]!));
    }
    expect(rows).toEqual(values);
    client.destroy();
  });
});

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

describe('a client slow to read a large result', () => {
  it('gets every byte of it, while the other clients keep being served', async () => {
    const others = await Promise.all([connect(gw, {}, 'trustuser'), connect(gw, {}, 'trustuser')]);
    const row = (i: number): string => `${i}:`.padEnd(2000, String.fromCharCode(97 + (i % 26)));
    // 1 MB fits in the sockets' buffers, so its transaction ends while the client reads nothing;
    // 6 MB does not, so pgway stops reading from the server until the client catches up.
    for (const rows of [500, 3000]) {
      const { client: slow } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
      slow.socket.pause();
      slow.write(typedMessage('Q', cstring(`SELECT (i || ':') || repeat(chr(97 + i % 26), 2000 - length(i || ':')) FROM generate_series(0, ${rows - 1}) i`)));
      await sleep(200);
      const answers = await Promise.all(others.map(async (c, n) => {
        const seen: string[] = [];
        for (let i = 0; i < 10; i++) seen.push((await c.query<{ v: string }>('SELECT $1::text AS v', [`${rows} ${n} ${i}`])).rows[0]!.v);
        return seen;
      }));
      expect(answers).toEqual([0, 1].map((n) => Array.from({ length: 10 }, (_, i) => `${rows} ${n} ${i}`)));
      slow.socket.resume();
      const { before } = await slow.readUntil('Z', 20_000);
      const values = before.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)[0]);
      expect(values.length).toBe(rows);
      expect(values.findIndex((v, i) => v !== row(i))).toBe(-1);
      slow.destroy();
    }
  });
});
