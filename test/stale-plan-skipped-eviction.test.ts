// A statement prepared before DDL is refused (0A000) at every run while its table has another shape,
// as PostgreSQL refuses it, also after the server skipped pgway's eviction Close of its copy (an error
// earlier in another client's pipeline left the copy on the connection, its shape forgotten): the copy
// is compared with the client's shape before it runs, and an INSERT ... RETURNING refused inserts nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { answers, B, E, P, rawTargets, S, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const { raw, cleanups } = rawTargets();

async function run(t: Target, tbl: string, sql = 'SELECT * FROM %'): Promise<string[][]> {
  await adminQuery(`DROP TABLE IF EXISTS ${tbl}; CREATE TABLE ${tbl} (a int, b text); INSERT INTO ${tbl} VALUES (1, 'one'); GRANT ALL ON ${tbl} TO app`);
  cleanups.push(() => adminQuery(`DROP TABLE IF EXISTS ${tbl}`));
  const a = await raw(t);
  const other = await raw(t);
  const out: string[][] = [];
  // a prepares s: (int, text)
  a.write(Buffer.concat([P('s', sql.replaceAll('%', tbl)), S]));
  out.push(await answers(a));
  // another client pushes s out of the connection (max_prepared_statements: 2)
  other.write(Buffer.concat([P('o1', 'SELECT 1 AS o1'), P('o2', 'SELECT 2 AS o2'), S]));
  out.push(await answers(other));
  await adminQuery(`ALTER TABLE ${tbl} ADD COLUMN c int`);
  // refused: pgway prepares s afresh (new shape) and refuses it; the fresh copy stays
  a.write(Buffer.concat([B('s'), E(), S]));
  out.push(await answers(a));
  // another client's pipeline fails before its Parses: the Closes pgway writes to make room are skipped
  other.write(Buffer.concat([P('', 'SELECT 1/0'), B(''), E(), P('o3', 'SELECT 3 AS o3'), P('o4', 'SELECT 4 AS o4'), S]));
  out.push(await answers(other));
  // a's statement still returns something else than when a prepared it: refused again
  a.write(Buffer.concat([B('s'), E(), S]));
  out.push(await answers(a));
  a.write(Buffer.concat([B('s'), E(), S]));
  out.push(await answers(a));
  const { rows } = await adminQuery<{ n: string }>(`SELECT count(*)::text AS n FROM ${tbl}`);
  out.push([`rows in table: ${rows[0]!.n}`]);
  return out;
}

describe('stale statement after a skipped eviction Close', () => {
  it('direct PostgreSQL refuses the stale statement at each run', async () => {
    const d = await run('direct', 'rve_sc_d');
    expect(d[4]).toEqual(['E:0A000', 'Z:I']);
    expect(d[5]).toEqual(['E:0A000', 'Z:I']);
  });
  it('pgway (pool 1, max_prepared_statements 2) answers as PostgreSQL does', async () => {
    const d = await run('direct', 'rve_sc_d');
    const g = await run(gw, 'rve_sc_g');
    expect(g).toEqual(d);
  });
  it('pgway: an INSERT ... RETURNING that PostgreSQL refuses is refused too, and inserts nothing', async () => {
    const sql = "INSERT INTO % (a, b) VALUES (7, 'y') RETURNING *";
    const d = await run('direct', 'rve_sc_d2', sql);
    expect(d[4]).toEqual(['E:0A000', 'Z:I']);
    expect(d[6]).toEqual(['rows in table: 1']);
    const g = await run(gw, 'rve_sc_g2', sql);
    expect(g).toEqual(d);
  });
});
