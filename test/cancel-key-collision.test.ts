// Found by review round 30 A, and fixed: clients that draw the same secret are told apart by their pid.
// Review round 30 A. pgway keeps its clients' cancel keys in a Map keyed by the secret alone
// (src/gateway.ts registerCancelKey / cancel), though the (virtual) process id it hands out is the
// unique half. Two clients whose random 32-bit secrets happen to be equal (about N^2 / 2^33 for N
// clients: ~1% with 10,000 connected) share one entry: the later login replaces the earlier, so the
// earlier client's CancelRequest (right pid, right secret) finds the other session, fails the pid
// check and is dropped: its Ctrl-C never stops its statement. The collision is forced here by
// mocking the random source, so the test is deterministic.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { cancelRequestPacket } from './helpers/raw-client.js';
import { clientsOfEachTest, sqlstate } from './helpers/pg-helpers.js';

vi.mock('../src/wire/random-pool.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/wire/random-pool.js')>();
  return { ...real, randomUint32: (): number => 0x5eed5eed };
});

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

const testClients = clientsOfEachTest({ endWithinMs: 2000 });
const connect = (): Promise<pg.Client> => testClients.connect(gw.url());

function cancel(c: pg.Client): Promise<void> {
  const key = c as unknown as { processID: number; secretKey: number };
  return new Promise((resolve) => {
    const s = net.connect({ host: gw.host, port: gw.port }, () => s.end(cancelRequestPacket(key.processID, key.secretKey)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

describe('two clients whose cancel secrets are equal', () => {
  it('each one\'s CancelRequest (its own pid and secret) cancels its own statement', async () => {
    const a = await connect();
    const b = await connect();
    const ka = a as unknown as { processID: number; secretKey: number };
    const kb = b as unknown as { processID: number; secretKey: number };
    expect(ka.secretKey >>> 0).toBe(kb.secretKey >>> 0);
    expect(ka.processID).not.toBe(kb.processID);
    const started = Date.now();
    const running = a.query('SELECT pg_sleep(3)').then(() => 'ran', (e: unknown) => sqlstate(e));
    await new Promise((r) => setTimeout(r, 300));
    await cancel(a);
    const outcome = await running;
    expect({ outcome, fast: Date.now() - started < 2000 }).toEqual({ outcome: '57014', fast: true });
  });
});
