// A seeded, bounded chaos run: 20-30 clients (pg, postgres.js, raw protocol) through pgway in
// transaction mode with a pool of 2-4, while a controller terminates server backends, makes clients
// vanish mid-transaction, cancels running pg_sleeps, and runs PAUSE/RESUME, RECONNECT and RELOAD.
// Each client checks it gets its own answers, settings and statements; afterwards the balances still
// add up, nothing is left idle in transaction or locked, and the admin counts match pg_stat_activity.
// More seeds, longer: CHAOS_SEEDS=1,2,3 CHAOS_MS=15000 npx vitest run test/chaos.test.ts
import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { FileGateways, type FileGateway } from './helpers/file-gateway.js';
import { NoAnswerWithin, sleep, sqlstate, within } from './helpers/pg-helpers.js';
import { prng } from './helpers/prng.js';
import { cancelRequestPacket, rawTrustLogin, RawClient, readCycle, queryMessage } from './helpers/raw-client.js';

const DB = 'chaos';
const files = new FileGateways(DB);
const SEEDS = (process.env.CHAOS_SEEDS ?? '1,2').split(',').map(Number);
const DURATION = Number(process.env.CHAOS_MS ?? 5000);
const PER_OWNER = 500;
const VICTIM_OWNER = 99;

beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
  await adminQuery('CREATE TABLE accounts (id int PRIMARY KEY, owner int NOT NULL, balance int NOT NULL)', [], 'primary', DB);
  await adminQuery('GRANT ALL ON accounts TO app', [], 'primary', DB);
});
afterAll(async () => {
  await files.stopAll();
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  files.removeFiles();
});

// Errors a client may get when a fault hits it: its server connection was terminated, its connection
// ended, a reconnect, a pause.
const FAULT_CODES = new Set(['57P01', '08006', '08003', '08P01', '57P05', '57P02', '57P03', '40P01']);
function isFaultError(err: unknown): boolean {
  const code = sqlstate(err);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return FAULT_CODES.has(code);
  const msg = String((err as Error)?.message ?? err);
  return /terminated|ECONNRESET|EPIPE|not queryable|closed|ended|CONNECTION_|write after end|Connection/i.test(msg);
}

interface Report {
  violations: string[];
  faultErrors: Map<string, number>;
  ops: number;
  faults: Map<string, number>;
}
/** A running statement the controller may cancel; js: a postgres.js query (see cancelOutcome). */
interface CancelTarget { tag: string; running: boolean; cancel(): Promise<void>; cancelledAt?: number; js?: boolean }
const note = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

async function resetTable(owners: number[]): Promise<void> {
  await adminQuery('TRUNCATE accounts', [], 'primary', DB);
  const values = owners.flatMap((o) => [0, 1, 2, 3, 4].map((k) => `(${o * 10 + k}, ${o}, 100)`)).join(',');
  await adminQuery(`INSERT INTO accounts VALUES ${values}`, [], 'primary', DB);
}

async function runChaos(seed: number, durationMs: number): Promise<Report> {
  const rand = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const poolSize = 2 + Math.floor(rand() * 3);
  const nPg = 16 + Math.floor(rand() * 10);
  const nJs = 3;
  const nRaw = 3;
  const report: Report = { violations: [], faultErrors: new Map(), ops: 0, faults: new Map() };
  const t00 = Date.now();
  const events: { at: number; what: string }[] = [];
  const recent = (): string => events.filter((e) => e.at > Date.now() - 2500).map((e) => `${e.at - t00}:${e.what}`).join(' ');
  const violation = (s: string): void => void report.violations.push(`${s} @${Date.now() - t00} [recent faults: ${recent()}]`);
  const pool = `{ mode: transaction, size: ${poolSize}, query_wait_timeout_ms: 8000 }`;
  const gw: FileGateway = await files.start({ pool });
  const owners = [...Array.from({ length: nPg + nJs }, (_, i) => i + 1), VICTIM_OWNER];
  await resetTable(owners);
  const deadline = Date.now() + durationMs;
  const running = (): boolean => Date.now() < deadline;
  const cancelTargets = new Set<CancelTarget>();
  const cancelOutcome = (tag: string, t: CancelTarget, started: number, err: unknown): void => {
    const code = err === undefined ? 'ok' : sqlstate(err);
    if (t.cancelledAt === undefined) {
      if (code === '57014') violation(`${tag}: 57014 but nobody cancelled it`);
      return;
    }
    note(report.faults, `cancel->${code}`);
    // postgres.js defers a cancel until its query is active (after a Describe round): not checked there.
    if (code === 'ok' && !t.js && Date.now() - t.cancelledAt > 150) violation(`${tag}: cancel sent ${t.cancelledAt - started} ms after start, statement still ran to its end ${Date.now() - started} ms`);
  };

  /** Waits for a statement the controller may cancel, and checks how it ended (see cancelOutcome). */
  async function untilCancelledOrDone(tag: string, target: CancelTarget, started: number, p: Promise<unknown>): Promise<void> {
    try {
      await within(10000, `${tag} cancelme`, p);
      cancelOutcome(tag, target, started, undefined);
    } catch (err) {
      if (sqlstate(err) !== '57014') throw err;
      cancelOutcome(tag, target, started, err);
    } finally {
      target.running = false;
      cancelTargets.delete(target);
    }
  }

  // --- pg workers -----------------------------------------------------------------------------------
  async function pgWorker(id: number): Promise<void> {
    const r = prng(seed * 1000 + id);
    const rp = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    let client: pg.Client | undefined;
    let setVal: string[] = [''];       // acceptable values of chaos.v (several when a SET's outcome is unknown)
    let sqlPrepared: 'yes' | 'no' | 'maybe' = 'no';
    let n = 0;
    const connect = async (): Promise<pg.Client> => {
      const c = new pg.Client({ connectionString: gw.url(), application_name: `w${id}` });
      c.on('error', () => undefined);
      await within(10000, `w${id} connect`, c.connect());
      setVal = [''];
      sqlPrepared = 'no';
      return c;
    };
    while (running()) {
      n++;
      try {
        client ??= await connect();
        const c = client;
        const op = rp(['transfer', 'transfer', 'named', 'set', 'sqlprep', 'multi', 'fail', 'sleep', 'cancelme']);
        const tag = `w${id}-${n}`;
        report.ops++;
        if (op === 'transfer') {
          const a = id * 10 + Math.floor(r() * 5);
          const b = id * 10 + Math.floor(r() * 5);
          const amt = 1 + Math.floor(r() * 20);
          await within(10000, `${tag} BEGIN`, c.query('BEGIN'));
          try {
            await within(10000, `${tag} debit`, c.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amt, a]));
            await within(10000, `${tag} lock`, c.query('SELECT pg_advisory_xact_lock($1)', [id]));
            if (r() < 0.5) await within(10000, `${tag} sleep`, c.query('SELECT pg_sleep(0.01)'));
            await within(10000, `${tag} credit`, c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amt, b]));
            const s = await within(10000, `${tag} sum`, c.query<{ s: number; me: number }>('SELECT sum(balance)::int AS s, $2::int AS me FROM accounts WHERE owner = $1', [id, id]));
            if (s.rows[0]!.me !== id) violation(`${tag}: got another client's row ${JSON.stringify(s.rows)}`);
            if (s.rows[0]!.s !== PER_OWNER) violation(`${tag}: in-transaction sum ${s.rows[0]!.s}`);
            await within(10000, `${tag} COMMIT`, c.query('COMMIT'));
          } catch (err) {
            if (!(err instanceof NoAnswerWithin)) await within(10000, `${tag} ROLLBACK`, c.query('ROLLBACK')).catch(() => undefined);
            throw err;
          }
        } else if (op === 'named') {
          // Every client uses the same statement name with its own text.
          const res = await within(10000, `${tag} named`, c.query<{ me: number; t: string }>({ name: 'shared_name', text: `SELECT ${id}::int AS me, $1::text AS t`, values: [tag] }));
          if (res.rows[0]?.me !== id || res.rows[0]?.t !== tag) violation(`${tag}: named statement answered ${JSON.stringify(res.rows)}`);
        } else if (op === 'set') {
          const val = `v${id}_${n}`;
          const before = setVal;
          setVal = [...before, val];
          await within(10000, `${tag} SET`, c.query(`SET chaos.v = '${val}'`));
          setVal = [val];
          const res = await within(10000, `${tag} SHOW`, c.query<{ 'chaos.v': string }>('SHOW chaos.v'));
          if (res.rows[0]?.['chaos.v'] !== val) violation(`${tag}: SHOW chaos.v = ${JSON.stringify(res.rows)} after SET ${val}`);
        } else if (op === 'sqlprep') {
          if (sqlPrepared !== 'yes') {
            const before: string = sqlPrepared;
            try {
              await within(10000, `${tag} PREPARE`, c.query(`PREPARE sp(int) AS SELECT $1 + ${id * 1000} AS v`));
              sqlPrepared = 'yes';
            } catch (err) {
              if (sqlstate(err) === '42P05' && before === 'maybe') sqlPrepared = 'yes';
              else { sqlPrepared = 'maybe'; throw err; }
            }
          }
          try {
            const res = await within(10000, `${tag} EXECUTE`, c.query<{ v: number }>('EXECUTE sp(7)'));
            if (res.rows[0]?.v !== id * 1000 + 7) violation(`${tag}: EXECUTE sp answered ${JSON.stringify(res.rows)}`);
          } catch (err) {
            if (sqlstate(err) === '26000') violation(`${tag}: EXECUTE of own prepared statement: 26000`);
            throw err;
          }
        } else if (op === 'multi') {
          const res = (await within(10000, `${tag} multi`, c.query(`SELECT ${id} AS a; SELECT current_setting('chaos.v', true) AS v; SELECT '${tag}' AS t`))) as unknown as pg.QueryResult[];
          const v = res[1]?.rows[0]?.v ?? '';
          if (res[0]?.rows[0]?.a !== id || res[2]?.rows[0]?.t !== tag) violation(`${tag}: multi answered ${JSON.stringify(res.map((x) => x.rows))}`);
          if (!setVal.includes(v)) violation(`${tag}: multi saw chaos.v=${v}, expected one of ${setVal.join('|')}`);
          else setVal = [v];
        } else if (op === 'fail') {
          await within(10000, `${tag} BEGIN`, c.query('BEGIN'));
          let code: string | undefined;
          try {
            await within(10000, `${tag} 1/0`, c.query('SELECT 1/0'));
          } catch (err) {
            code = sqlstate(err);
            if (isFaultError(err)) throw err;
          }
          if (code !== '22012') violation(`${tag}: 1/0 gave ${code}`);
          let code2: string | undefined;
          try {
            await within(10000, `${tag} after`, c.query('SELECT 1'));
          } catch (err) {
            code2 = sqlstate(err);
            if (isFaultError(err)) throw err;
          }
          if (code2 !== '25P02') violation(`${tag}: statement in failed block gave ${code2}`);
          await within(10000, `${tag} ROLLBACK`, c.query('ROLLBACK'));
        } else if (op === 'sleep') {
          const ms = 10 + Math.floor(r() * 40);
          const t0 = Date.now();
          const res = await within(10000, `${tag} sleep`, c.query<{ me: number }>(`SELECT pg_sleep(${ms / 1000}), ${id}::int AS me`));
          if (res.rows[0]?.me !== id) violation(`${tag}: sleep answered ${JSON.stringify(res.rows)}`);
          if (Date.now() - t0 < ms - 2) violation(`${tag}: sleep ${ms} ms ended after ${Date.now() - t0} ms`);
        } else {
          // A long sleep the controller may cancel.
          const target: CancelTarget = { tag, running: true, cancel: async () => sendCancel(gw, c) };
          cancelTargets.add(target);
          const started = Date.now();
          await untilCancelledOrDone(tag, target, started, c.query('SELECT pg_sleep(0.6)'));
          // After a cancel, the session must still be usable and see its own SET.
          const res = await within(10000, `${tag} after-cancel`, c.query<{ v: string | null }>("SELECT current_setting('chaos.v', true) AS v"));
          const v = res.rows[0]?.v ?? '';
          if (!setVal.includes(v)) violation(`${tag}: after cancel chaos.v=${v}, expected ${setVal.join('|')}`);
          else setVal = [v];
        }
      } catch (err) {
        if (err instanceof NoAnswerWithin) {
          violation(String(err.message));
          client?.connection.stream.destroy();
          client = undefined;
          continue;
        }
        const code = sqlstate(err);
        if (code === '57014') {
          violation(`w${id}-${n}: 57014 on a statement nobody cancelled: ${(err as Error).message}`);
        } else if (!isFaultError(err)) {
          violation(`w${id}-${n}: unexpected error ${code} ${(err as Error).message}`);
        }
        note(report.faultErrors, `pg ${code ?? (err as Error).message}`);
        // A connection-level failure: start a new session.
        if (code === undefined || code === '57P01' || code === '08006' || code === '08P01' || code === '57P05') {
          client?.connection.stream.destroy();
          client = undefined;
        }
      }
      await sleep(r() * 10);
    }
    if (client) await within(3000, `w${id} end`, client.end()).catch((e) => violation(String(e)));
  }

  // --- postgres.js workers --------------------------------------------------------------------------
  async function jsWorker(id: number): Promise<void> {
    const r = prng(seed * 1000 + id);
    const sql = postgres(gw.url(), { max: 1, onnotice: () => undefined, connect_timeout: 10, idle_timeout: 0 });
    // postgres.js itself hangs its connection when a query is cancelled before it was sent (also on a
    // direct connection, e.g. while its array-types fetch waits): warm up first, cancel only once sent.
    await within(10000, `j${id} warm-up`, sql`SELECT 1`).catch(() => undefined);
    let n = 0;
    while (running()) {
      n++;
      const tag = `j${id}-${n}`;
      report.ops++;
      try {
        const op = Math.floor(r() * 3);
        if (op === 0) {
          const rows = await within(10000, `${tag} select`, sql`SELECT ${id}::int AS me, ${tag}::text AS t, pg_sleep(0.01)`);
          if (rows[0]?.me !== id || rows[0]?.t !== tag) violation(`${tag}: answered ${JSON.stringify(rows)}`);
        } else if (op === 1) {
          await within(10000, `${tag} tx`, sql.begin(async (tx) => {
            const a = id * 10 + Math.floor(r() * 5);
            const b = id * 10 + Math.floor(r() * 5);
            await tx`UPDATE accounts SET balance = balance - 3 WHERE id = ${a}`;
            await tx`UPDATE accounts SET balance = balance + 3 WHERE id = ${b}`;
            const s = await tx`SELECT sum(balance)::int AS s FROM accounts WHERE owner = ${id}`;
            if (s[0]?.s !== PER_OWNER) violation(`${tag}: in-tx sum ${s[0]?.s}`);
          }));
        } else {
          const q = sql`SELECT pg_sleep(0.6), ${id}::int AS me`;
          const target: CancelTarget = { tag, js: true, running: true, cancel: async () => { q.cancel(); } };
          const p = q.then((x) => x);
          setTimeout(() => cancelTargets.add(target), 30);
          const started = Date.now();
          await untilCancelledOrDone(tag, target, started, p);
        }
      } catch (err) {
        if (err instanceof NoAnswerWithin) { violation(`${err.message} all-early-events: ${events.filter((e) => e.at - t00 < 1500).map((e) => `${e.at - t00}:${e.what}`).join(' ')}`); continue; }
        const code = sqlstate(err);
        if (code === '57014') violation(`${tag}: 57014 not cancelled: ${(err as Error).message}`);
        else if (!isFaultError(err)) violation(`${tag}: unexpected ${code} ${(err as Error).message}`);
        note(report.faultErrors, `js ${code ?? (err as Error).message}`);
      }
      await sleep(r() * 10);
    }
    await Promise.race([sql.end({ timeout: 1 }).catch(() => undefined), sleep(3000)]);
  }

  // --- raw protocol workers ----------------------------------------------------------------------
  async function rawWorker(id: number): Promise<void> {
    const r = prng(seed * 1000 + id);
    let client: RawClient | undefined;
    let setVal = [''];
    let n = 0;
    while (running()) {
      n++;
      const tag = `r${id}-${n}`;
      report.ops++;
      try {
        if (!client) {
          client = (await within(10000, `${tag} login`, rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustapp', database: DB }))).client;
          setVal = [''];
        }
        const val = `r${id}_${n}`;
        const doSet = r() < 0.5;
        const sqlText = doSet
          ? `SET chaos.v = '${val}'; SELECT ${id} AS me, current_setting('chaos.v', true) AS v, pg_sleep(0.01)`
          : `SELECT ${id} AS me, current_setting('chaos.v', true) AS v, pg_sleep(0.01)`;
        if (doSet) setVal = [...setVal, val];
        client.write(queryMessage(sqlText));
        const { rows, errors } = await within(10000, `${tag} cycle`, readCycle(client));
        if (errors.length) {
          if (errors.some((e) => !FAULT_CODES.has(e))) violation(`${tag}: errors ${errors.join(',')}`);
          note(report.faultErrors, `raw ${errors.join(',')}`);
          if (client.closed) client = undefined;
          continue;
        }
        const [me, v] = rows[0] ?? [];
        if (me !== String(id)) violation(`${tag}: answered ${JSON.stringify(rows)}`);
        if (doSet && v !== val) violation(`${tag}: saw ${v} after SET ${val}`);
        if (!setVal.includes(v ?? '')) violation(`${tag}: saw chaos.v=${v}, expected ${setVal.join('|')}`);
        setVal = [v ?? ''];
      } catch (err) {
        if (err instanceof NoAnswerWithin || /timed out/.test(String(err))) violation(`${tag}: ${String(err)}`);
        else note(report.faultErrors, `raw ${String(err)} ${client?.pending.length ?? 0}`);
        client?.destroy();
        client = undefined;
      }
      await sleep(r() * 10);
    }
    client?.destroy();
  }

  // --- controller -----------------------------------------------------------------------------------
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  admin.on('error', () => undefined);
  await admin.connect();
  async function controller(): Promise<void> {
    while (running()) {
      await sleep(30 + rand() * 200);
      if (!running()) break;
      const fault = pick(['terminate', 'terminate', 'terminate', 'vanish', 'vanish-sleep', 'cancel', 'cancel', 'pause', 'reconnect', 'reload']);
      note(report.faults, fault);
      events.push({ at: Date.now(), what: fault });
      try {
        if (fault === 'terminate') {
          const pids = await adminQuery<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = 'app' AND backend_type = 'client backend'", [DB]);
          if (pids.rows.length) {
            const pid = pick(pids.rows).pid;
            const app = await adminQuery<{ a: string; st: string }>('SELECT application_name AS a, state AS st FROM pg_stat_activity WHERE pid = $1', [pid]);
            events.push({ at: Date.now(), what: `terminate ${pid} (${app.rows[0]?.a}/${app.rows[0]?.st})` });
            await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
          }
        } else if (fault === 'vanish' || fault === 'vanish-sleep') {
          const c = new pg.Client({ connectionString: gw.url(), application_name: 'vanisher' });
          c.on('error', () => undefined);
          await within(10000, 'vanisher connect', c.connect());
          await within(10000, 'vanisher BEGIN', c.query('BEGIN'));
          await within(10000, 'vanisher debit', c.query(`UPDATE accounts SET balance = balance - 50 WHERE id = ${VICTIM_OWNER * 10}`));
          await within(10000, 'vanisher lock', c.query('SELECT pg_advisory_xact_lock(999999)'));
          if (fault === 'vanish-sleep') {
            c.query('SELECT pg_sleep(0.3)').catch(() => undefined);
            await sleep(50);
          }
          c.connection.stream.destroy();
        } else if (fault === 'cancel') {
          const targets = [...cancelTargets].filter((t) => t.running);
          if (targets.length) {
            const t = pick(targets);
            t.running = false;
            t.cancelledAt = Date.now();
            events.push({ at: Date.now(), what: `cancel ${t.tag}` });
            await t.cancel();
          }
        } else if (fault === 'pause') {
          await within(10000, 'PAUSE', admin.query('PAUSE'));
          await sleep(50 + rand() * 150);
          await within(10000, 'RESUME', admin.query('RESUME'));
        } else if (fault === 'reconnect') {
          await within(10000, 'RECONNECT', admin.query('RECONNECT'));
        } else {
          await within(10000, 'RELOAD', admin.query('RELOAD'));
        }
      } catch (err) {
        if (err instanceof NoAnswerWithin) violation(`controller ${fault}: ${err.message}`);
        else note(report.faultErrors, `controller ${fault} ${sqlstate(err)} ${(err as Error).message}`);
        if (fault === 'pause') await admin.query('RESUME').catch(() => undefined);
      }
    }
  }

  const workers: Promise<void>[] = [controller()];
  for (let i = 1; i <= nPg; i++) workers.push(pgWorker(i));
  for (let i = nPg + 1; i <= nPg + nJs; i++) workers.push(jsWorker(i));
  for (let i = 0; i < nRaw; i++) workers.push(rawWorker(200 + i));
  await within(durationMs + 40000, 'workers', Promise.all(workers)).catch((e) => violation(String(e)));

  // --- invariants after the run ---------------------------------------------------------------------
  await sleep(300);
  const sums = await adminQuery<{ owner: number; s: number }>('SELECT owner, sum(balance)::int AS s FROM accounts GROUP BY owner', [], 'primary', DB);
  for (const row of sums.rows) if (row.s !== PER_OWNER) violation(`owner ${row.owner}: sum ${row.s} after the run`);
  const idleTx = await adminQuery<{ n: number; q: string }>(
    "SELECT count(*)::int AS n, string_agg(query, ' | ') AS q FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", [DB]);
  if (idleTx.rows[0]!.n) violation(`${idleTx.rows[0]!.n} server connections idle in transaction: ${idleTx.rows[0]!.q}`);
  const locks = await adminQuery<{ n: number; kinds: string }>(
    "SELECT count(*)::int AS n, string_agg(DISTINCT l.locktype || ':' || l.mode, ',') AS kinds FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND l.pid <> pg_backend_pid() AND l.locktype <> 'virtualxid'", [DB]);
  if (locks.rows[0]!.n) violation(`${locks.rows[0]!.n} locks left: ${locks.rows[0]!.kinds}`);
  const servers = await admin.query<{ database: string; user: string; state: string }>('SHOW SERVERS');
  const ours = servers.rows.filter((s) => s.database === DB);
  const pgCount = await adminQuery<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = 'app' AND backend_type = 'client backend'", [DB]);
  if (ours.length !== pgCount.rows[0]!.n) {
    const detail = await adminQuery("SELECT pid, state, application_name, backend_start, state_change, left(query, 60) AS q FROM pg_stat_activity WHERE datname = $1 AND usename = 'app' AND backend_type = 'client backend'", [DB]);
    await sleep(2000);
    const later = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = 'app' AND backend_type = 'client backend'", [DB]);
    const servers2 = (await admin.query<{ database: string; user: string }>('SHOW SERVERS')).rows.filter((s) => s.database === DB);
    violation(`SHOW SERVERS lists ${ours.length} app servers, pg_stat_activity ${pgCount.rows[0]!.n} (2 s later: ${servers2.length} vs ${later.rows[0]!.n}); servers ${JSON.stringify(servers.rows)}; activity ${JSON.stringify(detail.rows)}`);
  }
  const pools = await admin.query<Record<string, string>>('SHOW POOLS');
  for (const poolRow of pools.rows.filter((p) => p.database === DB)) {
    const sv = pools.rows.filter((p) => p.database === DB).reduce((a, row) => a + ['sv_active', 'sv_idle', 'sv_used', 'sv_login'].reduce((b, k) => b + Number(row[k] ?? 0), 0), 0);
    if (sv !== pgCount.rows[0]!.n) violation(`SHOW POOLS sv_* = ${sv}, pg_stat_activity ${pgCount.rows[0]!.n}: ${JSON.stringify(poolRow)}`);
    if (Number(poolRow.cl_waiting) !== 0 || Number(poolRow.cl_active) !== 0) violation(`clients left in SHOW POOLS: ${JSON.stringify(poolRow)}`);
  }
  const fresh = new pg.Client({ connectionString: gw.url() });
  fresh.on('error', () => undefined);
  try {
    await within(10000, 'fresh connect', fresh.connect());
    const res = await within(10000, 'fresh query', fresh.query<{ v: string | null }>("SELECT current_setting('chaos.v', true) AS v"));
    if (res.rows[0]?.v) violation(`fresh client sees chaos.v=${res.rows[0].v}`);
    const ps = await within(10000, 'fresh EXECUTE', fresh.query('EXECUTE sp(1)')).then(() => 'ran', (e) => sqlstate(e));
    if (ps !== '26000') violation(`fresh client's EXECUTE sp: ${ps}`);
  } catch (err) {
    violation(`fresh client: ${String(err)}`);
  }
  await within(3000, 'fresh end', fresh.end()).catch(() => undefined);
  await admin.end().catch(() => undefined);
  await files.stopAll();
  return report;
}

async function sendCancel(gw: FileGateway, c: pg.Client): Promise<void> {
  const k = c as unknown as { processID: number; secretKey: number };
  const s = net.connect({ host: gw.host, port: gw.port });
  await new Promise<void>((resolve) => {
    s.on('connect', () => s.end(cancelRequestPacket(k.processID, k.secretKey)));
    s.on('close', () => resolve());
    s.on('error', () => resolve());
    setTimeout(() => { s.destroy(); resolve(); }, 3000);
  });
}

describe('chaos through a transaction pool', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: invariants hold`, async () => {
      const report = await runChaos(seed, DURATION);
      console.log(`seed ${seed}: ops=${report.ops} faults=${JSON.stringify([...report.faults])} faultErrors=${JSON.stringify([...report.faultErrors])}`);
      expect(report.violations.slice(0, 40)).toEqual([]);
    }, DURATION + 90000);
  }
});
