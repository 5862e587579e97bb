// Found by review round 33 D, and fixed (stale copies count toward the bound and are closed first):
// max_prepared_statements bounds the shared statement copies each server connection keeps (README: "each
// connection keeps at most max_prepared_statements (LRU)"), and the copies a connection prepared in a
// transaction after DDL "are dropped when it ends". They are not dropped on the server: ServerStatements.
// markStale (src/pool/server-statements.ts) takes the copy out of the bounded LRU and into `stale`, which
// is closed only when that same statement is prepared again on that connection. A copy never prepared
// there again stays on the server for the connection's lifetime, uncounted, so a workload that prepares
// distinct statements in transactions with DDL (a temporary table ON COMMIT DROP, a migration) grows each
// backend's prepared statements past the bound without limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { B, cat, E, P, Q, rawTargets, S } from './helpers/wire-script.js';

let gw: TestGateway;
const N = 8;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 2, query_wait_timeout_ms: 4000 }' });
  await adminQuery('GRANT CREATE ON SCHEMA public TO app');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery(Array.from({ length: N }, (_, i) => `DROP TABLE IF EXISTS review_stale_bound_${i};`).join(''));
});
const { script } = rawTargets();

/** Runs `steps` on the pool's one server connection, then counts the prepared statements that connection holds. */
async function preparedAfter(steps: Buffer[]): Promise<string[]> {
  const out = await script(gw, [...steps, Q('SELECT count(*) FROM pg_prepared_statements'), Q('DISCARD ALL')]);
  return out.at(-2)!;
}

describe('max_prepared_statements: 2, pool of 1', () => {
  it('statements prepared in transactions that create a temporary table ON COMMIT DROP', async () => {
    const steps: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      steps.push(Q('BEGIN'), Q('CREATE TEMP TABLE review_scratch (a int) ON COMMIT DROP'),
        cat(P(`t${i}`, `SELECT ${i} AS v, count(*) FROM review_scratch`), B(`t${i}`), E(), S), Q('COMMIT'));
    }
    // At most 2 shared copies on the connection (the bound); observed: one per transaction.
    expect(await preparedAfter(steps)).toEqual(['T', 'D:2', 'C:SELECT 1', 'Z:I']);
  });

  it('statements prepared in transactions that create a table (a migration)', async () => {
    const steps: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      steps.push(Q('BEGIN'), Q(`CREATE TABLE review_stale_bound_${i} (a int)`),
        cat(P(`m${i}`, `SELECT ${i} AS v`), B(`m${i}`), E(), S), Q('COMMIT'));
    }
    expect(await preparedAfter(steps)).toEqual(['T', 'D:2', 'C:SELECT 1', 'Z:I']);
  });
});
