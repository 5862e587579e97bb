// A client that vanishes (socket destroyed) with a COPY FROM STDIN of its own just sent, or just
// begun, does not hold up the server connection: the COPY is failed on the server (a CopyFail,
// and a Sync for one an Execute began), which answers at once, and the next client of a pool of
// one is served, as on a direct connection (where the backend sees EOF during the COPY). The COPY
// may begin only after the client left, while its connection is being cleaned (a slow statement
// ahead of it makes that certain), or before.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { B, cat, E, H, P, Q, S, rawAfterLogin, upTo } from './helpers/wire-script.js';

let gw: TestGateway; // pgway cases: one gateway each
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

beforeAll(async () => {
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS copy_vanish (v text)');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
});

async function nextClient(url: string): Promise<string> {
  const b = new pg.Client({ connectionString: url });
  b.on('error', () => undefined);
  try {
    await b.connect();
    const r = await b.query('SELECT 42 AS v');
    return `ok ${r.rows[0].v}`;
  } catch (e) {
    return `error ${(e as { code?: string }).code}`;
  } finally {
    await b.end().catch(() => undefined);
  }
}

// A slow statement first makes it certain that the COPY begins after the client left (pgway's
// reset cancels the pg_sleep; the COPY behind it then runs). Without it the same happens whenever
// the client's end reaches pgway before the server's CopyInResponse.
const SLOW = Q('SELECT pg_sleep(0.5)');
const COPY_EXTENDED = cat(P('', 'COPY copy_vanish FROM STDIN'), B(''), E(''));
const requests: [string, Buffer, string | undefined][] = [
  ['a slow Query, then a simple Query COPY FROM STDIN, pipelined', cat(SLOW, Q('COPY copy_vanish FROM STDIN')), undefined],
  ['a slow Query, then Parse/Bind/Execute/Sync of a COPY FROM STDIN, pipelined', cat(SLOW, COPY_EXTENDED, S), undefined],
  // The COPY began before the client left: the server waits for its data, and for a Sync after it.
  ['Parse/Bind/Execute/Flush of a COPY FROM STDIN, vanishing once it began', cat(COPY_EXTENDED, H), 'G'],
];

describe('client vanishing right after sending a COPY FROM STDIN (pool of 1)', () => {
  for (const [name, bytes, awaited] of requests) {
    for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
      it(`${target}: ${name}: the next client is served`, { timeout: 30_000 }, async () => {
        // A gateway of its own for each case: a connection stuck by one case must not fail the next.
        if (target === 'pgway') {
          gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
          // A first query lets the pool accept the client's settings, so the vanishing client's
          // request is written at once, not held for that verdict (and dropped with the client).
          expect(await nextClient(gw.url())).toBe('ok 42');
        }
        const a = await rawAfterLogin(url(), (end) => ends.push(end));
        a.write(bytes);
        if (awaited) await upTo(a, awaited);
        a.destroy();
        const got = await nextClient(url());
        if (target === 'pgway') void gw.stop().catch(() => undefined);
        expect(got).toBe('ok 42');
      });
    }
  }
});
