// A SQL DEALLOCATE of a statement the client prepared with a protocol Parse, as Rails' statement
// cache drops its statements (PQprepare, then `DEALLOCATE a1` as a Query). PostgreSQL keeps
// protocol and SQL-level statements in one namespace, so the DEALLOCATE drops the client's
// statement. pgway renames protocol statements and shares them between clients: the client's name
// must go (and only when the DEALLOCATE runs), the shared statement staying for the others. In
// transaction mode, one server connection, clients taking turns on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, cat, B, E, P, S, Q } from './helpers/wire-script.js';

let single: TestGateway;
beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await single?.stop();
});
const { scenario } = rawTargets();

const parse = (name: string, sql: string): Buffer => cat(P(name, sql), S);
const run = (name: string): Buffer => cat(B(name), E(), S);

describe('DEALLOCATE of a protocol-level statement', () => {
  it('drops the client\'s statement and frees its name; another client\'s copy of the text keeps working', async () => {
    const text = "SELECT 'shared' AS v";
    const steps: [string, Buffer][] = [
      ['a', parse('sdp_a1', text)],
      ['b', parse('sdp_b1', text)],
      ['a', Q('DEALLOCATE sdp_a1')],
      ['a', run('sdp_a1')],
      ['b', run('sdp_b1')],
      ['a', cat(P('sdp_a1', "SELECT 'new' AS v"), B('sdp_a1'), E(), S)],
      ['a', Q('DEALLOCATE sdp_a1; DEALLOCATE sdp_a1')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(2)).toEqual([
      ['C:DEALLOCATE', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['2', 'D:shared', 'C:SELECT 1', 'Z:I'],
      ['1', '2', 'D:new', 'C:SELECT 1', 'Z:I'],
      ['C:DEALLOCATE', 'E:26000', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('inside a transaction block does not fail the block (Rails evicts statements mid-transaction)', async () => {
    const steps: [string, Buffer][] = [
      ['a', parse('sdp_t1', 'SELECT 1 AS one')],
      ['a', Q('BEGIN')],
      ['a', Q('DEALLOCATE sdp_t1')],
      ['a', Q('SELECT 2 AS two')],
      ['a', Q('COMMIT')],
      ['a', run('sdp_t1')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(1)).toEqual([
      ['C:BEGIN', 'Z:T'],
      ['C:DEALLOCATE', 'Z:T'],
      ['T', 'D:2', 'C:SELECT 1', 'Z:T'],
      ['C:COMMIT', 'Z:I'],
      ['E:26000', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('that does not run leaves the statement: behind an error, or in a failed block', async () => {
    const steps: [string, Buffer][] = [
      ['a', parse('sdp_f1', "SELECT 'kept' AS v")],
      ['a', Q('SELECT 1/0; DEALLOCATE sdp_f1')],
      ['a', run('sdp_f1')],
      ['a', Q('BEGIN; SELECT 1/0')],
      ['a', Q('DEALLOCATE sdp_f1')],
      ['a', Q('ROLLBACK')],
      ['a', run('sdp_f1')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(1)).toEqual([
      ['E:22012', 'Z:I'],
      ['2', 'D:kept', 'C:SELECT 1', 'Z:I'],
      ['C:BEGIN', 'E:22012', 'Z:E'],
      ['E:25P02', 'Z:E'],
      ['C:ROLLBACK', 'Z:I'],
      ['2', 'D:kept', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('that ran stays done when a later statement of its text fails; the name then takes a SQL PREPARE', async () => {
    const steps: [string, Buffer][] = [
      ['a', parse('sdp_g1', "SELECT 'proto' AS v")],
      ['a', Q('DEALLOCATE sdp_g1; SELECT 1/0')],
      ['a', run('sdp_g1')],
      ['a', Q("DEALLOCATE sdp_g1; PREPARE sdp_g1 AS SELECT 'sql' AS v")],
      ['a', parse('sdp_g2', "SELECT 'proto2' AS v")],
      ['a', Q("DEALLOCATE sdp_g2; PREPARE sdp_g2 AS SELECT 'sql2' AS v; EXECUTE sdp_g2")],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(1)).toEqual([
      ['C:DEALLOCATE', 'E:22012', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['1', 'Z:I'],
      ['C:DEALLOCATE', 'C:PREPARE', 'T', 'D:sql2', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it("never drops another client's SQL-level statement of the name", async () => {
    const steps: [string, Buffer][] = [
      ['b', Q("PREPARE sdp_o1 AS SELECT 'b' AS who")],
      ['a', parse('sdp_o1', "SELECT 'a' AS who")],
      ['a', Q('DEALLOCATE sdp_o1')],
      ['b', Q('EXECUTE sdp_o1')],
      ['a', Q("PREPARE sdp_o1 AS SELECT 'a-sql' AS who; EXECUTE sdp_o1")],
      ['b', Q('EXECUTE sdp_o1')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(2)).toEqual([
      ['C:DEALLOCATE', 'Z:I'],
      ['T', 'D:b', 'C:SELECT 1', 'Z:I'],
      ['C:PREPARE', 'T', 'D:a-sql', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:b', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('once run, leaves the connection its shared statements (no DEALLOCATE ALL when the name comes again)', async () => {
    const listing = Q("SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE 'pgw%'");
    const steps: [string, Buffer][] = [
      ['a', parse('sdp_s1', "SELECT 'shared' AS v")],
      ['a', Q('DEALLOCATE sdp_s1')],
      ['b', listing],
      ['b', Q('DEALLOCATE sdp_s1')],
      ['b', listing],
    ];
    const out = await scenario(single, steps);
    expect(out[3]).toEqual(['E:26000', 'Z:I']);
    expect(out[2]).not.toEqual(['T', 'D:0', 'C:SELECT 1', 'Z:I']);
    expect(out[4]).toEqual(out[2]);
  });
});
