// Found by review rounds 23 C and 24 A, and fixed:
// A RESET of a startup setting committed by a COMMIT earlier in a query string whose later statement
// fails. The server reports the server default (ParameterStatus) when the RESET commits; PostgreSQL,
// whose RESET goes back to the startup value, reports nothing. pgway normally lays the startup value
// back on right after such a RESET (so the last value the client hears is right), but the error later
// in the same request makes it forget that it has to: the client's driver is left holding the server
// default while its statements run under its startup TimeZone.
// Review round 24 A: the fix then laid the startup value back over a SET committed after the RESET, on a
// connection the client keeps (pinned by LISTEN, or session mode); a direct session keeps the SET.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { dataRowValues, queryMessage, rawTrustLogin, type BackendMessage, type RawClient } from './helpers/raw-client.js';
import { rawAfterLogin } from './helpers/wire-script.js';
import { waitFor } from './helpers/pg-helpers.js';

let gw: TestGateway;
let session: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  session = await startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
  await session?.stop();
});
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

async function login(g = gw): Promise<{ c: RawClient; known: Map<string, string> }> {
  const l = await rawTrustLogin({ host: g.host, port: g.port }, { user: 'trustuser', database: 'app', TimeZone: ZONE });
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

const STEPS: Record<string, { sql: string; errors: number }> = {
  'RESET, COMMIT, SET, COMMIT, then an error': { sql: "RESET TimeZone; COMMIT; SET TimeZone = 'UTC'; COMMIT; SELECT 1/0", errors: 1 },
  'RESET then SET, no error': { sql: "RESET TimeZone; SET TimeZone = 'UTC'", errors: 0 },
};
const READ = "SELECT current_setting('TimeZone'), '2024-01-01 00:00:00+00'::timestamptz::text";
const UTC_READ = [['UTC', '2024-01-01 00:00:00+00']];

describe('a RESET then a SET of the same startup setting, both committed, on a connection the client keeps', () => {
  for (const [name, step] of Object.entries(STEPS)) {
    it(`${name}: direct PostgreSQL keeps the SET`, async () => {
      const c = await rawAfterLogin(`${pgUrl(lab().primary, 'app', 'app-secret', 'app')}?options=${encodeURIComponent(`-c TimeZone=${ZONE}`)}`, (e) => ends.push(e));
      await run(c, 'LISTEN reset_then_set_kept', new Map());
      expect((await run(c, step.sql, new Map())).errors.length).toBe(step.errors);
      expect((await run(c, READ, new Map())).rows).toEqual(UTC_READ);
    });

    it(`${name}: through pgway, a client pinned by LISTEN keeps the SET`, async () => {
      const { c } = await login();
      await run(c, 'LISTEN reset_then_set_kept', new Map());
      expect((await run(c, step.sql, new Map())).errors.length).toBe(step.errors);
      expect((await run(c, READ, new Map())).rows).toEqual(UTC_READ);
    });

    it(`${name}: through pgway in session mode, the client keeps the SET`, async () => {
      const { c } = await login(session);
      expect((await run(c, step.sql, new Map())).errors.length).toBe(step.errors);
      expect((await run(c, READ, new Map())).rows).toEqual(UTC_READ);
    });
  }
});
