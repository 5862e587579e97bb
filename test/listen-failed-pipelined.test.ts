// A LISTEN in a Query that fails (its implicit transaction rolls back, so PostgreSQL holds no channel)
// pins nothing, also when another request is pipelined behind that Query: pinned, the client would keep
// the pool's only connection with no session state left, and every other client would get 57P05.
// Found by the pool-modes fuzzer (timeouts in transaction mode at 40 steps).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2000 }' }); });
afterAll(async () => { await gw.stop(); });
const { raw } = rawTargets();

const cases: [string, Buffer][] = [
  ['LISTEN, then a failure, a Query behind', Buffer.concat([Q('LISTEN review_h_ch; SELECT 1/0'), Q('SELECT 2')])],
  ['a failure, then LISTEN, a Query behind', Buffer.concat([Q('SELECT 1/0; LISTEN review_h_ch'), Q('SELECT 2')])],
  ['LISTEN, then COMMIT AND CHAIN outside a block, a Parse/Sync behind', Buffer.concat([Q('LISTEN review_h_ch; COMMIT AND CHAIN'), P('', 'SELECT 2'), S])],
];

async function run(t: Target, bytes: Buffer): Promise<{ a: string[]; channels: string[]; b: string[] }> {
  const a = await raw(t); const b = await raw(t);
  a.write(bytes);
  const first = await answers(a, 2, 3000);
  a.write(Q('SELECT count(*) AS n FROM pg_listening_channels()'));
  const channels = await answers(a, 1, 3000);
  b.write(Q('SELECT 1 AS one'));
  const other = await answers(b, 1, 3500).catch((e: Error) => [`timeout ${e.message}`]);
  return { a: first, channels, b: other };
}

describe('a LISTEN its failed Query took back, with a request pipelined behind', () => {
  for (const [name, bytes] of cases) {
    it(`${name}: directly, nothing is listened to and another client runs`, async () => {
      const d = await run('direct', bytes);
      expect(d.a).toContain('Z:I');
      expect(d.channels).toContain('D:0');
      expect(d.b).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I']);
    });
    it(`${name}: through pgway (transaction mode, size 1), the other client gets its connection`, async () => {
      const d = await run('direct', bytes);
      const g = await run(gw, bytes);
      expect(g.a).toEqual(d.a);
      expect(g.channels).toEqual(d.channels);
      expect(g.b).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I']); // pgway: E:57P05 after query_wait_timeout_ms
    });
  }
});
