// A client whose server is busy (a long statement ended by Flush, inside a transaction) and that
// pipelines messages pgway answers itself (Close of a statement never prepared: a CloseComplete
// with no server bytes behind it) cannot have pgway take its bytes for as long as it sends: each
// such answer waits its turn behind the server's, one slot each in the connection's expected-response
// FIFO. PostgreSQL, running the statement, reads nothing meanwhile; pgway reads no further once the
// server owes that client more answers than its bound. Once the statement ends, every answer arrives,
// in order, and the session goes on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { queryMessage, type RawClient } from './helpers/raw-client.js';
import { readEachMessage } from './helpers/stalled-clients.js';
import { B, C, COPY_DONE, E, H, P, Q, S, answers, cat, copyData, rawAfterLogin, rawTargets, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
beforeAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS ob_copy');
  await adminQuery('CREATE TABLE ob_copy (a int)');
  await adminQuery('GRANT ALL ON ob_copy TO app');
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS ob_copy');
});
const { raw } = rawTargets();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const SLEEP_S = 4;
const CLOSES_PER_CHUNK = 10_000;
const CHUNK = Buffer.concat(Array.from({ length: CLOSES_PER_CHUNK }, () => C('S', 'x'))); // 80 KB; x was never prepared
const CHUNKS = 400; // 32 MB of Close, 4 million messages
const TOTAL = CHUNK.length * CHUNKS;

/** Logs in, opens a transaction, starts a statement that runs SLEEP_S seconds, then sends every Close without reading. */
async function busyServerBehind(url: string): Promise<RawClient> {
  const c = await rawAfterLogin(url, (end) => ends.push(end));
  c.write(queryMessage('BEGIN'));
  await c.readUntil('Z');
  c.socket.removeAllListeners('data');
  c.socket.pause(); // reads nothing until the statement is over
  c.socket.write(cat(P('', `SELECT pg_sleep(${SLEEP_S})`), B(''), E(''), H));
  for (let i = 0; i < CHUNKS; i++) c.socket.write(CHUNK);
  return c;
}

/** Bytes the other side took from the client: everything written but what its socket still holds. */
const taken = (c: RawClient): number => TOTAL - c.socket.writableLength;

/** Reads the answers from now on: the count of CloseCompletes and rows, and the status of the ReadyForQuery after them. */
function readAnswers(c: RawClient, closes: number): Promise<{ closes: number; rows: number; status: string }> {
  let seen = 0;
  let rows = 0;
  return readEachMessage(c.socket, (type, last) => {
    if (type === 'E') return { closes: seen, rows, status: 'ErrorResponse' };
    if (type === 'D') rows++;
    if (type === '3' && ++seen === closes) c.socket.write(S);
    return type === 'Z' ? { closes: seen, rows, status: String.fromCharCode(last) } : undefined;
  });
}

describe('a client pipelining answers pgway gives itself behind a busy server', () => {
  it('PostgreSQL reads none of them while its statement runs', { timeout: 30_000 }, async () => {
    const c = await busyServerBehind(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
    await sleep((SLEEP_S - 1) * 1000);
    // At most the kernel's socket buffers were taken from the client (about 4 MB here).
    expect(taken(c)).toBeLessThan(16 * 1024 * 1024);
    c.destroy();
  });

  it('pgway reads no further past its bound, and every answer arrives once the statement ends', { timeout: 90_000 }, async () => {
    const c = await busyServerBehind(gw.url());
    await sleep((SLEEP_S - 1) * 1000);
    // Unbounded, pgway took all 32 MB (4 million answers owed); at the bound it takes about what the kernel holds.
    expect(taken(c)).toBeLessThan(16 * 1024 * 1024);
    const answered = await readAnswers(c, CLOSES_PER_CHUNK * CHUNKS);
    expect(answered).toEqual({ closes: CLOSES_PER_CHUNK * CHUNKS, rows: 1, status: 'T' });
    c.destroy();
  });
});

describe('a COPY FROM STDIN with more Syncs than the bound sent before its data', () => {
  // The server ignores Syncs inside a COPY, but pgway counts them as owed until it hears the COPY
  // began: the client, paused at the bound, must be read again then, for the data the server waits for.
  it('is read again once the COPY begins, as on a direct connection', { timeout: 30_000 }, async () => {
    const run = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      const syncs = Buffer.concat(Array.from({ length: 40_000 }, () => S));
      r.write(cat(Q('COPY ob_copy (a) FROM STDIN'), syncs, copyData('7\n'), COPY_DONE, Q('SELECT count(*) FROM ob_copy')));
      const out = await answers(r, 2, 10_000).catch((err: Error) => [`no answer: ${err.message}`]);
      await adminQuery('DELETE FROM ob_copy');
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual(['G', 'C:COPY 1', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(gw)).toEqual(direct);
  });
});
