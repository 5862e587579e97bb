// Found by review round 32 B, and fixed: "ROLLBACK; PREPARE x ..." (or "ROLLBACK TO s; PREPARE x")
// in a failed transaction block, after a DEALLOCATE x that ran or a PREPARE x the server refused in
// the block (25P02), runs as on PostgreSQL. pgway had left its record of x on the connection at
// "unknown", and so needed its own DEALLOCATE ALL first, which cannot run in a failed block: it
// answered 0A000. A DEALLOCATE that ran now leaves x known to be gone, and a statement refused in a
// failed block leaves the record as it was.
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

describe('a name a DEALLOCATE freed, named again where a failed block ends', () => {
  it('DEALLOCATE that ran, then ROLLBACK; PREPARE of the name in one query string', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE rdu_a AS SELECT 'a' AS who")],
      ['a', Q('DEALLOCATE rdu_a')],
      ['a', Q('BEGIN; SELECT 1/0')],
      ['a', Q("ROLLBACK; PREPARE rdu_a AS SELECT 'a2' AS who")],
      ['a', Q('EXECUTE rdu_a')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(3)).toEqual([
      ['C:ROLLBACK', 'C:PREPARE', 'Z:I'],
      ['T', 'D:a2', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(gw, steps)).toEqual(direct);
  });

  it('a DEALLOCATE kept after a later statement failed, then ROLLBACK TO; PREPARE of the name', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("BEGIN; PREPARE rdu_b AS SELECT 'a' AS who; SAVEPOINT s; DEALLOCATE rdu_b; SELECT 1/0")],
      ['a', Q("ROLLBACK TO s; PREPARE rdu_b AS SELECT 'again' AS who")],
      ['a', Q('COMMIT')],
      ['a', Q('EXECUTE rdu_b')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct).toEqual([
      ['C:BEGIN', 'C:PREPARE', 'C:SAVEPOINT', 'C:DEALLOCATE', 'E:22012', 'Z:E'],
      ['C:ROLLBACK', 'C:PREPARE', 'Z:T'],
      ['C:COMMIT', 'Z:I'],
      ['T', 'D:again', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(gw, steps)).toEqual(direct);
  });

  it('a PREPARE refused in the failed block (25P02), then ROLLBACK; PREPARE of the name', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('BEGIN; SELECT 1/0')],
      ['a', Q("PREPARE rdu_c AS SELECT 'a' AS who")],
      ['a', Q("ROLLBACK; PREPARE rdu_c AS SELECT 'a2' AS who; EXECUTE rdu_c")],
    ];
    const direct = await scenario('direct', steps);
    expect(direct).toEqual([
      ['C:BEGIN', 'E:22012', 'Z:E'],
      ['E:25P02', 'Z:E'],
      ['C:ROLLBACK', 'C:PREPARE', 'T', 'D:a2', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(gw, steps)).toEqual(direct);
  });
});
