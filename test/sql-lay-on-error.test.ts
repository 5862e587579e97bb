// Found by review round 34 A, and fixed (a failed lay-on answers the 25P02 of the block it aborted,
// and only a 26000 about a statement the client defined):
// Round 34 A: the lay-on PREPARE's error in place of a 26000.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, B, E, P, rawTargets, Q, S, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const { scenario, raw } = rawTargets();

describe('EXECUTE of a statement whose table is gone, on another connection', () => {
  it('inside a transaction block: the client hears the planner error (42P01), as directly', async () => {
    const steps = (k: string): [string, Buffer][] => [
      ['a', Q(`CREATE TABLE rla_t${k}(x int); PREPARE rla_p AS SELECT * FROM rla_t${k}`)],
      ['b', Q('BEGIN')],
      ['a', Q(`DROP TABLE rla_t${k}`)],
      ['a', Q('BEGIN')],
      ['a', Q('EXECUTE rla_p')],
      ['a', Q('ROLLBACK')],
      ['b', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps('1'));
    expect(direct[4]).toEqual(['E:42P01', 'Z:E']);
    const through = await scenario(gw, steps('2'));
    expect(through).toEqual(direct);
  });

  it('a 26000 about another, never-prepared name keeps its own SQLSTATE', async () => {
    const steps = (k: string): [string, Buffer][] => [
      ['a', Q(`CREATE TABLE rla_u${k}(x int); PREPARE rla_q AS SELECT * FROM rla_u${k}`)],
      ['b', Q('BEGIN')],
      ['a', Q(`DROP TABLE rla_u${k}`)],
      ['a', Q('EXECUTE rla_nosuch; EXECUTE rla_q')],
      ['b', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps('1'));
    expect(direct[3]).toEqual(['E:26000', 'Z:I']);
    const through = await scenario(gw, steps('2'));
    expect(through).toEqual(direct);
  });

  it('two EXECUTEs pipelined: each hears the planner error, as directly', async () => {
    const run = async (t: Target, k: string): Promise<string[]> => {
      const a = await raw(t);
      const b = await raw(t);
      a.write(Q(`CREATE TABLE rla_v${k}(x int); PREPARE rla_r AS SELECT * FROM rla_v${k}`));
      await answers(a, 1, 3000);
      b.write(Q('BEGIN'));
      await answers(b, 1, 3000);
      a.write(Q(`DROP TABLE rla_v${k}`));
      await answers(a, 1, 3000);
      a.write(Buffer.concat([Q('EXECUTE rla_r'), Q('EXECUTE rla_r'), Q('SELECT 1')]));
      const out = await answers(a, 3, 3000);
      b.write(Q('COMMIT'));
      await answers(b, 1, 3000);
      return out;
    };
    const direct = await run('direct', '1');
    expect(direct).toEqual(['E:42P01', 'Z:I', 'E:42P01', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(gw, '2')).toEqual(direct);
  });

  it('two EXECUTEs pipelined through the extended protocol (two Syncs): each hears the planner error', async () => {
    const run = async (t: Target, k: string): Promise<string[]> => {
      const a = await raw(t);
      const b = await raw(t);
      a.write(Q(`CREATE TABLE rla_w${k}(x int); PREPARE rla_s AS SELECT * FROM rla_w${k}`));
      await answers(a, 1, 3000);
      b.write(Q('BEGIN'));
      await answers(b, 1, 3000);
      a.write(Q(`DROP TABLE rla_w${k}`));
      await answers(a, 1, 3000);
      const ex = Buffer.concat([P('', 'EXECUTE rla_s'), B(''), E(), S]);
      a.write(Buffer.concat([ex, ex, Q('SELECT 1')]));
      const out = await answers(a, 3, 3000);
      b.write(Q('COMMIT'));
      await answers(b, 1, 3000);
      return out;
    };
    const direct = await run('direct', '1');
    expect(direct).toEqual(['1', '2', 'E:42P01', 'Z:I', '1', '2', 'E:42P01', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(gw, '2')).toEqual(direct);
  });
});
