// Found by review round 24 A, and fixed:
// Review A (227b019, unreportEarlier): a SET changed again later in its own request keeps the text it
// was given ("unreported"), not the value the server stored. For DateStyle the two differ: `SET
// DateStyle = 'ISO'` keeps the date order set before (the server stores 'ISO, DMY'), and pgway lays
// 'ISO' alone on the client's next connection, after RESET ALL, where it means 'ISO, MDY': the client's
// dates are read the other way round.
// Case 1 passes before 227b019 (a regression: the SET LOCAL ends with the query string's implicit block,
// and the value the server reported at the end was the committed one); case 2 failed before it otherwise
// (the local value was kept).
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

const READ = `SELECT current_setting('DateStyle') AS ds, '03/04/2024'::date::text AS d, pg_backend_pid() AS pid`;
const pick = (r: { ds: string; d: string }): { ds: string; d: string } => ({ ds: r.ds, d: r.d });

const CASES: Record<string, string[]> = {
  'SET, then SET LOCAL of it in the same query string': ["SET DateStyle = 'SQL, DMY'", "SET DateStyle = 'ISO'; SET LOCAL DateStyle = 'German'"],
  'SET, COMMIT, then a block that SETs it LOCAL': ["SET DateStyle = 'SQL, DMY'", "SET DateStyle = 'ISO'; COMMIT; BEGIN; SET LOCAL DateStyle = 'Postgres'", 'COMMIT'],
};

describe('SET DateStyle = ISO (keeps the order set before), changed again later in its request', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(`${name}: the client keeps 'ISO, DMY' on every connection, as on a direct connection`, async () => {
      const d = await direct();
      for (const sql of steps) expect(await errorOf(d.query(sql)), sql).toBeUndefined();
      const want = pick((await d.query(READ)).rows[0]!);
      expect(want).toEqual({ ds: 'ISO, DMY', d: '2024-04-03' });

      const [a, h1, h2] = [await connect(), await connect(), await connect()];
      for (const sql of steps) expect(await errorOf(a.query(sql)), sql).toBeUndefined();
      const hereRow = (await a.query(READ)).rows[0]!;
      const there = await onAnotherConnection(hereRow.pid, [h1, h2], async () => pick((await a.query(READ)).rows[0]!));
      expect({ here: pick(hereRow), there }).toEqual({ here: want, there: want });
    });
  }
});
