// Found by review rounds 23 C and 24 A, and fixed:
// A SET committed earlier in a query string that goes on into a transaction block where the same
// setting is changed locally (SET LOCAL), or by a SET that is then rolled back. PostgreSQL reports
// (ParameterStatus) the value in force when the query string ends, inside the open block: the local
// one. pgway applies the committed SET at the end of the request and keeps "the value the server
// reported for it" (SessionState.apply: reportedValue(server.params, ...)), which is the later,
// transaction-local value: once the block ends, pgway lays that value on the client's next
// connection, where a direct session has the committed one.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest, errorOf, onAnotherConnection } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (): Promise<pg.Client> => testClients.connect(gw.url('app'));
const direct = (): Promise<pg.Client> => testClients.connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));

const READ = `SELECT current_setting('TimeZone') AS tz, '2024-01-01 00:00:00+00'::timestamptz::text AS ts, current_setting('search_path') AS sp, pg_backend_pid() AS pid`;
const pick = (r: { tz: string; ts: string; sp: string }): { tz: string; ts: string; sp: string } => ({ tz: r.tz, ts: r.ts, sp: r.sp });

const CASES: Record<string, string[]> = {
  'SET LOCAL, then COMMIT': [
    "SET TimeZone = 'Asia/Tokyo'; SET search_path = pg_catalog, public; COMMIT; BEGIN; SET LOCAL TimeZone = 'America/New_York'; SET LOCAL search_path = public",
    'COMMIT',
  ],
  'SET, then ROLLBACK': [
    "SET TimeZone = 'Asia/Tokyo'; SET search_path = pg_catalog, public; COMMIT; BEGIN; SET TimeZone = 'America/New_York'; SET search_path = public",
    'ROLLBACK',
  ],
};

describe('a SET committed in a query string that then opens a block changing the same setting', () => {
  it('SET LOCAL of a reported setting that does not change how statements read (application_name), then COMMIT', async () => {
    const steps = ["SET application_name = 'committed'; COMMIT; BEGIN; SET LOCAL application_name = 'local'", 'COMMIT'];
    const readName = "SELECT current_setting('application_name') AS n, pg_backend_pid() AS pid";
    const d = await direct();
    for (const sql of steps) expect(await errorOf(d.query(sql)), sql).toBeUndefined();
    expect((await d.query(readName)).rows[0]!.n).toBe('committed');

    const [a, h1, h2] = [await connect(), await connect(), await connect()];
    for (const sql of steps) expect(await errorOf(a.query(sql)), sql).toBeUndefined();
    const hereRow = (await a.query(readName)).rows[0]!;
    const there = await onAnotherConnection(hereRow.pid, [h1, h2], async () => (await a.query(readName)).rows[0]!.n as string);
    expect({ here: hereRow.n, there }).toEqual({ here: 'committed', there: 'committed' });
  });


  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the committed value is what the client has afterwards, on any connection, as on a direct connection`, async () => {
      const d = await direct();
      for (const sql of steps) expect(await errorOf(d.query(sql)), sql).toBeUndefined();
      const want = pick((await d.query(READ)).rows[0]!);
      expect(want).toEqual({ tz: 'Asia/Tokyo', ts: '2024-01-01 09:00:00+09', sp: 'pg_catalog, public' });

      const [a, h1, h2] = [await connect(), await connect(), await connect()];
      for (const sql of steps) expect(await errorOf(a.query(sql)), sql).toBeUndefined();
      const hereRow = (await a.query(READ)).rows[0]!;
      const there = await onAnotherConnection(hereRow.pid, [h1, h2], async () => pick((await a.query(READ)).rows[0]!));
      expect({ here: pick(hereRow), there }).toEqual({ here: want, there: want });
    });
  }
});

// Review round 24 A: the fix above kept each such SET's text, also where the value the server reported
// was right (the later change over by the end of the request), and for DateStyle the two differ: `SET
// DateStyle = 'ISO'` keeps the date order set before (the server stores 'ISO, DMY'), while 'ISO' alone,
// laid on after RESET ALL, means 'ISO, MDY'. The text now stands only while the transaction is open.

const READ_DATESTYLE = `SELECT current_setting('DateStyle') AS ds, '03/04/2024'::date::text AS d, pg_backend_pid() AS pid`;
const pickDate = (r: { ds: string; d: string }): { ds: string; d: string } => ({ ds: r.ds, d: r.d });

const DATESTYLE_CASES: Record<string, string[]> = {
  'SET, then SET LOCAL of it in the same query string': ["SET DateStyle = 'SQL, DMY'", "SET DateStyle = 'ISO'; SET LOCAL DateStyle = 'German'"],
  'SET, COMMIT, then a block that SETs it LOCAL': ["SET DateStyle = 'SQL, DMY'", "SET DateStyle = 'ISO'; COMMIT; BEGIN; SET LOCAL DateStyle = 'Postgres'", 'COMMIT'],
};

describe('SET DateStyle = ISO (keeps the order set before), changed again later in its request', () => {
  for (const [name, steps] of Object.entries(DATESTYLE_CASES)) {
    it(`${name}: the client keeps 'ISO, DMY' on every connection, as on a direct connection`, async () => {
      const d = await direct();
      for (const sql of steps) expect(await errorOf(d.query(sql)), sql).toBeUndefined();
      const want = pickDate((await d.query(READ_DATESTYLE)).rows[0]!);
      expect(want).toEqual({ ds: 'ISO, DMY', d: '2024-04-03' });

      const [a, h1, h2] = [await connect(), await connect(), await connect()];
      for (const sql of steps) expect(await errorOf(a.query(sql)), sql).toBeUndefined();
      const hereRow = (await a.query(READ_DATESTYLE)).rows[0]!;
      const there = await onAnotherConnection(hereRow.pid, [h1, h2], async () => pickDate((await a.query(READ_DATESTYLE)).rows[0]!));
      expect({ here: pickDate(hereRow), there }).toEqual({ here: want, there: want });
    });
  }
});
