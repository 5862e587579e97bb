// SQL-level PREPARE and DEALLOCATE are not transactional: one that ran stays done when a later
// statement of its request fails (the rest of its query string, or of its pipelined group), or
// when its transaction block rolls back. pgway keeps its record of the client's statements the
// same way, in transaction mode, with other clients taking turns on the one server connection and
// preparing their own statements of the same names.
import pg from 'pg';
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

describe('a PREPARE before a failing statement of its query string', () => {
  it('stays: EXECUTE runs it and a second PREPARE of the name is refused, as PostgreSQL does', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE spk_a AS SELECT 'a' AS who; SELECT 1/0")],
      // b takes the connection in between, with a statement of its own under the name
      ['b', Q("PREPARE spk_a AS SELECT 'b' AS who")],
      ['a', Q('EXECUTE spk_a')],
      ['a', Q("PREPARE spk_a AS SELECT 'again' AS who")],
      ['b', Q('EXECUTE spk_a')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct).toEqual([
      ['C:PREPARE', 'E:22012', 'Z:I'],
      ['C:PREPARE', 'Z:I'],
      ['T', 'D:a', 'C:SELECT 1', 'Z:I'],
      ['E:42P05', 'Z:I'],
      ['T', 'D:b', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('stays when the statement after it in the same pipelined group fails', async () => {
    const steps: [string, Buffer][] = [
      ['a', cat(P('', "PREPARE spk_g AS SELECT 'a' AS who"), B(''), E(), P('', 'SELECT 1/0'), B(''), E(), S)],
      ['b', Q("PREPARE spk_g AS SELECT 'b' AS who")],
      ['a', Q('EXECUTE spk_g')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct).toEqual([
      ['1', '2', 'C:PREPARE', '1', 'E:22012', 'Z:I'],
      ['C:PREPARE', 'Z:I'],
      ['T', 'D:a', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('stays when its transaction block fails and rolls back; the one the server refused does not', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("BEGIN; PREPARE spk_t AS SELECT 'a' AS who; SELECT 1/0")],
      ['a', Q("PREPARE spk_t2 AS SELECT 'never' AS who")],
      ['a', Q('ROLLBACK')],
      ['b', Q("PREPARE spk_t AS SELECT 'b' AS who; PREPARE spk_t2 AS SELECT 'b2' AS who")],
      ['a', Q('EXECUTE spk_t')],
      ['a', Q('EXECUTE spk_t2')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct).toEqual([
      ['C:BEGIN', 'C:PREPARE', 'E:22012', 'Z:E'],
      ['E:25P02', 'Z:E'],
      ['C:ROLLBACK', 'Z:I'],
      ['C:PREPARE', 'C:PREPARE', 'Z:I'],
      ['T', 'D:a', 'C:SELECT 1', 'Z:I'],
      ['E:26000', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('a DEALLOCATE before a failing statement of its query string', () => {
  it('stays done: the name is free again', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE spk_d AS SELECT 'a' AS who")],
      ['a', Q('DEALLOCATE spk_d; SELECT 1/0')],
      ['b', Q("PREPARE spk_d AS SELECT 'b' AS who")],
      ['a', Q('EXECUTE spk_d')],
      ['a', Q("PREPARE spk_d AS SELECT 'a2' AS who; EXECUTE spk_d")],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(1)).toEqual([
      ['C:DEALLOCATE', 'E:22012', 'Z:I'],
      ['C:PREPARE', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['C:PREPARE', 'T', 'D:a2', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('DEALLOCATE ALL stays done, for SQL-level statements and those made with a protocol Parse', async () => {
    const steps: [string, Buffer][] = [
      ['a', cat(P('spk_proto', "SELECT 'proto' AS who"), S)],
      ['a', Q("PREPARE spk_all AS SELECT 'a' AS who")],
      ['a', Q('DEALLOCATE ALL; SELECT 1/0')],
      ['b', Q("PREPARE spk_all AS SELECT 'b' AS who")],
      ['a', Q('EXECUTE spk_all')],
      ['a', cat(B('spk_proto'), E(), S)],
      ['a', cat(P('spk_proto', "SELECT 'proto2' AS who"), B('spk_proto'), E(), S)],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(2)).toEqual([
      ['C:DEALLOCATE ALL', 'E:22012', 'Z:I'],
      ['C:PREPARE', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['1', '2', 'D:proto2', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('a DEALLOCATE ALL that ran and a PREPARE after it that failed: the client has no statements', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE spk_x AS SELECT 'a' AS who")],
      ['a', Q('DEALLOCATE ALL; PREPARE spk_y AS SELECT no_such_column')],
      ['a', Q('EXECUTE spk_x')],
      ['a', Q('EXECUTE spk_y')],
      ['a', Q("PREPARE spk_x AS SELECT 'x2' AS who; EXECUTE spk_x")],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(1)).toEqual([
      ['C:DEALLOCATE ALL', 'E:42703', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['C:PREPARE', 'T', 'D:x2', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('with the pg driver, clients rotating over a pool of 2', () => {
  it('each client keeps the statement it prepared before its query string failed', async () => {
    const gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
    const clients: pg.Client[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const c = new pg.Client({ connectionString: gw.url() });
        await c.connect();
        clients.push(c);
      }
      const failures = await Promise.all(
        clients.map((c, i) => c.query(`PREPARE spk_pg AS SELECT ${i} AS n; SELECT 1/0`).then(() => 'ran', (e: { code?: string }) => e.code)),
      );
      expect(failures).toEqual(clients.map(() => '22012'));
      // Many rounds, so that each client's EXECUTE lands on connections the others used last.
      for (let round = 0; round < 5; round++) {
        const got = await Promise.all(clients.map((c) => c.query('EXECUTE spk_pg').then((r) => r.rows[0].n as number)));
        expect(got).toEqual(clients.map((_, i) => i));
      }
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await gw.stop();
    }
  });
});
