// (Regression test; the failure below is fixed.)
// A client in COPY FROM STDIN (begun by a simple Query) ends the COPY (CopyDone, or CopyFail) and
// says Terminate in the same write, as a loader does that finishes (or aborts) its COPY and quits
// without reading the answer. PostgreSQL ends the COPY (commits it / answers 57014), then reads the
// Terminate and closes the session: nobody else is touched.
// pgway (RequestFlow.onTerminate) sees the server "in COPY" and the held frames not "complete"
// (CopyDone/CopyFail are not request ends), so it forwards the Terminate to the server: the COPY
// ends, the server answers ReadyForQuery and then exits. pgway takes the ReadyForQuery as the end of
// the client's request, gives the connection back to the pool ('rollback' release: nothing to do,
// so it is put back at once), and the backend then goes away under the next client, which gets
// FATAL 08006 "server connection lost" for a plain SELECT (deterministic when it was already
// waiting in the pool's queue; a client arriving just after is hit too, racily).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { answersWithin } from './helpers/raw-client.js';
import { cat, COPY_DONE, copyData, copyFail, Q, X, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const rowsOf = async (who: string): Promise<number> =>
  (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM copy_end_terminate WHERE v = $1', [who])).rows[0]!.n;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS copy_end_terminate (v text)');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

const endings = [
  ['CopyDone', (who: string) => cat(copyData(`${who}\n`), COPY_DONE), ['C', 'Z'], 1],
  ['CopyFail', (who: string) => cat(copyData(`${who}\n`), copyFail('loader aborted')), ['ERROR 57014', 'Z'], 0],
] as const;

describe('COPY FROM STDIN ended and Terminate in the same write (transaction mode, pool of 1)', () => {
  for (const [name, ending, answers, rows] of endings) {
    it(`direct: ${name} + Terminate: the COPY ends as usual, then the session closes`, async () => {
      const who = `direct-${name}`;
      const a = await rawAfterLogin(direct(), (end) => ends.push(end));
      a.write(Q('COPY copy_end_terminate FROM STDIN'));
      await a.readUntil('G');
      a.write(cat(ending(who), X));
      expect(await answersWithin(a, 3000)).toEqual(answers);
      expect(await rowsOf(who)).toBe(rows);
    });

    it(`pgway: ${name} + Terminate while another client waits for the connection: that client is served`, async () => {
      const who = `pgway-waiting-${name}`;
      const a = await rawAfterLogin(gw.url(), (end) => ends.push(end));
      const b = await rawAfterLogin(gw.url(), (end) => ends.push(end));
      a.write(Q('COPY copy_end_terminate FROM STDIN'));
      await a.readUntil('G');
      b.write(Q('SELECT 43'));
      await sleep(200); // b waits in the pool's queue
      a.write(cat(ending(who), X));
      expect(await answersWithin(a, 3000)).toEqual(answers);
      expect(await rowsOf(who)).toBe(rows);
      // pgway: ['FATAL 08006']
      expect(await answersWithin(b, 3000)).toEqual(['T', 'D', 'C', 'Z', '<open>']);
    });
  }
});
