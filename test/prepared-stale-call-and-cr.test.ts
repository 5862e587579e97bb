// Found by review round 30 C, and fixed.
// PostgreSQL refuses (0A000, "cached plan must not change result type") a prepared statement whose
// result DDL changed, for every statement it parse-analyses: SELECT/INSERT/UPDATE/DELETE/MERGE and
// also CALL (a procedure's OUT parameters), whatever comments come before the keyword (a `--`
// comment ends at CR as well as LF). pgway decides which statements to compare with a regex
// (CHECKED in src/session/prepared-statements.ts): a CALL, or a SELECT behind a comment ended by a
// lone CR, is not compared, so a copy prepared afresh after the DDL runs with the new shape.
// Pool of 2, max_prepared_statements 1: another client's statement pushes the client's out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { answers, B, cat, E, P, rawTargets, S, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, max_prepared_statements: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const { raw } = rawTargets();

const cases: [string, string, string, string][] = [
  // control (passes): nested comments
  ['nested comment', 'DROP TABLE IF EXISTS ru_t; CREATE TABLE ru_t (a int); INSERT INTO ru_t VALUES (1); GRANT ALL ON ru_t TO app', 'ALTER TABLE ru_t ADD COLUMN b text', '/* old: /* x */ y */ SELECT * FROM ru_t'],
  ['CR-only comment', 'DROP TABLE IF EXISTS ru_t; CREATE TABLE ru_t (a int); INSERT INTO ru_t VALUES (1); GRANT ALL ON ru_t TO app', 'ALTER TABLE ru_t ADD COLUMN b text', '-- c\rSELECT * FROM ru_t'],
  ['CALL with OUT params', "DROP PROCEDURE IF EXISTS ru_p; CREATE PROCEDURE ru_p(OUT x int) LANGUAGE plpgsql AS $$ BEGIN x := 1; END $$; GRANT ALL ON PROCEDURE ru_p TO app", "DROP PROCEDURE ru_p; CREATE PROCEDURE ru_p(OUT x text) LANGUAGE plpgsql AS $$ BEGIN x := 'n'; END $$; GRANT ALL ON PROCEDURE ru_p TO app", 'CALL ru_p(NULL)'],
];

describe('stale plans of statements pgway does not check', () => {
  for (const [label, setup, ddl, sql] of cases) {
    it(label, async () => {
      const run = async (t: Target): Promise<string[][]> => {
        await adminQuery(setup);
        const a = await raw(t); const b = await raw(t);
        const out: string[][] = [];
        a.write(cat(P('q', sql), B('q'), E(), S)); out.push(await answers(a));
        b.write(cat(P('o', 'SELECT 42'), B('o'), E(), S)); out.push(await answers(b));
        await adminQuery(ddl);
        a.write(cat(B('q'), E(), S)); out.push(await answers(a));
        a.write(cat(B('q'), E(), S)); out.push(await answers(a));
        return out;
      };
      const d = await run('direct');
      const g = await run(gw);
            expect(g).toEqual(d);
    });
  }
});
