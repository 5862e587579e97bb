// State that its statement never made pins nothing: a LISTEN or WITH HOLD cursor in a Query that fails
// (its implicit transaction rolls back), after a COMMIT AND CHAIN that failed, or in a transaction block
// the server had already failed (refused with 25P02), also with requests pipelined around it. Pinned, the
// client would keep the pool's only connection with no session state left, and every other client would
// get 57P05. Found by the pool-modes fuzzer (timeouts in transaction mode at 40 steps). Where pgway
// cannot tell which transaction made the state (two pipelined requests), it asks the server once the
// transaction is over. Guards: state made after a COMMIT that ends a failed block is real, and so is
// state made in two pipelined requests of a transaction that commits: each stays the client's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
let two: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2000 }' });
  two = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 2000 }' });
});
afterAll(async () => {
  await gw.stop();
  await two.stop();
});
const { raw } = rawTargets();

const failedBlock = Buffer.concat([Q('BEGIN'), Q('SELECT 1/0')]);
const HELD = "SELECT (SELECT count(*) FROM pg_listening_channels()) + (SELECT count(*) FROM pg_cursors) AS n";

/** Bytes written at once, and the ReadyForQuerys they get; `before` puts the session in a failed block first. */
interface Case { name: string; bytes: Buffer; readies: number; before?: Buffer }
const cases: Case[] = [
  { name: 'LISTEN, then a failure, a Query behind', bytes: Buffer.concat([Q('LISTEN sn_ch; SELECT 1/0'), Q('SELECT 2')]), readies: 2 },
  { name: 'a failure, then LISTEN, a Query behind', bytes: Buffer.concat([Q('SELECT 1/0; LISTEN sn_ch'), Q('SELECT 2')]), readies: 2 },
  { name: 'LISTEN, then COMMIT AND CHAIN outside a block, a Parse/Sync behind', bytes: Buffer.concat([Q('LISTEN sn_ch; COMMIT AND CHAIN'), P('', 'SELECT 2'), S]), readies: 2 },
  { name: 'LISTEN after a COMMIT AND CHAIN that fails, behind a Query', bytes: Buffer.concat([Q("SET DateStyle = 'German'"), Q('COMMIT AND CHAIN; LISTEN sn_ch')]), readies: 2 },
  { name: 'WITH HOLD cursor and LISTEN in a failed block, one Query', before: failedBlock, bytes: Buffer.concat([Q('DECLARE sn_c CURSOR WITH HOLD FOR SELECT 1; END; LISTEN sn_ch'), Q('ROLLBACK')]), readies: 2 },
  { name: 'WITH HOLD cursor in a failed block, behind another refused Query', before: failedBlock, bytes: Buffer.concat([Q('DISCARD TEMP'), Q('DECLARE sn_c CURSOR WITH HOLD FOR SELECT 1'), Q('ROLLBACK')]), readies: 3 },
  // pgway cannot tell the two requests' transactions apart: it asks the server once they are over.
  { name: 'LISTEN after a COMMIT AND CHAIN that fails, a temp table in a failing Query behind', bytes: Buffer.concat([Q('COMMIT AND CHAIN; LISTEN sn_ch'), Q("CREATE TEMP TABLE sn_t (x int); SELECT 'a'::int")]), readies: 2 },
  { name: 'LISTEN in a block, another in a Query behind that rolls it back', bytes: Buffer.concat([Q('BEGIN; LISTEN sn_ch'), Q('LISTEN sn_ch2; ROLLBACK')]), readies: 2 },
  { name: 'LISTEN after a COMMIT that ends a failed block, rolled back behind', before: failedBlock, bytes: Buffer.concat([Q('COMMIT; BEGIN; LISTEN sn_ch'), Q('ROLLBACK')]), readies: 2 },
];

async function run(t: Target, c: Case): Promise<{ a: string[]; held: string[]; b: string[] }> {
  const a = await raw(t);
  const b = await raw(t);
  if (c.before) {
    a.write(c.before);
    await answers(a, 2, 3000);
  }
  a.write(c.bytes);
  const first = await answers(a, c.readies, 3000);
  a.write(Q(HELD));
  const held = await answers(a, 1, 3000);
  b.write(Q('SELECT 1 AS one'));
  const other = await answers(b, 1, 3500).catch((e: Error) => [`timeout ${e.message}`]);
  return { a: first, held, b: other };
}

describe('state its statement never made', () => {
  for (const c of cases) {
    it(`${c.name}: directly, nothing is held and another client runs`, async () => {
      const d = await run('direct', c);
      expect(d.a.at(-1)).toBe('Z:I');
      expect(d.held).toContain('D:0');
      expect(d.b).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I']);
    });

    it(`${c.name}: through pgway (transaction mode, size 1), the same, and the other client gets its connection`, async () => {
      const d = await run('direct', c);
      const g = await run(gw, c);
      expect(g).toEqual(d);
    });
  }
});

describe('state made in two pipelined requests of one transaction that commits', () => {
  it('stays the client\'s: it still listens after pgway asked the server (pool of 1)', async () => {
    const results: Record<string, string[]> = {};
    for (const [label, t] of [['direct', 'direct'], ['pgway', gw]] as const) {
      const a = await raw(t);
      a.write(Buffer.concat([Q('BEGIN; LISTEN sn_ch'), Q('LISTEN sn_ch2; COMMIT')]));
      await answers(a, 2, 3000);
      a.write(Q('SELECT count(*) AS n FROM pg_listening_channels()'));
      results[label] = await answers(a, 1, 3000);
      a.write(Q('UNLISTEN *'));
      await answers(a, 1, 3000);
    }
    expect(results.direct).toEqual(['T', 'D:2', 'C:SELECT 1', 'Z:I']);
    expect(results.pgway).toEqual(results.direct);
  });
});

describe('state made after a COMMIT that ends a failed block', () => {
  it('the client listens, and the other client never sees its LISTEN (pool of 2)', async () => {
    const results: Record<string, string[]> = {};
    for (const [label, t] of [['direct', 'direct'], ['pgway', two]] as const) {
      const a = await raw(t);
      const b = await raw(t);
      a.write(failedBlock);
      await answers(a, 2, 3000);
      a.write(Q('COMMIT; LISTEN sn_ch'));
      await answers(a, 1, 3000);
      b.write(Q('SELECT count(*) AS n FROM pg_listening_channels()'));
      a.write(Q('SELECT count(*) AS n FROM pg_listening_channels()'));
      results[label] = [...(await answers(b, 1, 3000)), ...(await answers(a, 1, 3000))];
    }
    expect(results.direct).toEqual(['T', 'D:0', 'C:SELECT 1', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(results.pgway).toEqual(results.direct);
  });
});
