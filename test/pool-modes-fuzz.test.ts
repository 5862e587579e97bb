// Differential wire-protocol fuzzer for the pool modes other than transaction mode's default (derived from
// protocol-fuzz.test.ts): `tx0` (transaction mode, `max_prepared_statements: 0`), `session` (more clients than
// connections: the ones past pool.size wait at login) and `statement`, plus `tx` with state that pins (LISTEN,
// temporary tables, advisory locks, WITH HOLD cursors, COPY) and clients that leave and are replaced mid-script,
// so that what one client leaves on a server connection is seen by the next. Each request goes directly, then
// through pgway; the answers must be the same message by message.
//
// Environment: FUZZ_MODE=tx|tx0|session|statement runs one mode, FUZZ_SEEDS other seeds ("1-200,500"), FUZZ_STEPS
// the requests per script (default 25), FUZZ_LOG=<file> appends each divergence, FUZZ_SHRINK=1 shrinks each
// failing script to a minimal one (FUZZ_SHRINK=timeout for hangs). Seeds 1-30 of each mode by default, about 13 s in all.
import type net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { RawClient, typedMessage } from './helpers/raw-client.js';
import { readReq, readUpToReady } from './helpers/fuzz-answers.js';
import { failingSeeds, fuzzSeeds, Rng, seedsGiven, shrinkRequests } from './helpers/fuzz-driver.js';
import { extGroup, type FuzzMsg } from './helpers/fuzz-grammar.js';
import { B, C, E, H, P, Q, S, X } from './helpers/wire-script.js';

type Mode = 'tx' | 'tx0' | 'session' | 'statement';
// A waiting session-mode client must outlast a whole script in the queue, not be timed out of it.
const poolYaml = (mode: Mode, size: number): string => mode === 'session' ? `{ mode: session, size: ${size}, query_wait_timeout_ms: 60000 }`
  : mode === 'statement' ? `{ mode: statement, size: ${size}, query_wait_timeout_ms: 4000 }`
  : `{ mode: transaction, size: ${size}, max_prepared_statements: ${mode === 'tx0' ? 0 : 3}, query_wait_timeout_ms: 4000 }`;

const gws = new Map<string, TestGateway>();
async function gateway(mode: Mode, size: number): Promise<TestGateway> {
  const key = `${mode}/${size}`;
  if (!gws.has(key)) gws.set(key, await startGateway({ pool: poolYaml(mode, size) }));
  return gws.get(key)!;
}
let tablesMade = false;
async function makeTables(): Promise<void> {
  if (tablesMade) return;
  tablesMade = true;
  const ts: string[] = [];
  for (const t of ['d', 'g']) for (let i = 0; i < SLOTS; i++) ts.push(`pm_${t}_c${i}`);
  await adminQuery(ts.map((t) => `DROP TABLE IF EXISTS ${t}; CREATE TABLE ${t} (id int, v text); GRANT ALL ON ${t} TO app;`).join(' '));
}
afterAll(async () => { for (const g of gws.values()) await g.stop(); });

// pg logs a client in (SCRAM), then the test takes its socket over; a session-mode client past pool.size stays
// in its login until a connection frees, so the login is a promise the script checks rather than awaits.
interface Login { ready: Promise<RawClient>; settled: () => boolean; end: () => void }
function login(url: string): Login {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  let done = false;
  const socket = (): net.Socket => (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
  const ready = client.connect().then(() => {
    done = true;
    socket().removeAllListeners('data');
    socket().setNoDelay(true);
    return new (RawClient as unknown as new (s: net.Socket) => RawClient)(socket());
  });
  ready.catch(() => { done = true; });
  return { ready, settled: () => done, end: () => socket().destroy() };
}
const opened: Login[] = [];
afterEach(() => { for (const l of opened.splice(0)) l.end(); });

// --- the generator ------------------------------------------------------------------------------------

type Msg = FuzzMsg;
interface Req { slot: number; msgs: Msg[]; sync: boolean; leave?: boolean; text: string }

const SLOTS = 4;
const STMTS: { sql: string; params: number }[] = [
  { sql: 'SELECT $1::int + 1 AS x', params: 1 },
  { sql: 'SELECT generate_series(1, $1::int) AS g', params: 1 },
  { sql: 'SELECT 10 / (CASE WHEN random() >= 0 THEN $1::int END) AS d', params: 1 }, // volatile: no folding at Bind (custom vs generic plans differ per connection)
  { sql: "INSERT INTO {T} (id, v) VALUES ($1::int, 'e')", params: 1 },
  { sql: 'SELECT count(*) AS n FROM {T}', params: 0 },
  { sql: 'SELEC 1', params: 0 },
  { sql: 'SHOW work_mem', params: 0 },
  { sql: 'SELECT $1 AS t', params: 1 },
  { sql: 'SELECT v, id FROM {T} ORDER BY id, v LIMIT 4', params: 0 },
  { sql: 'SELECT * FROM pm_nosuch', params: 0 },
  { sql: 'BEGIN', params: 0 },
  { sql: 'COMMIT', params: 0 },
  { sql: "SET work_mem = '5MB'", params: 0 },
  { sql: 'ROLLBACK', params: 0 },
  { sql: "SELECT set_config('work_mem', $1, false) AS s", params: 1 },
  { sql: "SELECT current_setting('work_mem') AS w, current_setting('DateStyle') AS ds", params: 0 },
  { sql: 'SELECT count(*) AS l FROM pg_listening_channels()', params: 0 },
]; // 10 is BEGIN

function qPool(r: Rng, ci: number): string {
  const k = r.int(1000);
  const valid = ['SELECT 1 AS a', 'SELECT count(*) FROM {T}', `INSERT INTO {T} VALUES (${k}, 'q')`, 'SELECT v FROM {T} ORDER BY id, v LIMIT 2', 'SHOW work_mem', 'SHOW DateStyle', 'SHOW statement_timeout'];
  const fail = ['SELECT 1/0', 'SELECT * FROM pm_nosuch', 'SELEC 1', "SELECT 'a'::int"];
  const tx = ['BEGIN', 'COMMIT', 'ROLLBACK', 'START TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'END', 'ABORT', 'COMMIT AND CHAIN', 'SHOW transaction_isolation', 'SAVEPOINT sp1', 'ROLLBACK TO sp1', 'RELEASE sp1'];
  const sets = [`SET work_mem = '${1 + r.int(8)}MB'`, 'RESET work_mem', "SET DateStyle = 'German'", 'RESET DateStyle', `SET statement_timeout = '${1 + r.int(9)}min'`, 'RESET ALL',
    "SET LOCAL work_mem = '77MB'", `SET application_name = 'pm${ci}'`, `SELECT set_config('work_mem', '${10 + r.int(5)}MB', false)`, "SET TIME ZONE 'Europe/Paris'", 'SHOW TimeZone',
    "SELECT '2020-01-02 03:04:05+00'::timestamptz::text AS ts", 'SHOW application_name', 'SET extra_float_digits = 1', "SELECT 0.1::float8::text AS f"];
  const prep = [`PREPARE q${r.int(2)} AS SELECT $1::int * 10 + ${ci} AS pq`, `EXECUTE q${r.int(2)}(${r.int(5)})`, `DEALLOCATE q${r.int(2)}`, 'DEALLOCATE ALL'];
  // {K}: an advisory lock key of the client's own, so that clients never wait on each other's locks
  const pins = [`LISTEN pmch${r.int(2)}`, 'UNLISTEN *', `UNLISTEN pmch${r.int(2)}`, 'SELECT pg_listening_channels()', 'CREATE TEMP TABLE pmtmp (x int)', 'DROP TABLE pmtmp',
    'INSERT INTO pmtmp VALUES (1)', 'SELECT count(*) FROM pmtmp', 'DISCARD TEMP', 'DISCARD ALL', `SELECT pg_advisory_lock({K}${r.int(2)})`, `SELECT pg_advisory_unlock({K}${r.int(2)})`,
    'SELECT pg_advisory_unlock_all()', `SELECT pg_try_advisory_lock({K}${r.int(2)})`, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    'DECLARE pmc CURSOR WITH HOLD FOR SELECT generate_series(1,5) AS c', 'FETCH 2 FROM pmc', 'CLOSE pmc', 'CLOSE ALL', 'COPY {T} TO STDOUT', 'COPY (SELECT 1 AS one, 2 AS two) TO STDOUT',
    'SELECT count(*) FROM pg_cursors', "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND pg_table_is_visible(oid)"];
  const g = r.int(12);
  if (g < 2) return r.pick(valid);
  if (g < 3) return r.pick(fail);
  if (g < 5) return r.pick(tx);
  if (g < 6) return r.pick(sets);
  if (g < 8) return r.pick(prep);
  if (g < 11) return r.pick(pins);
  return '';
}

function simpleQuery(r: Rng, mode: Mode, ci: number, allowTx: boolean): string {
  for (;;) {
    const n = r.chance(0.3) ? 2 + r.int(2) : 1;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(qPool(r, ci));
    const sql = parts.filter((p) => p !== '' || n === 1).join('; ');
    if (!allowTx && /\b(BEGIN|SAVEPOINT|START|CHAIN)\b|(^|[^N])LISTEN|TEMP TABLE|_lock\(|WITH HOLD/.test(sql)) continue;
    if (mode === 'statement' && /\b(BEGIN|SAVEPOINT|START|CHAIN)\b/.test(sql)) continue;
    if (n > 1 && /PREPARE|DEALLOCATE|EXECUTE/.test(sql)) continue; // README: a failing request takes its PREPAREs back
    return sql;
  }
}


function genReq(r: Rng, mode: Mode, slot: number, allowHold: boolean, model: Map<string, number>, unsynced: boolean, queryShare: number): Req {
  const msgs: Msg[] = [];
  const groups = r.chance(0.25) ? 2 + r.int(2) : 1;
  let sync = true;
  for (let gi = 0; gi < groups; gi++) {
    const last = gi === groups - 1;
    if (!(unsynced && gi === 0) && r.chance(queryShare)) {
      const sql = simpleQuery(r, mode, slot, allowHold);
      msgs.push({ kind: 'Q', bytes: Q(sql), text: `Q(${sql})` });
      model.delete(''); // a Query drops the unnamed statement
      continue;
    }
    // README: with max_prepared_statements 0 named statements stay on the connection for other clients.
    extGroup(r, STMTS, (s) => s, allowHold, model, msgs, { unnamed: mode === 'tx0', noHold: mode === 'statement' });
    // statement mode answers one request at a time, so a Flush-ended one would never be sent on
    const endSync = !last || !allowHold || mode === 'statement' || (unsynced && gi === 0) || r.chance(0.8);
    if (endSync) msgs.push({ kind: 'S', bytes: S, text: 'S' });
    else {
      sync = false;
      if (msgs[msgs.length - 1]!.kind !== 'H') msgs.push({ kind: 'H', bytes: H, text: 'H' });
    }
  }
  return { slot, msgs, sync, text: msgs.map((m) => m.text).join(' ') };
}

// --- reading and comparing ----------------------------------------------------------------------------

// Whether the direct session holds state that pins it in pgway, asked through a named statement and portal:
// a Query would drop the session's unnamed statement, which a later Bind of the client's may still name.
const PIN_CHECK = "SELECT (SELECT count(*) FROM pg_listening_channels()) + (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
  + " + (SELECT count(*) FROM pg_cursors WHERE is_holdable) + (SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relnamespace = pg_my_temp_schema()) AS st";
async function pinned(c: RawClient): Promise<boolean> {
  c.write(Buffer.concat([P('pm_pin_check', PIN_CHECK), B('pm_pin_check', [], 'pm_pin_check'), E('pm_pin_check', 0), C('S', 'pm_pin_check'), S]));
  const out: string[] = [];
  await readUpToReady(c, 1, out, 3000);
  return !out.includes('D:0');
}

interface Client { id: number; direct?: RawClient; via?: Login; viaRaw?: RawClient; holding: boolean; unsynced: boolean; status: string; model: Map<string, number> }
let knownStops = 0;
let stepsRun = 0;
type Next = (step: number, clients: (Client | undefined)[]) => Req | undefined;

async function runScript(mode: Mode, n: number, poolSize: number, next: Next, label: string): Promise<{ fail?: string; pgway?: string; reqs: Req[] }> {
  await makeTables();
  const gw = await gateway(mode, poolSize);
  await adminQuery(Array.from({ length: SLOTS }, (_, i) => `TRUNCATE pm_d_c${i}; TRUNCATE pm_g_c${i};`).join(' '));
  const directUrl = pgUrl(lab().primary, 'app', 'app-secret', 'app');
  let ids = 0;
  const mine: Login[] = [];
  const open = (url: string): Login => { const l = login(url); mine.push(l); opened.push(l); return l; };
  const newClient = (): Client => ({ id: ids++, via: open(gw.url()), holding: mode === 'session', unsynced: false, status: 'I', model: new Map() });
  const clients: (Client | undefined)[] = [];
  const queue: Client[] = []; // session mode: waiting at login
  const log: string[] = [];
  const reqs: Req[] = [];
  const fail = (why: string, pgway = why): { fail: string; pgway: string; reqs: Req[] } =>
    ({ fail: `${label} ${mode} n=${n} pool=${poolSize}: ${why}\n${log.map((l) => `  ${l}`).join('\n')}`, pgway, reqs });
  const admit = async (c: Client): Promise<string | undefined> => {
    const raw = await Promise.race([c.via!.ready, new Promise<undefined>((res) => setTimeout(() => res(undefined), 4000))]).catch((e: Error) => e);
    if (!raw || raw instanceof Error) return `client ${c.id} never logged in${raw ? `: ${raw.message}` : ''}`;
    c.viaRaw = raw;
    c.direct = await open(directUrl).ready;
    return undefined;
  };
  try {
    // one at a time, so that the clients past pool.size are the ones that wait
    for (let i = 0; i < n; i++) {
      const c = newClient();
      if (mode === 'session' && i >= poolSize) { queue.push(c); continue; }
      clients.push(c);
      const err = await admit(c); if (err) return fail(err);
    }
    for (let step = 0; ; step++) {
      const active = clients.map((c) => (c?.viaRaw ? c : undefined));
      const req = next(step, active);
      if (!req) break;
      reqs.push(req);
      stepsRun++;
      const c = active[req.slot];
      if (!c) return { reqs }; // a shrunk script may name a client that is still waiting
      if (mode !== 'session' && !c.holding && active.filter((x) => x?.holding).length >= poolSize) return { reqs }; // would wait on the test's own schedule
      // a session-mode client waiting at login has no connection to answer it with
      const early = queue.find((w) => w.via!.settled());
      if (early) return fail(`waiting client ${early.id} logged in while all connections were taken`);
      if (req.leave) {
        c.direct!.write(X); c.viaRaw!.write(X);
        log.push(`c${req.slot}: leaves`);
        if (mode === 'session') {
          // waiters whose logins overlapped may be served in either order: whichever pgway lets in takes the slot
          clients[req.slot] = undefined;
          if (queue.length) {
            const first = await Promise.race([...queue.map((w) => w.via!.ready.then(() => w, () => w)), new Promise<undefined>((res) => setTimeout(() => res(undefined), 4000))]);
            if (!first) return fail(`no waiting client logged in after c${req.slot} left`);
            queue.splice(queue.indexOf(first), 1);
            const err = await admit(first); if (err) return fail(err);
            clients[req.slot] = first;
          }
          queue.push(newClient());
        } else {
          const fresh = newClient();
          clients[req.slot] = fresh;
          const err = await admit(fresh); if (err) return fail(err);
        }
        continue;
      }
      const rebuild = (t: 'd' | 'g'): Buffer => Buffer.concat(req.msgs.map((m) => {
        if (m.kind !== 'Q' && m.kind !== 'P') return m.bytes;
        const body = m.bytes.subarray(5).toString('latin1').replaceAll('{T}', `pm_${t}_c${req.slot}`).replaceAll('{K}', `${c.id + 1}${t === 'd' ? 1 : 2}`);
        return typedMessage(m.kind, Buffer.from(body, 'latin1'));
      }));
      c.direct!.write(rebuild('d'));
      const want = await readReq(c.direct!, req).catch((e: Error) => ({ out: [`<timeout ${e.message}>`], status: undefined }));
      c.viaRaw!.write(rebuild('g'));
      const got = await readReq(c.viaRaw!, req).catch((e: Error) => ({ out: [`<timeout ${e.message}>`], status: undefined }));
      log.push(`c${req.slot}#${c.id}: ${req.text}\n      direct: ${want.out.join(' ')}`);
      if (want.out.some((o) => o.startsWith('<'))) return fail('direct timed out/closed');
      // README "Which error comes first": 42P05 before the text's own error; 25P02 before a Bind's own error in an aborted block
      const norm = (o: string[], w: string[]): string[] => mode === 'session' ? o : o.map((x, i) => ((x === 'E:42P05' && ['E:42601', 'E:42P01', 'E:25P02', 'E:42883'].includes(w[i]!)) || (x === 'E:25P02' && w[i] === 'E:08P01' && w[i + 1] === 'Z:E') ? w[i]! : x));
      const ng = norm(got.out, want.out);
      if (JSON.stringify(want.out) !== JSON.stringify(ng)) {
        const at = ng.findIndex((x, i) => x !== want.out[i]);
        if (mode !== 'session' && ng[at] === 'E:25P02' && (want.out[at] === 'E:08P01' || want.out[at]!.startsWith('t:'))) { knownStops++; return { reqs }; }
        // README "Unnamed statement": a Bind/Describe of it in a later request may get 26000 in transaction and statement modes
        // (a Parse of it earlier in the request may have been skipped after an error, so any Bind/Describe of it counts)
        const namesUnnamed = req.msgs.some((m) => (m.kind === 'B' || m.kind === 'DS') && /^(B\([^,]*,|DS\()[,)]/.test(m.text));
        if (mode !== 'session' && namesUnnamed && ng[at] === 'E:26000') { knownStops++; return { reqs }; }
        return fail(`step ${step}\n  PGWAY: ${got.out.join(' ')}`, got.out.join(' '));
      }
      c.unsynced = !req.sync;
      if (want.status) c.status = want.status;
      const pin = mode !== 'session' && req.sync && want.status === 'I' && await pinned(c.direct!);
      c.holding = mode === 'session' || pin || !req.sync || (want.status !== undefined && want.status !== 'I');
    }
    return { reqs };
  } finally {
    for (const l of mine) l.end();
  }
}

async function runSeed(mode: Mode, seed: number, steps: number): Promise<string | undefined> {
  const poolSize = 1 + (Math.floor(seed / 3) % 2);
  // session mode: one or two clients past pool.size, waiting at login
  const n = mode === 'session' ? poolSize + 1 + (seed % 2) : 2 + (seed % 3);
  const queryShare = seed % 2 === 0 ? 0.4 : 0.8;
  const r = new Rng(seed);
  const gen: Next = (step, clients) => {
    if (step >= steps) return undefined;
    const live = clients.map((c, i) => (c ? i : -1)).filter((i) => i >= 0);
    const holders = live.filter((i) => clients[i]!.holding);
    const slot = mode !== 'session' && holders.length >= poolSize ? r.pick(holders) : r.pick(live);
    const c = clients[slot]!;
    if (r.chance(0.05)) return { slot, msgs: [], sync: true, leave: true, text: 'leave' };
    const allowHold = mode === 'session' || c.holding || holders.length < poolSize;
    const req = genReq(r, mode, slot, allowHold, c.model, c.unsynced, queryShare);
    // PostgreSQL 18.4 itself crashed on an Execute in an aborted block: no Execute there
    if (c.status === 'E' || c.unsynced) { req.msgs = req.msgs.filter((m) => m.kind !== 'E'); req.text = req.msgs.map((m) => m.text).join(' '); }
    return req;
  };
  const res = await runScript(mode, n, poolSize, gen, `seed ${seed}`);
  if (res.fail && res.pgway !== undefined && process.env.FUZZ_SHRINK) {
    // Shrunk while pgway still diverges (a hang when shrinking with FUZZ_SHRINK=timeout).
    const cur = await shrinkRequests(res.reqs, async (cand) => {
      const t = await runScript(mode, n, poolSize, (st) => cand[st], 'shrink');
      return t.pgway !== undefined && (process.env.FUZZ_SHRINK === 'timeout' ? t.pgway.includes('<timeout') : !t.pgway.includes('<timeout'));
    });
    const t = await runScript(mode, n, poolSize, (st) => cur[st], `SHRUNK seed ${seed}`);
    return `${res.fail}\n\n${t.fail}`;
  }
  return res.fail;
}

const STEPS = Number(process.env.FUZZ_STEPS ?? 25);
const MODES = (process.env.FUZZ_MODE ? [process.env.FUZZ_MODE] : ['tx', 'tx0', 'session', 'statement']) as Mode[];

describe('differential wire fuzzer, pool modes', () => {
  for (const mode of MODES) {
    it(`${mode}: seeded scripts get the same answers through pgway as directly`, { timeout: seedsGiven() ? 3_600_000 : 60_000 }, async () => {
      const failures = await failingSeeds(fuzzSeeds(30), (seed) => runSeed(mode, seed, STEPS), () => `${mode} known stops: ${knownStops}, steps: ${stepsRun}`);
      expect(failures).toEqual([]);
    });
  }
});
