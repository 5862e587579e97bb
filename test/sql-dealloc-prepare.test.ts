// "DEALLOCATE p; PREPARE p AS ..." in one Query string (redefining a statement) inside a
// transaction block runs and commits, as on a direct connection.
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

describe('redefining a SQL-level prepared statement with "DEALLOCATE p; PREPARE p AS ..." inside BEGIN', () => {
  it('runs and the transaction commits, as on a direct connection', async () => {
    const steps = [
      Q('PREPARE rd_dp AS SELECT 1 AS v'),
      Q('BEGIN'),
      Q('DEALLOCATE rd_dp; PREPARE rd_dp AS SELECT 2 AS v'),
      Q('EXECUTE rd_dp'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([
      ['C:PREPARE', 'Z:I'], ['C:BEGIN', 'Z:T'], ['C:DEALLOCATE', 'C:PREPARE', 'Z:T'],
      ['T', 'D:2', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I'],
    ]);
    expect(await script(single, steps)).toEqual(direct);
  });
});
