// (Regression tests; the failures noted are fixed: the statements a group names are laid on before
// its first message.) pgway lays a client's SQL-level prepared statement on a connection with a simple Query
// of its own (GroupPlacement.placeSqlPrepared: "DEALLOCATE x; PREPARE x AS ..."), written right
// before the client's Parse or Bind that names it (an EXECUTE through the extended protocol), even in
// the middle of an extended-protocol group. PostgreSQL runs a simple Query as a statement of its
// own: outside a transaction block it commits the implicit transaction of the group so far, and it
// drops the unnamed statement and portal. So work the client's group did before is committed although
// a later message of the group fails, and the client's unnamed statement is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { rawTargets, type Target, answers, cat, H, P, B, E, S, Q, upTo } from './helpers/wire-script.js';

let single: TestGateway; // one server connection: the other client's PREPARE is certainly on it
beforeAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS sg_mg');
  await adminQuery('CREATE TABLE sg_mg (a int)');
  await adminQuery('GRANT ALL ON sg_mg TO app');
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  await single?.stop();
  await adminQuery('DROP TABLE IF EXISTS sg_mg');
});
const { raw } = rawTargets();

/** Through pgway, another client leaves its own sg_mg_p on the one connection, so pgway must lay this client's on again. */
async function otherClientsPrepare(t: Target, name: string): Promise<void> {
  if (t === 'direct') return;
  const b = await raw(t);
  b.write(Q(`PREPARE ${name} AS SELECT 7`));
  expect(await answers(b)).toEqual(['C:PREPARE', 'Z:I']);
}

describe('an EXECUTE of a SQL-level prepared statement in the middle of an extended-protocol group', () => {
  it('does not commit what the group did before it when a later message fails', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      await adminQuery('TRUNCATE sg_mg');
      const a = await raw(t);
      a.write(Q('PREPARE sg_mg_p AS SELECT 42'));
      const out = [await answers(a)];
      await otherClientsPrepare(t, 'sg_mg_p');
      // One implicit transaction: INSERT, EXECUTE sg_mg_p, then a division by zero fails it.
      a.write(cat(P('', 'INSERT INTO sg_mg VALUES (1)'), B(''), E(), P('', 'EXECUTE sg_mg_p'), B(''), E(), P('', 'SELECT 1/0'), B(''), E(), S));
      out.push(await answers(a));
      a.write(Q('SELECT count(*) FROM sg_mg'));
      out.push(await answers(a));
      return out;
    };
    const direct = await run('direct');
    expect(direct[1]).toEqual(['1', '2', 'C:INSERT 0 1', '1', '2', 'D:42', 'C:SELECT 1', '1', 'E:22012', 'Z:I']);
    expect(direct[2]).toEqual(['T', 'D:0', 'C:SELECT 1', 'Z:I']); // rolled back with the group
    // pgway: ['T', 'D:1', ...]: the row was committed by pgway's hidden PREPARE query.
    expect(await run(single)).toEqual(direct);
  });

  it("does not drop the client's unnamed statement parsed earlier in the group", async () => {
    const run = async (t: Target): Promise<string[]> => {
      const a = await raw(t);
      a.write(Q('PREPARE sg_mg_q AS SELECT 42'));
      await answers(a);
      await otherClientsPrepare(t, 'sg_mg_q');
      a.write(cat(P('', 'SELECT 5'), P('sg_mg_ex', 'EXECUTE sg_mg_q'), B(''), E(), S));
      return answers(a);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['1', '1', '2', 'D:5', 'C:SELECT 1', 'Z:I']);
    // pgway: ['1', '1', 'E:26000', 'Z:I']
    expect(await run(single)).toEqual(direct);
  });

  it('in a group split across writes (a Flush between), a statement still to lay on is refused with 0A000, and nothing of the group commits', async () => {
    await adminQuery('TRUNCATE sg_mg');
    const a = await raw(single);
    a.write(Q('PREPARE sg_mg_s AS SELECT 42'));
    await answers(a);
    await otherClientsPrepare(single, 'sg_mg_s');
    a.write(cat(P('', 'INSERT INTO sg_mg VALUES (1)'), B(''), E(), H));
    expect(await upTo(a, 'C')).toEqual(['1', '2', 'C:INSERT 0 1']);
    a.write(cat(P('', 'EXECUTE sg_mg_s'), B(''), E(), S));
    expect(await answers(a)).toEqual(['E:0A000', 'Z:I']);
    a.write(Q('SELECT count(*) FROM sg_mg'));
    expect(await answers(a)).toEqual(['T', 'D:0', 'C:SELECT 1', 'Z:I']);
  });

  // Found by review round 23 A, and fixed: the refused Parse never reached the server, so the client's
  // unnamed statement before it stayed there, and a Bind pipelined in a later group ran it.
  it('an unnamed Parse refused so leaves the client no unnamed statement: a later Bind runs nothing old', async () => {
    const a = await raw(single);
    a.write(Q('PREPARE sg_mg_u AS SELECT 42'));
    await answers(a);
    await otherClientsPrepare(single, 'sg_mg_u');
    a.write(cat(P('', "SELECT 'old' AS v"), B(''), E(), H));
    expect(await upTo(a, 'C')).toEqual(['1', '2', 'D:old', 'C:SELECT 1']);
    a.write(cat(P('', 'EXECUTE sg_mg_u'), B(''), E(), S, B(''), E(), S));
    expect(await answers(a, 2)).toEqual(['E:0A000', 'Z:I', 'E:26000', 'Z:I']);
  });
});
