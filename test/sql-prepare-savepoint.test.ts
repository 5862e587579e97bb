// A PREPARE that failed is forgotten on the connection too: a later PREPARE of that name in the same
// lease (a savepoint rolled back to, a pinned client) runs, as on a direct connection.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawAfterLogin, Q, answers } from './helpers/wire-script.js';

let single: TestGateway;
beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await single?.stop();
});
const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});
type Target = TestGateway | 'direct';
const raw = (t: Target): Promise<RawClient> =>
  rawAfterLogin(t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : t.url(), (end) => cleanups.push(end));

async function script(t: Target, steps: Buffer[]): Promise<string[][]> {
  const r = await raw(t);
  const out: string[][] = [];
  for (const bytes of steps) {
    r.write(bytes);
    out.push(await answers(r));
  }
  return out;
}

describe('inside a transaction: a PREPARE fails, ROLLBACK TO SAVEPOINT, then PREPARE of that name again', () => {
  it('the second PREPARE succeeds and the transaction goes on, as on a direct connection', async () => {
    const steps = [
      Q('BEGIN'),
      Q('SAVEPOINT s'),
      Q('PREPARE rd_sp AS SELECT * FROM rd_no_such_table'),
      Q('ROLLBACK TO SAVEPOINT s'),
      Q('PREPARE rd_sp AS SELECT 7 AS v'),
      Q('EXECUTE rd_sp'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([
      ['C:BEGIN', 'Z:T'], ['C:SAVEPOINT', 'Z:T'], ['E:42P01', 'Z:E'], ['C:ROLLBACK', 'Z:T'],
      ['C:PREPARE', 'Z:T'], ['T', 'D:7', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I'],
    ]);
    expect(await script(single, steps)).toEqual(direct);
  });
});

describe('a pinned client (temp table): a PREPARE fails, then BEGIN and a PREPARE of that name', () => {
  it('the second PREPARE succeeds inside the transaction, as on a direct connection', async () => {
    const steps = [
      Q('CREATE TEMP TABLE rd_pin_t (a int)'),
      Q('PREPARE rd_pin_p AS SELECT * FROM rd_no_such_table'),
      Q('BEGIN'),
      Q('PREPARE rd_pin_p AS SELECT 8 AS v'),
      Q('EXECUTE rd_pin_p'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([
      ['C:CREATE TABLE', 'Z:I'], ['E:42P01', 'Z:I'], ['C:BEGIN', 'Z:T'],
      ['C:PREPARE', 'Z:T'], ['T', 'D:8', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I'],
    ]);
    expect(await script(single, steps)).toEqual(direct);
  });
});
