// Whose statement a name means on a shared server connection: SQL-level PREPARE / EXECUTE in
// transaction mode (GroupPlacement.placeSqlPrepared), protocol messages naming statements the client
// never prepared, an unnamed Parse the server skipped, a named Parse that failed. Each case is
// compared with what PostgreSQL answers on a direct connection. `single` (one server connection)
// makes sharing certain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, type Target, P, B, E, C, D, S, Q, answers, cat } from './helpers/wire-script.js';

let single: TestGateway;

beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await single?.stop();
});
const { raw, scenario, script } = rawTargets();


describe('SQL-level PREPARE of a name the client already prepared', () => {
  it('is refused with 42P05 and the first definition stays, as on a direct connection', async () => {
    const steps = [Q('PREPARE rc_j AS SELECT 2 AS v'), Q('PREPARE rc_j AS SELECT 3 AS v'), Q('EXECUTE rc_j')];
    const direct = await script('direct', steps);
    expect(direct).toEqual([['C:PREPARE', 'Z:I'], ['E:42P05', 'Z:I'], ['T', 'D:2', 'C:SELECT 1', 'Z:I']]);
    // pgway: the second PREPARE succeeds (pgway DEALLOCATEs the first) and EXECUTE returns 3.
    expect(await script(single, steps)).toEqual(direct);
  });
});

describe("another client's PREPARE of the same name that fails", () => {
  it("does not break this client's EXECUTE on that connection", async () => {
    const y = await raw(single);
    y.write(Q('PREPARE rc_f AS SELECT 2 AS v'));
    expect(await answers(y)).toEqual(['C:PREPARE', 'Z:I']);
    const x = await raw(single);
    x.write(Q('PREPARE rc_f AS SELECT * FROM rc_no_such_table'));
    expect(await answers(x)).toEqual(['E:42P01', 'Z:I']);
    const got: string[][] = [];
    for (let i = 0; i < 2; i++) {
      y.write(Q('EXECUTE rc_f'));
      got.push(await answers(y));
    }
    // pgway: 26000 both times (pgway's injected "DEALLOCATE rc_f; PREPARE rc_f ..." fails at the
    // DEALLOCATE, yet the connection is then taken to hold y's definition).
    expect(got).toEqual([['T', 'D:2', 'C:SELECT 1', 'Z:I'], ['T', 'D:2', 'C:SELECT 1', 'Z:I']]);
  });
});

describe('protocol messages naming a statement the client never prepared', () => {
  it("a Bind does not run another client's SQL-level prepared statement (26000, as on a direct connection)", async () => {
    const b = await raw(single);
    b.write(Q("PREPARE rc_secret AS SELECT 'b only' AS secret"));
    expect(await answers(b)).toEqual(['C:PREPARE', 'Z:I']);
    const a = await raw(single);
    a.write(cat(B('rc_secret'), E(), S));
    // pgway: ['2', 'D:b only', 'C:SELECT 1', 'Z:I']
    expect(await answers(a)).toEqual(['E:26000', 'Z:I']);
  });

  it("a Describe does not describe another client's SQL-level prepared statement", async () => {
    const b = await raw(single);
    b.write(Q("PREPARE rc_secret_d AS SELECT 'b only' AS secret"));
    expect(await answers(b)).toEqual(['C:PREPARE', 'Z:I']);
    const a = await raw(single);
    a.write(cat(D('S', 'rc_secret_d'), S));
    // pgway: ['t', 'T', 'Z:I']
    expect(await answers(a)).toEqual(['E:26000', 'Z:I']);
  });

  it("a Close does not drop another client's SQL-level prepared statement", async () => {
    const b = await raw(single);
    b.write(Q('PREPARE rc_b2 AS SELECT 42 AS v'));
    expect(await answers(b)).toEqual(['C:PREPARE', 'Z:I']);
    const a = await raw(single);
    a.write(cat(C('S', 'rc_b2'), S));
    expect(await answers(a)).toEqual(['3', 'Z:I']);
    b.write(Q('EXECUTE rc_b2'));
    // pgway: 26000 -- a's Close went to the server under b's name.
    expect(await answers(b)).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
});

describe('an unnamed Parse skipped after an error in its group', () => {
  it("does not let the client's later Bind of the unnamed statement run another client's statement", async () => {
    const run = async (target: Target, before?: () => Promise<void>): Promise<string[][]> => {
      await before?.();
      const a = await raw(target);
      // The named Parse fails (syntax error): the server skips the unnamed Parse behind it.
      a.write(cat(P('rc_k_bad', 'SELEC'), P('', 'SELECT 1 AS mine'), S));
      const first = await answers(a);
      a.write(cat(B(''), E(), S));
      return [first, await answers(a)];
    };
    const direct = await run('direct');
    expect(direct).toEqual([['E:42601', 'Z:I'], ['E:26000', 'Z:I']]);
    const viaPgway = await run(single, async () => {
      // Another client leaves its unnamed statement on the one server connection.
      const b = await raw(single);
      b.write(cat(P('', "SELECT 'other client secret' AS secret"), S));
      expect(await answers(b)).toEqual(['1', 'Z:I']);
    });
    // pgway: ['2', 'D:other client secret', 'C:SELECT 1', 'Z:I'] -- the other client's statement ran.
    expect(viaPgway).toEqual(direct);
  });
});

describe('a Query between the unnamed Parse and a later Bind of it', () => {
  it('drops the statement, also where the Query ran on another server connection', async () => {
    // Two server connections: the client's Query runs on one, its unnamed statement lives on the other.
    const pair = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
    try {
      const run = async (target: Target): Promise<string[][]> => {
        const other = await raw(target);
        const a = await raw(target);
        other.write(Q('BEGIN')); // holds one connection: the Parse runs on the other
        const out = [await answers(other)];
        a.write(cat(P('', 'SELECT 1 AS mine'), S));
        out.push(await answers(a));
        other.write(Q('COMMIT'));
        out.push(await answers(other));
        a.write(Q('SELECT 2 AS q')); // on the connection just given back (the pool lends the last one first)
        out.push(await answers(a));
        other.write(Q('BEGIN')); // holds that one again: the Bind goes where the Parse ran
        out.push(await answers(other));
        a.write(cat(B(''), E(), S));
        out.push(await answers(a));
        other.write(Q('COMMIT'));
        out.push(await answers(other));
        return out;
      };
      const direct = await run('direct');
      expect(direct[5]).toEqual(['E:26000', 'Z:I']);
      // pgway ran the dropped statement: ['2', 'D:1', 'C:SELECT 1', 'Z:I'].
      expect(await run(pair)).toEqual(direct);
    } finally {
      await pair.stop();
    }
  });
});

describe('a Parse alone (Parse, Sync) of a name the client PREPAREd in SQL', () => {
  it('is refused with 42P05 also where pgway could answer it without a server', async () => {
    const run = async (target: Target): Promise<string[][]> => {
      // Another client makes the statement known to the pool: pgway may answer a Parse of it alone.
      const other = await raw(target);
      other.write(cat(P('rc_sqlname_other', 'SELECT 5 AS five'), S));
      const out = [await answers(other)];
      const a = await raw(target);
      a.write(Q('PREPARE rc_sqlname AS SELECT 6 AS six'));
      out.push(await answers(a));
      a.write(cat(P('rc_sqlname', 'SELECT 5 AS five'), S));
      out.push(await answers(a));
      a.write(Q('EXECUTE rc_sqlname'));
      out.push(await answers(a));
      return out;
    };
    const direct = await run('direct');
    expect(direct[2]).toEqual(['E:42P05', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });
});

describe('an unnamed Parse skipped after an error, and a Bind of it in the next group of the same write', () => {
  it("does not run another client's unnamed statement", async () => {
    const run = async (target: Target, before?: () => Promise<void>): Promise<string[]> => {
      await before?.();
      const a = await raw(target);
      // The Describe fails (no such portal): the server skips the unnamed Parse behind it, and the
      // Bind after the Sync finds whatever unnamed statement the connection had.
      a.write(cat(D('P', 'rc_no_portal'), P('', 'SELECT 1 AS mine'), S, B(''), E(), S));
      return answers(a, 2);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['E:34000', 'Z:I', 'E:26000', 'Z:I']);
    const viaPgway = await run(single, async () => {
      const b = await raw(single);
      b.write(cat(P('', "SELECT 'other client secret' AS secret"), S));
      expect(await answers(b)).toEqual(['1', 'Z:I']);
    });
    // pgway: [..., '2', 'D:other client secret', 'C:SELECT 1', 'Z:I'] -- the other client's statement ran.
    expect(viaPgway).toEqual(direct);
  });
});

async function twoGroupsReusingAName(target: Target): Promise<string[]> {
  const r = await raw(target);
  // Two groups in one write: the first Parse fails, the second parses the same name correctly.
  r.write(cat(P('rc_a_stmt', 'SELEC 1'), S, P('rc_a_stmt', 'SELECT 1 AS v'), B('rc_a_stmt'), E(), S));
  return answers(r, 2);
}

describe('a named Parse that fails, then the same name parsed again later in the same write', () => {
  it('the second Parse is accepted as PostgreSQL accepts it (no 42P05)', async () => {
    const direct = await twoGroupsReusingAName('direct');
    expect(direct).toEqual(['E:42601', 'Z:I', '1', '2', 'D:1', 'C:SELECT 1', 'Z:I']);
    // pgway: ['E:42601', 'Z:I', 'E:42P05', 'Z:I']
    expect(await twoGroupsReusingAName(single)).toEqual(direct);
  });
});

describe('redefining a SQL-level prepared statement with "DEALLOCATE p; PREPARE p AS ..." inside BEGIN', () => {
  it('runs and the transaction commits, as on a direct connection', async () => {
    const steps = [
      Q('PREPARE rd_dp AS SELECT 1 AS v'),
      Q('BEGIN'),
      Q('DEALLOCATE rd_dp; PREPARE rd_dp AS SELECT 2 AS v'),
      Q('EXECUTE rd_dp'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([
      ['C:PREPARE', 'Z:I'], ['C:BEGIN', 'Z:T'], ['C:DEALLOCATE', 'C:PREPARE', 'Z:T'],
      ['T', 'D:2', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I'],
    ]);
    expect(await script(single, steps)).toEqual(direct);
  });
});

describe('inside a transaction: a PREPARE fails, ROLLBACK TO SAVEPOINT, then PREPARE of that name again', () => {
  it('the second PREPARE succeeds and the transaction goes on, as on a direct connection', async () => {
    const steps = [
      Q('BEGIN'),
      Q('SAVEPOINT s'),
      Q('PREPARE rd_sp AS SELECT * FROM rd_no_such_table'),
      Q('ROLLBACK TO SAVEPOINT s'),
      Q('PREPARE rd_sp AS SELECT 7 AS v'),
      Q('EXECUTE rd_sp'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([
      ['C:BEGIN', 'Z:T'], ['C:SAVEPOINT', 'Z:T'], ['E:42P01', 'Z:E'], ['C:ROLLBACK', 'Z:T'],
      ['C:PREPARE', 'Z:T'], ['T', 'D:7', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I'],
    ]);
    expect(await script(single, steps)).toEqual(direct);
  });
});

describe('a pinned client (temp table): a PREPARE fails, then BEGIN and a PREPARE of that name', () => {
  it('the second PREPARE succeeds inside the transaction, as on a direct connection', async () => {
    const steps = [
      Q('CREATE TEMP TABLE rd_pin_t (a int)'),
      Q('PREPARE rd_pin_p AS SELECT * FROM rd_no_such_table'),
      Q('BEGIN'),
      Q('PREPARE rd_pin_p AS SELECT 8 AS v'),
      Q('EXECUTE rd_pin_p'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([
      ['C:CREATE TABLE', 'Z:I'], ['E:42P01', 'Z:I'], ['C:BEGIN', 'Z:T'],
      ['C:PREPARE', 'Z:T'], ['T', 'D:8', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I'],
    ]);
    expect(await script(single, steps)).toEqual(direct);
  });
});

describe('pipelined: PREPARE p, PREPARE p again (refused), EXECUTE p', () => {
  it('simple protocol: EXECUTE runs the first definition, as on a direct connection', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      r.write(cat(Q('PREPARE rd_pp AS SELECT 1 AS v'), Q('PREPARE rd_pp AS SELECT 2 AS v'), Q('EXECUTE rd_pp')));
      return answers(r, 3);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['C:PREPARE', 'Z:I', 'E:42P05', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });

  it('extended protocol (one Sync per statement, pipelined): EXECUTE runs the first definition', async () => {
    const run = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      const stmt = (sql: string): Buffer => cat(P('', sql), B(''), E(), S);
      r.write(cat(stmt('PREPARE rd_px AS SELECT 1 AS v'), stmt('PREPARE rd_px AS SELECT 2 AS v'), stmt('EXECUTE rd_px')));
      return answers(r, 3);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['1', '2', 'C:PREPARE', 'Z:I', '1', '2', 'E:42P05', 'Z:I', '1', '2', 'D:1', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });
});

describe('an EXECUTE inside an aborted transaction block', () => {
  it("does not leave the connection taken to hold the client's statement: after ROLLBACK the EXECUTE runs the client's own definition", async () => {
    const steps: [string, Buffer][] = [
      ['b', Q("PREPARE rg_ab AS SELECT 'b' AS who")],
      ['a', Q("PREPARE rg_ab AS SELECT 'a' AS who")],
      ['b', Q('EXECUTE rg_ab')], // the connection holds b's definition again
      ['a', Q('BEGIN')],
      ['a', Q('SELECT 1/0')],
      ['a', Q('EXECUTE rg_ab')], // pgway injects "DEALLOCATE; PREPARE" here, refused (25P02), swallowed
      ['a', Q('ROLLBACK')],
      ['a', Q('EXECUTE rg_ab')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.at(-1)).toEqual(['T', 'D:a', 'C:SELECT 1', 'Z:I']);
    // pgway: the last EXECUTE runs b's statement ('D:b')
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('a DEALLOCATE refused inside an aborted transaction block', () => {
  it("does not make another client's EXECUTE run this client's statement", async () => {
    const steps: [string, Buffer][] = [
      ['b', Q("PREPARE rg_dd AS SELECT 'b' AS who")],
      ['a', Q("PREPARE rg_dd AS SELECT 'a' AS who")], // the connection holds a's definition
      ['a', Q('BEGIN')],
      ['a', Q('SELECT 1/0')],
      ['a', Q('DEALLOCATE rg_dd')], // refused (25P02): a still has it
      ['a', Q('ROLLBACK')],
      ['b', Q('EXECUTE rg_dd')],
      ['a', Q('EXECUTE rg_dd')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.at(-2)).toEqual(['T', 'D:b', 'C:SELECT 1', 'Z:I']);
    expect(direct.at(-1)).toEqual(['T', 'D:a', 'C:SELECT 1', 'Z:I']);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('an EXECUTE injection refused in an aborted block, then another client in a transaction', () => {
  it("does not make pgway's hidden DEALLOCATE fail and abort the other client's transaction", async () => {
    const steps: [string, Buffer][] = [
      ['b', Q("PREPARE rg_hx AS SELECT 'b' AS who")],
      ['a', Q("PREPARE rg_hx AS SELECT 'a' AS who")],
      ['c', Q("PREPARE rg_hx AS SELECT 'c' AS who")],
      ['c', Q('DEALLOCATE rg_hx')], // the connection holds no rg_hx now
      ['a', Q('BEGIN')],
      ['a', Q('SELECT 1/0')],
      ['a', Q('EXECUTE rg_hx')], // 25P02 (pgway's injected PREPARE is refused too, yet recorded)
      ['a', Q('ROLLBACK')],
      ['b', Q('BEGIN')],
      ['b', Q('EXECUTE rg_hx')],
      ['b', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(-2)).toEqual([['T', 'D:b', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    // pgway: b's EXECUTE gets 25P02 (pgway's "DEALLOCATE rg_hx" failed first) and its COMMIT is a ROLLBACK.
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('a PREPARE pipelined behind a PREPARE of the same name that fails', () => {
  it('is the statement the client has afterwards, as on a direct connection', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      a.write(Buffer.concat([Q('PREPARE rg_pp AS SELECT * FROM rg_no_such_table'), Q("PREPARE rg_pp AS SELECT 'second' AS v")]));
      const out = [await answers(a, 2)];
      a.write(Q('EXECUTE rg_pp'));
      out.push(await answers(a));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual([['E:42P01', 'Z:I', 'C:PREPARE', 'Z:I'], ['T', 'D:second', 'C:SELECT 1', 'Z:I']]);
    // pgway: the second PREPARE was taken for one of a name the client had, so it was never
    // recorded; the first one's failure then took the name back: EXECUTE gets 26000.
    expect(await run(single)).toEqual(direct);
  });
});

describe('a DEALLOCATE of a statement whose table was dropped, on a connection holding another client\'s statement of that name', () => {
  it('succeeds inside a transaction, which goes on and commits, as on a direct connection', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('CREATE TABLE rg_gone (x int)')],
      ['a', Q('PREPARE rg_dg AS SELECT * FROM rg_gone')],
      ['b', Q("PREPARE rg_dg AS SELECT 'b' AS who")], // the connection holds b's definition now
      ['a', Q('DROP TABLE rg_gone')],
      ['a', Q('BEGIN')],
      ['a', Q('DEALLOCATE rg_dg')],
      ['a', Q('SELECT 1 AS one')],
      ['a', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(-3)).toEqual([['C:DEALLOCATE', 'Z:T'], ['T', 'D:1', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    // pgway re-prepares a's definition before the DEALLOCATE ("DEALLOCATE rg_dg; PREPARE rg_dg AS
    // SELECT * FROM rg_gone"): refused (42P01), hidden, and the transaction is aborted (25P02, ROLLBACK).
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('a SQL-level prepared statement named by a keyword ("select")', () => {
  it("is laid on another client's connection under its quoted name, as on a direct connection", async () => {
    const steps: [string, Buffer][] = [
      ['a', Q(`PREPARE "select" AS SELECT 'a' AS who`)],
      ['b', Q(`PREPARE "select" AS SELECT 'b' AS who`)], // a's is dropped for b's on the one connection
      ['a', Q('EXECUTE "select"')],
      ['b', Q('EXECUTE "select"')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(2)).toEqual([['T', 'D:a', 'C:SELECT 1', 'Z:I'], ['T', 'D:b', 'C:SELECT 1', 'Z:I']]);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});
