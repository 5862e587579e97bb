// Found by review round 23 C, and fixed:
// A RESET of a startup setting committed by a COMMIT earlier in a query string whose later statement
// fails. The server reports the server default (ParameterStatus) when the RESET commits; PostgreSQL,
// whose RESET goes back to the startup value, reports nothing. pgway normally lays the startup value
// back on right after such a RESET (so the last value the client hears is right), but the error later
// in the same request makes it forget that it has to: the client's driver is left holding the server
// default while its statements run under its startup TimeZone.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { dataRowValues, queryMessage, rawTrustLogin, type BackendMessage, type RawClient } from './helpers/raw-client.js';
import { rawAfterLogin } from './helpers/wire-script.js';
import { waitFor } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const raws: RawClient[] = [];
const ends: (() => void)[] = [];
afterEach(() => {
  for (const c of raws.splice(0)) c.destroy();
  for (const e of ends.splice(0)) e();
});

const ZONE = 'Asia/Tokyo';

function reported(messages: BackendMessage[], into: Map<string, string>): void {
  for (const m of messages) {
    if (m.type !== 'S') continue;
    const [name, value] = m.body.toString('utf8').split('\0');
    into.set(name!, value!);
  }
}

async function run(c: RawClient, sql: string, known: Map<string, string>): Promise<{ rows: (string | null)[][]; errors: string[] }> {
  c.write(queryMessage(sql));
  const { before } = await c.readUntil('Z');
  reported(before, known);
  return {
    rows: before.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)),
    errors: before.filter((m) => m.type === 'E').map(() => 'E'),
  };
}

async function login(): Promise<{ c: RawClient; known: Map<string, string> }> {
  const l = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', TimeZone: ZONE });
  raws.push(l.client);
  const known = new Map<string, string>();
  reported(l.messages, known);
  return { c: l.client, known };
}

const STEP = 'RESET TimeZone; COMMIT; SELECT 1/0';

describe('ParameterStatus after a committed RESET of a startup setting, in a query string that then fails', () => {
  it('direct PostgreSQL: the client is never told another TimeZone than the one SHOW gives', async () => {
    const c = await rawAfterLogin(`${pgUrl(lab().primary, 'app', 'app-secret', 'app')}?options=${encodeURIComponent(`-c TimeZone=${ZONE}`)}`, (e) => ends.push(e));
    const known = new Map([['TimeZone', ZONE]]);
    expect((await run(c, STEP, known)).errors).toEqual(['E']);
    const shown = (await run(c, 'SHOW TimeZone', known)).rows;
    expect(shown).toEqual([[ZONE]]);
    expect(known.get('TimeZone')).toBe(ZONE);
  });

  it('through pgway (pool of 2): the last TimeZone reported is the one SHOW gives, on whichever connection', async () => {
    const { c, known } = await login();
    expect(known.get('TimeZone')).toBe(ZONE);
    // A second client with the same settings, to hold a connection without changing what it holds.
    const { c: holder } = await login();
    const pid = async (x: RawClient): Promise<string> => (await run(x, 'SELECT pg_backend_pid()', new Map())).rows[0]![0]!;
    const first = await pid(c); // c's settings laid on connection 1
    await run(holder, 'BEGIN', new Map()); // LIFO: the holder takes connection 1
    expect(await pid(holder)).toBe(first);
    // c runs on connection 2
    const r = await run(c, STEP, known);
    expect(r.errors).toEqual(['E']);
    // pgway lays c's settings on connection 2 again after the step: it is back in the pool first.
    await waitFor('connection 2 back in the pool', () => gw.gateway.pools().some((p) => p.serversIdle === 1), 3000);
    await run(holder, 'COMMIT', new Map()); // connection 1 is the last given back: c gets it next
    const shown = await run(c, 'SELECT current_setting(\'TimeZone\'), pg_backend_pid()', known);
    expect(shown.rows[0]![1]).toBe(first);
    expect(shown.rows[0]![0]).toBe(ZONE);
    // what the client's driver now believes TimeZone is
    expect(known.get('TimeZone')).toBe(ZONE);
  });

  it('direct PostgreSQL, a session that LISTENs: SHOW TimeZone gives the startup value after the step', async () => {
    const c = await rawAfterLogin(`${pgUrl(lab().primary, 'app', 'app-secret', 'app')}?options=${encodeURIComponent(`-c TimeZone=${ZONE}`)}`, (e) => ends.push(e));
    const known = new Map([['TimeZone', ZONE]]);
    await run(c, 'LISTEN reset_then_error', known);
    expect((await run(c, STEP, known)).errors).toEqual(['E']);
    expect((await run(c, 'SHOW TimeZone', known)).rows).toEqual([[ZONE]]);
    expect((await run(c, "SELECT '2024-01-01 00:00:00+00'::timestamptz::text", known)).rows).toEqual([['2024-01-01 09:00:00+09']]);
  });

  it('through pgway, a client pinned by LISTEN: SHOW TimeZone gives the startup value after the step', async () => {
    const { c, known } = await login();
    await run(c, 'LISTEN reset_then_error', known);
    expect((await run(c, STEP, known)).errors).toEqual(['E']);
    expect((await run(c, 'SHOW TimeZone', known)).rows).toEqual([[ZONE]]);
    expect((await run(c, "SELECT '2024-01-01 00:00:00+00'::timestamptz::text", known)).rows).toEqual([['2024-01-01 09:00:00+09']]);
    expect(known.get('TimeZone')).toBe(ZONE);
  });
});
