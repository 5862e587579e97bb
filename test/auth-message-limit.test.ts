// What a client that has not authenticated can make pgway allocate. PostgreSQL caps a message
// during authentication at PG_MAX_AUTH_TOKEN_LENGTH (65535 bytes) and refuses a longer one at once;
// pgway did take the 5-byte header of a password message claiming up to max_message_bytes (64 MB by
// default) and allocate the whole frame before a byte of its body had arrived.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab } from './harness/lab.js';
import { errorFields, RawClient, startupPacket } from './helpers/raw-client.js';

const CLAIMED = 60 * 1024 * 1024;
const passwordHeader = (): Buffer => {
  const b = Buffer.alloc(5);
  b.write('p', 0, 'latin1');
  b.writeInt32BE(CLAIMED, 1);
  return b;
};

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }', yaml: 'limits: { startup_timeout_ms: 20000 }' });
});
afterAll(() => gw?.stop());

describe('a password message claiming 60 MB from a client that has not logged in', () => {
  it('is refused at once, as PostgreSQL refuses it', async () => {
    const out: Record<string, string> = {};
    for (const [t, address] of [['direct', lab().primary], ['pgway', { host: gw.host, port: gw.port }]] as const) {
      const c = await RawClient.connect(address);
      c.write(startupPacket({ user: 'app', database: 'app' }));
      const challenge = await c.readMessage();
      expect(challenge?.type).toBe('R');
      c.write(passwordHeader());
      try {
        const m = await c.readMessage(3000);
        out[t] = m?.type === 'E' ? `E ${errorFields(m.body).get('C')}` : m ? m.type : 'closed';
      } catch {
        out[t] = 'no answer'; // pgway: waits for the 60 MB (until startup_timeout)
      }
      c.destroy();
    }
    expect(out.direct).toMatch(/^(E .*|closed)$/);
    expect(out.pgway).not.toBe('no answer');
  });

  it('does not make pgway allocate the claimed size for each such client', async () => {
    const clients: RawClient[] = [];
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    try {
      for (let i = 0; i < 10; i++) {
        const c = await RawClient.connect({ host: gw.host, port: gw.port });
        clients.push(c);
        c.write(startupPacket({ user: 'app', database: 'app' }));
        await c.readMessage(); // AuthenticationSASL
        c.write(passwordHeader());
      }
      await new Promise((r) => setTimeout(r, 300));
      const grown = process.memoryUsage().arrayBuffers - before;
      // 10 clients, 5 bytes each: pgway holds ~600 MB for them (10 x 60 MB, allocUnsafe).
      expect(grown).toBeLessThan(64 * 1024 * 1024);
    } finally {
      for (const c of clients) c.destroy();
    }
  });
});
