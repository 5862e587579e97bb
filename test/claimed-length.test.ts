// What a logged-in client's frame headers can make pgway allocate: a frame split across reads takes
// memory as its bytes arrive, not all at once from the length its header claims (a header claiming
// 60 MB, under max_message_bytes, and one byte of body cost 60 MB each before). A long frame that
// does arrive in many pieces is still put together whole.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { queryMessage, readCycle, type RawClient } from './helpers/raw-client.js';
import { rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const clients: RawClient[] = [];
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  await gw?.stop();
});

describe('logged-in clients each sending a Query header that claims 60 MB, and one byte', () => {
  it('do not make pgway allocate the claimed size for each of them', async () => {
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 5; i++) {
      const c = await rawAfterLogin(gw.url(), () => undefined);
      clients.push(c);
      const header = Buffer.alloc(6);
      header.write('Q', 0, 'latin1');
      header.writeInt32BE(60 * 1024 * 1024, 1);
      header[5] = 0x53; // 'S' of a SELECT that never comes
      c.write(header);
    }
    await new Promise((r) => setTimeout(r, 500));
    const grown = process.memoryUsage().arrayBuffers - before;
    // Claimed: 5 x 60 MB.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('a 1 MB Query sent in 1000 pieces', () => {
  it('is answered as one statement', async () => {
    const c = await rawAfterLogin(gw.url(), () => undefined);
    clients.push(c);
    const literal = 'x'.repeat(1024 * 1024);
    const frame = queryMessage(`SELECT length('${literal}') AS n, md5('${literal}') = md5(repeat('x', ${literal.length})) AS same`);
    const piece = Math.ceil(frame.length / 1000);
    for (let at = 0; at < frame.length; at += piece) {
      c.write(frame.subarray(at, at + piece));
      await new Promise((r) => setImmediate(r)); // each piece its own read, as far as the kernel lets it be
    }
    expect(await readCycle(c)).toEqual({ rows: [[String(literal.length), 't']], errors: [] });
  });
});
