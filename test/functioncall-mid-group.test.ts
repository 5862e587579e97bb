// Found by review round 17, and fixed; what went wrong:
// Review q: a FunctionCall sent inside an extended-protocol group not synced yet leaves the
// PostgreSQL 18 session broken just as a Query there does (the next simple Query fails with XX000
// "StartTransactionCommand: unexpected state STARTED"). pgway closes a connection after a Query
// inside a group (ServerConnection.queryInsideGroup) but not after a FunctionCall: the connection
// goes back to the pool and the next client's first Query fails with XX000.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawTargets, answers, type Target, P, B, E, S, Q, F, cat } from './helpers/wire-script.js';

const { raw } = rawTargets();
const gws: TestGateway[] = [];

beforeAll(async () => {
  gws.push(await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' }));
  gws.push(await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 0, query_wait_timeout_ms: 4000 }' }));
  gws.push(await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' }));
});
afterAll(async () => {
  for (const g of gws) await g.stop();
});

async function run(t: Target): Promise<string[][]> {
  const clients = new Map<string, RawClient>();
  const out: string[][] = [];
  const steps: [string, Buffer, number][] = [
    // abs(int4) called between the group's Execute and its Sync.
    ['y', cat(P('', 'SELECT 1'), B(''), E(''), F(1397, [Buffer.from('-5')], 0, 0), S), 2],
    ['x', Q('SELECT 3'), 1],
  ];
  for (const [who, bytes, n] of steps) {
    let c = clients.get(who);
    if (!c) { c = await raw(t); clients.set(who, c); }
    c.write(bytes);
    out.push(await answers(c, n, 4000).catch((e: Error) => [`timeout: ${e.message}`]));
  }
  return out;
}

describe('a FunctionCall inside an unsynced group, then another client', () => {
  it('direct: the other client, on its own session, is unaffected', async () => {
    expect(await run('direct')).toEqual([['1', '2', 'D:1', 'C:SELECT 1', 'V:0000000135', 'Z:T', 'Z:I'], ['T', 'D:3', 'C:SELECT 1', 'Z:I']]);
  });
  it('through pgway (transaction): the same', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });
  it('through pgway (transaction, max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!)).toEqual(await run('direct'));
  });
  it('through pgway (statement): the same', async () => {
    expect(await run(gws[2]!)).toEqual(await run('direct'));
  });
});
