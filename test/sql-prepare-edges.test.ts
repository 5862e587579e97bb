// SQL-level PREPARE / EXECUTE / DEALLOCATE at the edges of what pgway lays on a connection, in
// transaction mode with one server connection that clients take turns on, against a direct one:
// - an extended-protocol group split by a Flush, and the unnamed statement of an earlier request,
//   whose SQL-level statements cannot be laid on where they are needed: refused with 0A000, never
//   run with another client's statement of the name;
// - a pipelined Bind of a statement whose text is PREPARE waits for the answers before it;
// - DEALLOCATE ALL / DISCARD ALL that does not run leaves the client's statements, and the shared
//   copies on the connection, as they were;
// - names: a SQL PREPARE of a name prepared through the protocol is refused (42P05); an EXECUTE after
//   the text's own DEALLOCATE is the server's to answer; a failed DEALLOCATE puts only its own name
//   in doubt.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, type Target, answers, cat, upTo, B, D, E, H, P, S, Q } from './helpers/wire-script.js';

let single: TestGateway;
beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await single?.stop();
});
const { raw, scenario } = rawTargets();

describe('a group split by a Flush, whose first part names a SQL-level statement', () => {
  it("never runs another client's statement of a name the second part names", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const out: string[][] = [];
      const a = await raw(t);
      a.write(Q("PREPARE spe_sp_q AS SELECT 'a-q' AS who; PREPARE spe_sp_p AS SELECT 'a-p' AS who"));
      out.push(await answers(a));
      if (t !== 'direct') {
        // b leaves its own spe_sp_p on the one connection, and a's spe_sp_q is laid on again below
        const b = await raw(t);
        b.write(Q("PREPARE spe_sp_p AS SELECT 'b-p' AS who; PREPARE spe_sp_q AS SELECT 'b-q' AS who"));
        out.push(await answers(b));
      } else {
        out.push(['C:PREPARE', 'C:PREPARE', 'Z:I']);
      }
      a.write(cat(P('', 'EXECUTE spe_sp_q'), B(''), E(), H));
      out.push(await upTo(a, 'C').catch((e: Error) => [`timeout: ${e.message}`]));
      a.write(cat(P('', 'EXECUTE spe_sp_p'), B(''), E(), S));
      out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct.slice(2)).toEqual([['1', '2', 'D:a-q', 'C:SELECT 1'], ['1', '2', 'D:a-p', 'C:SELECT 1', 'Z:I']]);
    // pgway cannot lay a's statement on mid-group (a Query would commit the group so far): it refuses (README).
    expect(await run(single)).toEqual([...direct.slice(0, 3), ['E:0A000', 'Z:I']]);
  });

  it("a Describe in the second part describes the client's own statement", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const out: string[][] = [];
      const a = await raw(t);
      a.write(Q("PREPARE spe_sp_q2 AS SELECT 'a-q' AS who; PREPARE spe_sp_p2 AS SELECT 1 AS a_only"));
      out.push(await answers(a));
      if (t !== 'direct') {
        const b = await raw(t);
        b.write(Q("PREPARE spe_sp_p2 AS SELECT 1 AS b1, 2 AS b2, 3 AS b3; PREPARE spe_sp_q2 AS SELECT 'b-q' AS who"));
        out.push(await answers(b));
      } else {
        out.push(['C:PREPARE', 'C:PREPARE', 'Z:I']);
      }
      a.write(cat(P('', 'EXECUTE spe_sp_q2'), B(''), E(), H));
      out.push(await upTo(a, 'C').catch((e: Error) => [`timeout: ${e.message}`]));
      a.write(cat(D('S', 'spe_sp_p2'), S));
      const { message, before } = await a.readUntil('Z', 5000);
      const t2 = before.find((m) => m.type === 'T');
      out.push([...before.map((m) => m.type), message.type, `columns:${t2 ? t2.body.readInt16BE(0) : 'none'}`]);
      return out;
    };
    const direct = await run('direct');
    expect(direct.at(-1)).toEqual(['t', 'T', 'Z', 'columns:1']);
    expect(await run(single)).toEqual([...direct.slice(0, 3), ['E', 'Z', 'columns:none']]);
  });
});

describe('Bind of an unnamed "EXECUTE p" in a later request', () => {
  it("never runs another client's statement p", async () => {
    const run = async (t: Target): Promise<string[][]> => {
    const a = await raw(t);
    const b = await raw(t);
    const out: string[][] = [];
    const step = async (c: typeof a, m: Buffer): Promise<void> => {
      c.write(m);
      out.push(await answers(c).catch((e: Error) => [`timeout: ${e.message}`]));
    };
    await step(a, Q("PREPARE spe_un AS SELECT 'x' AS who"));
    await step(b, Q("PREPARE spe_un AS SELECT 'x' AS who")); // same text: the connection holds one copy for both
    await step(a, cat(P('', 'EXECUTE spe_un'), S)); // a's unnamed statement, on the one connection
    // b deallocates and prepares spe_un again, all through named protocol statements in one group
    await step(b, cat(P('spe_bx', 'DEALLOCATE spe_un'), B('spe_bx'), E(), P('spe_bm', "PREPARE spe_un AS SELECT 'b' AS who"), B('spe_bm'), E(), S));
    await step(a, cat(B(''), E(), S));
    return out;
    };
    const direct = await run('direct');
    expect(direct.at(-1)).toEqual(['2', 'D:x', 'C:SELECT 1', 'Z:I']);
    // Laying a's spe_un on again (a simple Query) would drop the unnamed statement itself: pgway refuses (README).
    expect(await run(single)).toEqual([...direct.slice(0, -1), ['E:0A000', 'Z:I']]);
  });
});

describe('a pipelined Bind of a named statement whose text is PREPARE', () => {
  it('prepares the SQL-level statement, as on a direct connection (raw protocol)', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const out: string[][] = [];
      a.write(cat(P('spe_mk', 'PREPARE spe_pb AS SELECT 41 + 1 AS v'), B('spe_mk'), E(), S));
      out.push(await answers(a));
      a.write(Q('DEALLOCATE spe_pb'));
      out.push(await answers(a));
      // Two groups in one write: the second starts while the first is unanswered.
      a.write(cat(P('', 'SELECT 1'), B(''), E(), S, B('spe_mk'), E(), S));
      out.push(await answers(a, 2).catch((e: Error) => [`timeout: ${e.message}`]));
      a.write(Q('EXECUTE spe_pb'));
      out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct.slice(-2)).toEqual([['1', '2', 'D:1', 'C:SELECT 1', 'Z:I', '2', 'C:PREPARE', 'Z:I'], ['T', 'D:42', 'C:SELECT 1', 'Z:I']]);
    expect(await run(single)).toEqual(direct);
  });
});

describe('DISCARD ALL refused inside a transaction block (25001), then ROLLBACK TO SAVEPOINT', () => {
  it("the client's protocol-level statement still binds in the same transaction", async () => {
    const steps: [string, Buffer][] = [
      ['a', cat(P('spe_d1', "SELECT 'kept' AS v"), B('spe_d1'), E(), S)],
      ['a', Q('BEGIN; SAVEPOINT s')],
      ['a', Q('DISCARD ALL')],
      ['a', Q('ROLLBACK TO SAVEPOINT s')],
      ['a', cat(B('spe_d1'), E(), S)],
      ['a', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(2)).toEqual([['E:25001', 'Z:E'], ['C:ROLLBACK', 'Z:T'], ['2', 'D:kept', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('DEALLOCATE ALL that does not run (an error before it in its Query), with messages pipelined behind it', () => {
  it("a Bind of the client's protocol-level statement in the same write runs it", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const out: string[][] = [];
      a.write(cat(P('spe_d2', "SELECT 'kept' AS v"), B('spe_d2'), E(), S));
      out.push(await answers(a));
      a.write(cat(Q('SELECT 1/0; DEALLOCATE ALL'), B('spe_d2'), E(), S));
      out.push(await answers(a, 2).catch((e: Error) => [`timeout: ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct[1]).toEqual(['E:22012', 'Z:I', '2', 'D:kept', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });

  it("a Describe of the client's SQL-level statement in the same write describes it", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const out: string[][] = [];
      a.write(Q("PREPARE spe_d3 AS SELECT 'kept' AS v"));
      out.push(await answers(a));
      a.write(cat(Q('SELECT 1/0; DEALLOCATE ALL'), D('S', 'spe_d3'), S));
      out.push(await answers(a, 2).catch((e: Error) => [`timeout: ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct[1]).toEqual(['E:22012', 'Z:I', 't', 'T', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });
});

describe('SQL PREPARE of a name the client prepared through the protocol', () => {
  it('is refused with 42P05, as PostgreSQL refuses it', async () => {
    const steps: [string, Buffer][] = [
      ['a', cat(P('spe_n1', "SELECT 'proto' AS v"), S)],
      ['a', Q("PREPARE spe_n1 AS SELECT 'sql' AS v")],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.at(-1)).toEqual(['E:42P05', 'Z:I']);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('EXECUTE p; DEALLOCATE p; EXECUTE p in one Query', () => {
  it('runs the first EXECUTE and the DEALLOCATE before the error, as PostgreSQL does', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE spe_n2 AS SELECT 'a' AS who")],
      ['a', Q('EXECUTE spe_n2; DEALLOCATE spe_n2; EXECUTE spe_n2')],
      ['a', Q('DEALLOCATE spe_n2')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(1)).toEqual([['T', 'D:a', 'C:SELECT 1', 'C:DEALLOCATE', 'E:26000', 'Z:I'], ['E:26000', 'Z:I']]);
    // The failed Query's DEALLOCATE ran, and stays done.
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('ROLLBACK; EXECUTE p after a statement of the block that named a SQL-level statement failed', () => {
  it("runs the client's own statement (no other client on the connection)", async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE spe_n3 AS SELECT 'a' AS who")],
      ['a', Q('BEGIN')],
      ['a', Q('DEALLOCATE spe_n3_none')],
      ['a', Q('ROLLBACK; EXECUTE spe_n3')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.at(-1)).toEqual(['C:ROLLBACK', 'T', 'D:a', 'C:SELECT 1', 'Z:I']);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});
