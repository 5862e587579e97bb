// Found by review round 19 (B), and fixed: a client whose request is answered (ReadyForQuery 'I') is idle, so a
// CancelRequest it sends now is dropped by PostgreSQL, and the query it sends next runs (README: a
// cancel "goes only until the requests the client has sent so far are answered, never to one it
// sends once it has their answers"). Through pgway, when the client's last request left a pin the
// server is asked about (here: DROP TABLE of its last temporary table), pgway's own question may still
// be running on the client's connection: the cancel is held for "the client's turn", and once the
// question is answered it is sent on to the client's NEXT query, which fails with 57014.
// The question is kept running deterministically with the client's own settings: a SERIALIZABLE READ
// ONLY DEFERRABLE default transaction waits for a safe snapshot while another serializable
// transaction is open; the client's own statements use BEGIN ISOLATION LEVEL READ COMMITTED.
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { answers, Q, type Target } from './helpers/wire-script.js';
import { cancelRequestPacket, RawClient } from './helpers/raw-client.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2000 }' });
});
afterAll(async () => {
  await gw.stop();
});
const ends: (() => unknown)[] = [];
afterEach(async () => {
  for (const e of ends.splice(0).reverse()) await e();
});

interface Keyed { r: RawClient; pid: number; secret: number }

async function login(t: Target): Promise<Keyed> {
  const url = t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : t.url();
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const c = client as unknown as { connection: { stream: net.Socket }; processID: number; secretKey: number };
  const socket = c.connection.stream;
  socket.removeAllListeners('data');
  socket.setNoDelay(true);
  ends.push(() => socket.destroy());
  const Ctor = RawClient as unknown as new (s: net.Socket) => RawClient;
  return { r: new Ctor(socket), pid: c.processID, secret: c.secretKey };
}

/** Sends a CancelRequest with `k`'s key to `t`; resolves when that socket closes. */
async function cancel(t: Target, k: Keyed): Promise<void> {
  const addr = t === 'direct' ? lab().primary : { host: gw.host, port: gw.port };
  const s = net.connect(addr.port, addr.host);
  s.on('error', () => undefined);
  await new Promise<void>((res) => s.once('connect', () => res()));
  s.end(cancelRequestPacket(k.pid, k.secret));
  await new Promise<void>((res) => s.once('close', () => res()));
}

async function superuser(): Promise<pg.Client> {
  const l = lab();
  const c = new pg.Client({ ...l.primary, user: l.superuser, password: l.superuserPassword, database: l.database });
  c.on('error', () => undefined);
  await c.connect();
  ends.push(() => c.end().catch(() => undefined));
  return c;
}

const DEFAULTS = "SET default_transaction_isolation = 'serializable'; SET default_transaction_read_only = on; SET default_transaction_deferrable = on";
const RC = (sql: string): string => `BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE; ${sql}; COMMIT`;

async function run(t: Target, queryFirst = false): Promise<string[]> {
  const a = await login(t);
  a.r.write(Q(DEFAULTS));
  await answers(a.r, 1, 3000);
  a.r.write(Q(RC('CREATE TEMP TABLE rc_q (x int)')));
  await answers(a.r, 1, 3000);
  // An open serializable transaction: a deferrable read-only one waits for it to end.
  const blocker = await superuser();
  await blocker.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
  await blocker.query('SELECT 1');
  // The last temporary relation pgway knew of goes: pgway asks the server whether any is left.
  a.r.write(Q(RC('DROP TABLE rc_q')));
  expect((await answers(a.r, 1, 3000)).at(-1)).toBe('Z:I');
  if (t !== 'direct') {
    const probe = await superuser();
    await waitFor('pgway\'s question to wait for its snapshot', async () =>
      (await probe.query("SELECT 1 FROM pg_stat_activity WHERE usename = 'app' AND state = 'active' AND query LIKE '%pg_my_temp_schema%'")).rowCount === 1);
  }
  // The client is idle: it cancels (nothing to cancel), then sends its next query; or the other way round.
  let cancelled: Promise<void>;
  if (queryFirst) {
    a.r.write(Q(RC('SELECT 42 AS x FROM pg_sleep(0.4)')));
    await sleep(100);
    cancelled = cancel(t, a);
  } else {
    cancelled = cancel(t, a);
    await sleep(100);
    a.r.write(Q(RC('SELECT 42 AS x FROM pg_sleep(0.4)')));
  }
  await sleep(100);
  await blocker.query('COMMIT');
  const out = await answers(a.r, 1, 4000).catch((e: Error) => [`no answer: ${e.message}`]);
  await cancelled;
  return out;
}

describe('a cancel sent while the client is idle, during pgway\'s own question', () => {
  it('direct PostgreSQL: the cancel is dropped, the next query runs', async () => {
    expect(await run('direct')).toEqual(['C:BEGIN', 'T', 'D:42', 'C:SELECT 1', 'C:COMMIT', 'Z:I']);
  });

  it('through pgway: the same (the cancel must not reach the query sent after it)', async () => {
    expect(await run(gw)).toEqual(['C:BEGIN', 'T', 'D:42', 'C:SELECT 1', 'C:COMMIT', 'Z:I']);
  });
});

describe("a cancel sent after the client's next query, while that query waits behind pgway's own question", () => {
  it('direct PostgreSQL: the query is cancelled', async () => {
    expect(await run('direct', true)).toEqual(['C:BEGIN', 'T', 'E:57014', 'Z:E']);
  });

  it('through pgway: the same, once the query runs', async () => {
    expect(await run(gw, true)).toEqual(['C:BEGIN', 'T', 'E:57014', 'Z:E']);
  });
});
