// Found by review round 17, and fixed; what went wrong:
// Review q: a DEALLOCATE ALL (or DISCARD ALL) Query behind an error in a group the client has not
// synced yet. The server skips it (no answer owed), but pgway, having written it, waits for its
// answer before writing the rest (the client's Sync): the server waits for that Sync. The client
// hangs, and keeps its server connection meanwhile: with a pool of 1 every other client waits until
// query_wait_timeout (it is freed only when the hung client leaves).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, answers, type Target, P, B, E, S, Q, cat } from './helpers/wire-script.js';

const { raw } = rawTargets();
const gws: Record<string, TestGateway> = {};

beforeAll(async () => {
  gws.tx = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
  gws.tx0 = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 0, query_wait_timeout_ms: 4000 }' });
  gws.txDiscard = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  for (const g of Object.values(gws)) await g.stop();
});

async function run(t: Target, sql: string): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(P('', 'SELECT 1/0'), B(''), E(''), Q(sql), S));
  const first = await answers(y, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
  const x = await raw(t);
  x.write(Q('SELECT 6'));
  const second = await answers(x, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
  return [first, second];
}

const expected = [['1', 'E:22012', 'Z:I'], ['T', 'D:6', 'C:SELECT 1', 'Z:I']];

describe('a DEALLOCATE ALL Query the server skips behind an error in an unsynced group', () => {
  it('direct: the group ends at its Sync; another client runs', async () => {
    expect(await run('direct', 'DEALLOCATE ALL')).toEqual(expected);
  });
  it('through pgway (transaction): the same', async () => {
    expect(await run(gws.tx!, 'DEALLOCATE ALL')).toEqual(expected);
  });
  it('through pgway (transaction, max_prepared_statements 0): the same', async () => {
    expect(await run(gws.tx0!, 'DEALLOCATE ALL')).toEqual(expected);
  });
  it('through pgway, DISCARD ALL: the same', async () => {
    expect(await run(gws.txDiscard!, 'DISCARD ALL')).toEqual(expected);
  });
});
