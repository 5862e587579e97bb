// Found by review round 32 B, partly fixed: a client's SQL-level statement whose table was dropped
// since, on a connection that does not hold it. PostgreSQL keeps the statement: each EXECUTE fails
// with the planner's error (42P01), and a second PREPARE of the name is refused (42P05). pgway lays
// the client's PREPARE on the connection first, which fails there. A second PREPARE of the name was
// then placed on a connection without it and succeeded, while pgway's record kept the first; pgway
// now holds a placeholder under the name for the server to refuse it. The EXECUTE, which the server
// answered 26000 (the statement not existing on that connection), now gets the error that failed
// pgway's PREPARE: the planner's 42P01, as PostgreSQL answers it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, Q } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const { scenario } = rawTargets();

describe('a statement whose table is gone, on another connection', () => {
  it('a second PREPARE of its name is refused, and EXECUTE fails before and after it', async () => {
    const steps = (k: string): [string, Buffer][] => [
      ['a', Q(`CREATE TABLE spsl_t${k}(x int); PREPARE spsl_p AS SELECT * FROM spsl_t${k}`)],
      // b holds the connection a used, so a's next requests run on the other one
      ['b', Q('BEGIN')],
      ['a', Q(`DROP TABLE spsl_t${k}`)],
      ['a', Q('EXECUTE spsl_p')],
      ['a', Q("PREPARE spsl_p AS SELECT 'second' AS who")],
      ['a', Q('EXECUTE spsl_p')],
      ['b', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps('1'));
    expect(direct.slice(3)).toEqual([['E:42P01', 'Z:I'], ['E:42P05', 'Z:I'], ['E:42P01', 'Z:I'], ['C:COMMIT', 'Z:I']]);
    const through = await scenario(gw, steps('2'));
    expect(through).toEqual(direct);
  });
});
