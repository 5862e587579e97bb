// A client ends its session (Terminate, or a frame of a type PostgreSQL ends the session for)
// right behind a COPY FROM STDIN begun by an extended-protocol Execute and ended by CopyDone, with
// no Sync after the CopyDone, all in one write. As on a direct connection, the COPY runs
// (ParseComplete, BindComplete, CopyInResponse...), its implicit transaction is aborted (no row),
// the client hears FATAL 08P01 for the bad frame, and the connection closes; the server
// connection it took is free again for the next client.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { answersWithin, typedMessage } from './helpers/raw-client.js';
import { B, cat, COPY_DONE, copyData, E, P, Q, S, X, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const BAD = typedMessage('z', Buffer.from('abc'));
const COPY = cat(P('', 'COPY copy_session_end FROM STDIN'), B(''), E(''));

const rowsOf = async (who: string): Promise<number> =>
  (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM copy_session_end WHERE v = $1', [who])).rows[0]!.n;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2500 }' });
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS copy_session_end (v text)');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

const targets = [['direct', direct], ['pgway', () => gw.url()]] as const;

// pgway answers what the COPY's Execute owes before it closes the client, as it does for any Execute
// left without a Sync: after a Terminate that is also the CommandComplete, which PostgreSQL leaves
// unsent (see README, Known differences: Leaving).
const ENDINGS = [
  [X, 'Terminate', ['1', '2', 'G'], ['1', '2', 'G', 'C']],
  [BAD, 'a frame of unknown type', ['1', '2', 'G', 'C', 'FATAL 08P01'], ['1', '2', 'G', 'C', 'FATAL 08P01']],
] as const;

describe.each([
  ['idle', false],
  ['inside a transaction block (the client keeps its server connection)', true],
])('Parse/Bind/Execute of COPY FROM STDIN, CopyData, CopyDone and the end of the session in one write (no Sync), %s', (_where, inBlock) => {
  for (const [ender, name, expected, throughPgway] of ENDINGS) {
    it(`followed by ${name}: answered, then the connection closes (no row)`, { timeout: 15_000 }, async () => {
      const out: Record<string, unknown> = {};
      for (const [target, url] of targets) {
        const who = `${target}-${inBlock ? 'block' : 'idle'}-${name}`;
        const c = await rawAfterLogin(url(), (end) => ends.push(end));
        if (inBlock) {
          c.write(Q('BEGIN'));
          await c.readUntil('Z');
        }
        c.write(cat(COPY, copyData(`${who}\n`), COPY_DONE, ender));
        out[target] = { answers: await answersWithin(c, 2000), rows: await rowsOf(who) };
      }
      expect(out.direct).toEqual({ answers: expected, rows: 0 });
      expect(out.pgway).toEqual({ answers: throughPgway, rows: 0 });
    });
  }
});

describe('the same with a Sync before the COPY data (ignored by the server during the COPY)', () => {
  it('followed by a frame of unknown type while another client waits for the one connection: that client is served', { timeout: 15_000 }, async () => {
    const out: Record<string, unknown> = {};
    for (const [target, url] of targets) {
      const who = `${target}-sync-bad`;
      const a = await rawAfterLogin(url(), (end) => ends.push(end));
      const b = await rawAfterLogin(url(), (end) => ends.push(end));
      a.write(cat(COPY, S, copyData(`${who}\n`), COPY_DONE, BAD));
      const aGot = await answersWithin(a, 1500);
      b.write(Q('SELECT 7'));
      const bGot = await answersWithin(b, 3500);
      out[target] = { a: aGot, b: bGot, rows: await rowsOf(who) };
    }
    expect(out.direct).toEqual({ a: ['1', '2', 'G', 'C', 'FATAL 08P01'], b: ['T', 'D', 'C', 'Z', '<open>'], rows: 0 });
    expect(out.pgway).toEqual(out.direct);
  });
});
