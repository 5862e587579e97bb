// Answers pgway writes a client itself, with no server bytes behind them, are held to the client's
// pace like the server's: a client inside a transaction that pipelines Close + Flush pairs (each
// Close answered by pgway, a CloseComplete; a Flush draws nothing from the server) and never reads is
// read no further once its answers fill the queue towards it, as PostgreSQL, blocked writing to it,
// stops reading it. Once it reads again, every answer arrives and its session goes on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { queryMessage, type RawClient } from './helpers/raw-client.js';
import { queuedTowardsClients, readEachMessage } from './helpers/stalled-clients.js';
import { C, H, S, cat, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const PAIRS_PER_CHUNK = 10_000;
const CHUNK = Buffer.concat(Array.from({ length: PAIRS_PER_CHUNK }, () => cat(C('S', 'x'), H))); // 130 KB; x was never prepared: pgway answers its Close itself
const CHUNKS = 500; // 65 MB of Close + Flush

async function stalledInTransaction(url: string): Promise<RawClient> {
  const c = await rawAfterLogin(url, (end) => ends.push(end));
  c.write(queryMessage('BEGIN'));
  await c.readUntil('Z'); // nothing is owed by the server from here on
  c.socket.removeAllListeners('data');
  c.socket.pause(); // never reads an answer
  for (let i = 0; i < CHUNKS; i++) c.socket.write(CHUNK);
  return c;
}

/**
 * Reads the client's answers from now on: counts CloseCompletes, and resolves with the status of the
 * first ReadyForQuery after `closes` of them (the one a Sync sent once they are in draws).
 */
function readAnswers(c: RawClient, closes: number, onCounted: () => void): Promise<{ closes: number; status: string }> {
  let seen = 0;
  return readEachMessage(c.socket, (type, last) => {
    if (type === '3' && ++seen === closes) onCounted();
    return type === 'Z' && seen >= closes ? { closes: seen, status: String.fromCharCode(last) } : undefined;
  });
}

describe('a client in a transaction pipelining Close + Flush without reading', () => {
  it('PostgreSQL stops reading it once its answers fill the socket', { timeout: 30_000 }, async () => {
    const c = await stalledInTransaction(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
    await sleep(4000);
    // At most the kernel's socket buffers were taken from the client: the rest is still unsent.
    expect(c.socket.writableLength).toBeGreaterThan(CHUNK.length * CHUNKS - 32 * 1024 * 1024);
    c.destroy();
  });

  it('pgway keeps what it queues towards the client bounded, and it gets every answer once it reads', { timeout: 90_000 }, async () => {
    const c = await stalledInTransaction(gw.url());
    const samples: number[] = [];
    for (let i = 0; i < 6; i++) {
      await sleep(1000);
      samples.push(queuedTowardsClients(gw));
    }
    // Unbounded, this grew for as long as the client sent (MBs a second); the link's high-water mark is 16 KB.
    expect(Math.max(...samples)).toBeLessThan(1024 * 1024);
    const answered = await readAnswers(c, PAIRS_PER_CHUNK * CHUNKS, () => c.write(S));
    expect(answered).toEqual({ closes: PAIRS_PER_CHUNK * CHUNKS, status: 'T' });
    c.destroy();
  });
});
