// Found by review round 28 B, and fixed: set_config(name, $1::text, false) whose $1 the Parse leaves
// undeclared, but whose type the server infers from another use of $1 it analyses first (an earlier
// target, a WITH): the value stored is that type's output ('007' as int4 is '7'); pgway took the
// bound text, and laid '007' on the client's next connection. pgway cannot tell that type, so such
// a set_config pins the client: its connection holds what the server stored.
//   a: Parse '' SELECT $1::int4, set_config('review.inferred', $1::text, false); Bind '007'; Execute; Sync
//   b (another client, one server connection): SET work_mem = '7MB'   (pgway: waits, a is pinned)
//   a: SELECT current_setting('review.inferred')                        -> 7
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

const { raw } = rawTargets();
const gws: TestGateway[] = [];
beforeAll(async () => {
  for (const extra of ['', ', max_prepared_statements: 0']) {
    gws.push(await startGateway({ pool: `{ mode: transaction, size: 1, query_wait_timeout_ms: 300${extra} }` }));
  }
});
afterAll(async () => {
  for (const g of gws.splice(0)) await g.stop();
});

const CASES: Record<string, { sql: string; bound: string; stored: string }> = {
  'an earlier target $1::int4, bound 007': { sql: "SELECT $1::int4, set_config('review.inferred', $1::text, false)", bound: '007', stored: '7' },
  'an earlier target $1::bool, bound TRUE': { sql: "SELECT $1::bool, set_config('review.inferred', $1::text, false)", bound: 'TRUE', stored: 'true' },
  'a WITH reading $1 as int4, bound 007': { sql: "WITH w AS (SELECT $1::int4 AS v) SELECT set_config('review.inferred', $1::text, false)", bound: '007', stored: '7' },
};

async function run(t: Target, sql: string, bound: string): Promise<string[][]> {
  const a = await raw(t);
  const b = await raw(t);
  a.write(cat(P('', sql), B('', [bound]), E(''), S));
  const set = await answers(a);
  b.write(Q("SET work_mem = '7MB'"));
  await answers(b).catch(() => undefined);
  a.write(Q("SELECT current_setting('review.inferred')"));
  const read = await answers(a).catch((e: Error) => [`timeout: ${e.message}`]);
  a.destroy();
  b.destroy();
  return [set, read];
}

describe('set_config of a parameter whose type the server infers from another use', () => {
  for (const [name, { sql, bound, stored }] of Object.entries(CASES)) {
    it(`${name}: the client reads back what the server stored, on its next transaction too`, async () => {
      const direct = await run('direct', sql, bound);
      expect(direct[1]).toEqual(['T', `D:${stored}`, 'C:SELECT 1', 'Z:I']);
      for (const gw of gws) expect(await run(gw, sql, bound)).toEqual(direct);
    });
  }
});
