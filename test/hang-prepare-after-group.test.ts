// Found by review round 15 in changes of the same day, and fixed; what went wrong:
// Found by protocol-fuzz seed 618 (shrunk): a client whose SQL-level PREPARE (a Query that names a
// SQL-level statement, so it waits for the answers owed before it: RequestWriter.waitForAnswers)
// comes behind a group that a Flush split, is never answered through pgway: no answer at all to
// anything of the request, and the client hangs. PostgreSQL answers everything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, type Target, P, B, E, C, D, S, H, Q, cat, answers, upTo } from './helpers/wire-script.js';

let gw: TestGateway;
const { raw } = rawTargets();

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 3, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

async function play(t: Target): Promise<string[][]> {
  const c = await raw(t);
  const out: string[][] = [];
  const step = async (bytes: Buffer, read: () => Promise<string[]>): Promise<void> => {
    c.write(bytes);
    out.push(await read().catch((e: Error) => [`timeout: ${e.message}`]));
  };
  await step(cat(E('', 1), D('P', 'p1'), P('', 'ROLLBACK'), B(''), E(''), S, Q('')), () => answers(c, 2, 3000));
  await step(cat(P('b', "SELECT current_setting('work_mem') AS w"), H), () => upTo(c, '1', 3000));
  await step(cat(C('S', 'b'), H, P('', 'SELECT generate_series(1, $1::int) AS g'), S, P('', 'SELEC 1'), S, Q('PREPARE rv_q1 AS SELECT $1::int * 10 + 1 AS pq')), () => answers(c, 3, 3000));
  return out;
}

describe('a SQL-level PREPARE behind a Flush-split group', () => {
  it('direct', async () => {
    expect(await play('direct')).toEqual([
      ['E:34000', 'Z:I', 'I', 'Z:I'],
      ['1'],
      ['3', '1', 'Z:I', 'E:42601', 'Z:I', 'C:PREPARE', 'Z:I'],
    ]);
  });

  it('through pgway: the same, no hang', async () => {
    expect(await play(gw)).toEqual(await play('direct'));
  }, 20_000);
});
