// Gateways with one transaction-mode server connection, so that every client of a test shares it
// (or two, for a test that steers clients between them: see steering.ts).
import { afterAll, beforeAll } from 'vitest';
import { startGateway, type TestGateway } from '../harness/gateway.js';

/**
 * For the file that calls this: [0] shares prepared statements (the default), [1] has
 * `max_prepared_statements: 0`. Started before the file's tests, stopped after them.
 */
export function oneConnectionGateways(size = 1): TestGateway[] {
  const gws: TestGateway[] = [];
  beforeAll(async () => {
    gws.push(await startGateway({ pool: `{ mode: transaction, size: ${size}, query_wait_timeout_ms: 4000 }` }));
    gws.push(await startGateway({ pool: `{ mode: transaction, size: ${size}, max_prepared_statements: 0, query_wait_timeout_ms: 4000 }` }));
  });
  afterAll(async () => {
    for (const g of gws.splice(0)) await g.stop();
  });
  return gws;
}
