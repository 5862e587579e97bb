// SQL-level PREPARE refused (42P05) by the server, pipelined with later requests: the first
// definition stays, as on a direct connection.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawAfterLogin, P, B, E, S, Q, answers, cat } from './helpers/wire-script.js';

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

describe('pipelined: PREPARE p, PREPARE p again (refused), EXECUTE p', () => {
  it('simple protocol: EXECUTE runs the first definition, as on a direct connection', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      r.write(cat(Q('PREPARE rd_pp AS SELECT 1 AS v'), Q('PREPARE rd_pp AS SELECT 2 AS v'), Q('EXECUTE rd_pp')));
      return answers(r, 3);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['C:PREPARE', 'Z:I', 'E:42P05', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });

  it('extended protocol (one Sync per statement, pipelined): EXECUTE runs the first definition', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      const stmt = (sql: string): Buffer => cat(P('', sql), B(''), E(), S);
      r.write(cat(stmt('PREPARE rd_px AS SELECT 1 AS v'), stmt('PREPARE rd_px AS SELECT 2 AS v'), stmt('EXECUTE rd_px')));
      return answers(r, 3);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['1', '2', 'C:PREPARE', 'Z:I', '1', '2', 'E:42P05', 'Z:I', '1', '2', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });
});
