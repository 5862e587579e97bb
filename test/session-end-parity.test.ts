// (Regression tests; the failures noted are fixed.) How a client's session ends on Terminate or on
// a frame PostgreSQL ends the session for, compared with PostgreSQL: what the client sent before
// still runs and is answered, including a COPY its frames end and an Execute without a Sync
// (PostgreSQL commits a COMMIT when its Execute completes, Sync or not).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { answersWithin, typedMessage } from './helpers/raw-client.js';
import { B, cat, COPY_DONE, copyData, E, P, Q, X, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const BAD = typedMessage('z', Buffer.from('abc'));

const rowsOf = async (who: string): Promise<number> =>
  (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM session_end_rows WHERE v = $1', [who])).rows[0]!.n;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS session_end_rows (v text)');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
  describe(`${target}: a request, then one byte that is no message type`, () => {
    it('the request is answered, then FATAL 08P01 and the connection closes', async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(Q('SELECT 1'), Buffer.from('z')));
      // pgway checked the type only once the 5-byte header was whole: ['T', 'D', 'C', 'Z', '<open>']
      expect(await answersWithin(c, 2000)).toEqual(['T', 'D', 'C', 'Z', 'FATAL 08P01']);
    });
  });

  describe(`${target}: a COPY FROM STDIN finished by CopyDone in the same write as the end of the session`, () => {
    it('COPY under way; last CopyData + CopyDone + a frame of unknown type: the rows are committed, then FATAL 08P01', async () => {
      const who = `${target}-done-bad`;
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(Q('COPY session_end_rows FROM STDIN'));
      await c.readUntil('G');
      c.write(cat(copyData(`${who}\n`), COPY_DONE, BAD));
      // pgway dropped the CopyData and CopyDone as an unfinished tail: ['FATAL 08P01'] and no row
      expect(await answersWithin(c, 3000)).toEqual(['C', 'Z', 'FATAL 08P01']);
      expect(await rowsOf(who)).toBe(1);
    });

    it('Query COPY + CopyData + CopyDone + Terminate in one write: the rows are committed', async () => {
      const who = `${target}-all-x`;
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(Q('COPY session_end_rows FROM STDIN'), copyData(`${who}\n`), COPY_DONE, X));
      // pgway: ['G'] and no row
      expect(await answersWithin(c, 3000)).toEqual(['G', 'C', 'Z']);
      expect(await rowsOf(who)).toBe(1);
    });

    it('Query COPY + CopyData + CopyDone + a frame of unknown type in one write: the rows are committed, then FATAL 08P01', async () => {
      const who = `${target}-all-bad`;
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(Q('COPY session_end_rows FROM STDIN'), copyData(`${who}\n`), COPY_DONE, BAD));
      // pgway: ['G', 'FATAL 08P01'] and no row
      expect(await answersWithin(c, 3000)).toEqual(['G', 'C', 'Z', 'FATAL 08P01']);
      expect(await rowsOf(who)).toBe(1);
    });
  });

  describe(`${target}: BEGIN; INSERT; then Parse/Bind/Execute of COMMIT without Sync, and the session ends`, () => {
    for (const [name, ender] of [['Terminate', X], ['a frame of unknown type', BAD]] as const) {
      it(`followed by ${name} in the same write: the transaction is committed`, async () => {
        const who = `${target}-${name}`;
        const c = await rawAfterLogin(url(), (end) => ends.push(end));
        c.write(Q(`BEGIN; INSERT INTO session_end_rows VALUES ('${who}')`));
        await c.readUntil('Z');
        c.write(cat(P('', 'COMMIT'), B(''), E(''), ender));
        await answersWithin(c, 3000);
        // pgway dropped the COMMIT and rolled the transaction back: 0
        expect(await rowsOf(who)).toBe(1);
      });
    }
  });
}

describe('a Query and a frame of unknown type in one write', () => {
  it('pooled database: the query is answered, then FATAL 08P01', async () => {
    const c = await rawAfterLogin(gw.url(), (end) => ends.push(end));
    c.write(cat(Q('SELECT 1'), BAD));
    expect(await answersWithin(c, 2000)).toEqual(['T', 'D', 'C', 'Z', 'FATAL 08P01']);
  });

  it('admin console: the same (SHOW VERSION answered, then FATAL 08P01)', async () => {
    const c = await rawAfterLogin(gw.url('admin', 'pgway'), (end) => ends.push(end));
    c.write(cat(Q('SHOW VERSION'), BAD));
    // pgway ended the console's client at once, its answer never sent: ['FATAL 08P01']
    expect(await answersWithin(c, 2000)).toEqual(['T', 'D', 'C', 'Z', 'FATAL 08P01']);
  });
});
