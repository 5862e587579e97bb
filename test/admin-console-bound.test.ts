// An admin that pipelines console statements and never reads the answers: the console answers them
// one after another, and once its answers fill the queue towards the admin (or more than a few dozen
// wait to be answered) the admin is read no further, as PostgreSQL, blocked writing to a client,
// stops reading it. What pgway queues for it stays bounded; once it reads, every answer arrives, in
// order, and other clients were served all along.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { queuedTowardsClients, readEachMessage } from './helpers/stalled-clients.js';
import { Q, rawAfterLogin } from './helpers/wire-script.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

const PER_CHUNK = 10_000;
const CHUNK = Buffer.concat(Array.from({ length: PER_CHUNK }, () => Q('SHOW VERSION'))); // 180 KB
const CHUNKS = 40; // 400,000 statements, about 29 MB of answers

describe('an admin console client pipelining statements without reading', () => {
  it('is read no further once its answers fill the queue, and gets every answer once it reads', { timeout: 90_000 }, async () => {
    const c = await rawAfterLogin(gw.url('admin', 'pgway'), (end) => ends.push(end));
    c.socket.removeAllListeners('data');
    c.socket.pause();
    for (let i = 0; i < CHUNKS; i++) c.socket.write(CHUNK);

    const samples: number[] = [];
    for (let i = 0; i < 4; i++) {
      await sleep(750);
      samples.push(queuedTowardsClients(gw));
    }
    // Unbounded, pgway read all 7 MB and queued the answers the kernel would not take (over 10 MB);
    // the link's high-water mark is 16 KB, plus the answers to what one read took.
    expect(Math.max(...samples)).toBeLessThan(1024 * 1024);

    // Another client is served meanwhile.
    const other = new pg.Client({ connectionString: gw.url() });
    await other.connect();
    try {
      expect((await other.query<{ n: number }>('SELECT 41 + 1 AS n')).rows[0]!.n).toBe(42);
    } finally {
      await other.end();
    }

    const counts = { completes: 0, ready: 0, errors: 0 };
    const seen = await readEachMessage(c.socket, (type) => {
      if (type === 'C') counts.completes++;
      if (type === 'E') counts.errors++;
      return type === 'Z' && ++counts.ready === PER_CHUNK * CHUNKS ? counts : undefined;
    });
    expect(seen).toEqual({ completes: PER_CHUNK * CHUNKS, ready: PER_CHUNK * CHUNKS, errors: 0 });
    c.destroy();
  });
});
