// A named statement whose text is a SQL PREPARE, parsed on one connection and bound and executed in a
// later request on another (libpq's PQprepare + PQexecPrepared): the statement is held where it ran, so
// the client's EXECUTE finds it on either connection, and another client's own statement of that name
// on the first connection is laid on and runs inside its transaction block.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { B, cat, E, P, Q, rawTargets, S } from './helpers/wire-script.js';

let gw: TestGateway;
const { scenario } = rawTargets();
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000, max_prepared_statements: 200 }' });
});
afterAll(async () => { await gw?.stop(); });

describe('named statements whose text is PREPARE / EXECUTE / DEALLOCATE, moving between connections', () => {
  it('a named Parse of PREPARE on one connection, its Bind/Execute on another, then EXECUTE back on the first', async () => {
    // Pool of 2, idle connections reused last-in first-out; H's transaction takes the connection A parsed on.
    const steps: [string, Buffer][] = [
      ['H', Q('SELECT 1')], // log H in
      ['A', cat(P('a1', 'PREPARE q AS SELECT 7'), S)], // on connection X
      ['H', Q('BEGIN')], // H takes X
      ['A', cat(B('a1'), E(), S)], // runs PREPARE q on connection Y
      ['H', Q('COMMIT')], // X is back, the most recently idle
      ['A', Q('EXECUTE q')], // on X
    ];
    const direct = await scenario('direct', steps);
    expect(direct[5]).toEqual(['T', 'D:7', 'C:SELECT 1', 'Z:I']);
    const through = await scenario(gw, steps);
    expect(through).toEqual(direct);
  });

  it("another client's own statement of that name runs on the first connection inside its transaction block", async () => {
    const steps: [string, Buffer][] = [
      ['H', Q('SELECT 1')],
      ['C', Q('SELECT 1')],
      ['A', cat(P('a1', "PREPARE q AS SELECT 'A'"), S)], // on connection X
      ['H', Q('BEGIN')], // H takes X
      ['A', cat(B('a1'), E(), S)], // PREPARE q really runs on Y
      ['C', Q("PREPARE q AS SELECT 'C'")], // C's own q, on Y
      ['C', Q('EXECUTE q')], // on Y
      ['H', Q('COMMIT')],
      ['C', Q('BEGIN')], // C takes X
      ['A', Q('EXECUTE q')], // A on Y
      ['C', Q('EXECUTE q')], // C's q must be laid on X
      ['C', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(-2)).toEqual([['T', 'D:C', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    const fresh = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 2000 }' });
    const through = await scenario(fresh, steps).finally(() => fresh.stop());
    expect(through).toEqual(direct);
  });
});
