// Found by review round 33 D, and fixed (a group's DEALLOCATE ALL changes nothing until its Execute runs):
// max_prepared_statements: 0 passes named statements through "as in PgBouncer before 1.21: a named statement
// goes to the server under the client's own name and stays on that connection" (README). With a pool of one
// connection and one client that is all a direct session is. But a Parse of a named statement whose text is
// DEALLOCATE ALL or DISCARD ALL, never executed, already drops every statement on the connection: pgway
// marks the connection for DEALLOCATE ALL at the Parse (request-writer.ts onParse, the untracked branch:
// `effects.some(dropsAllStatements)` -> dropAllStatements), and runs it before the client's next request.
// PostgreSQL drops nothing until the statement is executed (and then the client hears DEALLOCATE ALL or
// DISCARD ALL, where pgway answers the Bind of that very statement with 26000).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { B, cat, E, P, rawTargets, S } from './helpers/wire-script.js';

let gw: TestGateway;
beforeEach(async () => { gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 0, query_wait_timeout_ms: 4000 }' }); });
afterEach(async () => { await gw?.stop(); });
const { script } = rawTargets();

describe('max_prepared_statements: 0, one client, a pool of one connection', () => {
  for (const text of ['DEALLOCATE ALL', 'DISCARD ALL']) {
    it(`a named "${text}" that is only parsed drops nothing`, async () => {
      const steps = [cat(P('a', 'SELECT 1 AS a'), P('d', text), S), cat(B('a'), E(), S)];
      expect(await script('direct', steps)).toEqual([['1', '1', 'Z:I'], ['2', 'D:1', 'C:SELECT 1', 'Z:I']]);
      expect(await script(gw, steps)).toEqual([['1', '1', 'Z:I'], ['2', 'D:1', 'C:SELECT 1', 'Z:I']]);
    });

    it(`a named "${text}" parsed in one request runs when executed in the next`, async () => {
      const steps = [cat(P('d', text), S), cat(B('d'), E(), S)];
      expect(await script('direct', steps)).toEqual([['1', 'Z:I'], ['2', `C:${text}`, 'Z:I']]);
      expect(await script(gw, steps)).toEqual([['1', 'Z:I'], ['2', `C:${text}`, 'Z:I']]);
    });
  }
});
