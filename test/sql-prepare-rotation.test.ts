// (Regression tests; the failures noted are fixed.) SQL-level PREPARE / EXECUTE / DEALLOCATE in
// transaction mode, with a pool of 1: every client shares one server connection, which holds the
// statements of whichever client used it last. Each case compares pgway with a direct connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawTargets, type Target, P, B, E, S, Q, answers, cat } from './helpers/wire-script.js';

let single: TestGateway;

beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await single?.stop();
});
const { raw, cleanups, scenario } = rawTargets();

// Nothing of pgway's can run in a failed transaction block, before the text that ends it: such a
// text that then needs a statement laid on is refused (README), never run with another client's.
describe('ROLLBACK; EXECUTE p (or PREPARE p) in one query string, after an error in a transaction block', () => {
  for (const [what, text, after] of [
    ['ROLLBACK; EXECUTE p', 'ROLLBACK; EXECUTE sr_rx', 'EXECUTE sr_rx'],
    ['ROLLBACK TO SAVEPOINT; EXECUTE p', 'ROLLBACK TO SAVEPOINT s; EXECUTE sr_rx', 'EXECUTE sr_rx'],
    ['ROLLBACK; PREPARE p', "ROLLBACK; PREPARE sr_rx AS SELECT 'a2' AS who", 'SELECT 1'],
  ] as const) {
    it(`${what}: refused with 0A000 while another client's statement of that name is on the connection; the block stays failed`, async () => {
      const steps: [string, Buffer][] = [
        ['b', Q("PREPARE sr_rx AS SELECT 'b' AS who")],
        ['a', Q("PREPARE sr_rx AS SELECT 'a' AS who")],
        ['b', Q('EXECUTE sr_rx')], // the connection holds b's definition
        ['a', Q('BEGIN; SAVEPOINT s')],
        ['a', Q('SELECT 1/0')],
        ['a', Q(text)],
        ['a', Q(after)],
        ['a', Q('ROLLBACK')],
        ['a', Q('EXECUTE sr_rx')],
      ];
      const out = await scenario(single, steps);
      // pgway ran b's statement for a: ['C:ROLLBACK', 'T', 'D:b', ...]
      expect(out.slice(-4)).toEqual([['E:0A000', 'Z:E'], ['E:25P02', 'Z:E'], ['C:ROLLBACK', 'Z:I'], ['T', 'D:a', 'C:SELECT 1', 'Z:I']]);
    });
  }
});

describe('a DEALLOCATE that does not run (an error before it in its query string), inside a savepoint', () => {
  it('leaves the statement working after ROLLBACK TO SAVEPOINT, as on a direct connection', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE sr_ph AS SELECT 'a' AS who")],
      ['b', Q("PREPARE sr_ph AS SELECT 'b' AS who")], // the connection holds b's definition
      ['a', Q('BEGIN')],
      ['a', Q('SAVEPOINT s')],
      ['a', Q('SELECT 1/0; DEALLOCATE sr_ph')],
      ['a', Q('ROLLBACK TO SAVEPOINT s')],
      ['a', Q('EXECUTE sr_ph')],
      ['a', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(-2)).toEqual([['T', 'D:a', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('EXECUTE of a statement whose table was dropped', () => {
  it('fails with the planner\'s error (42P01), and the other client\'s statement of that name still runs', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('CREATE TABLE sr_gone (x int)')],
      ['a', Q('PREPARE sr_dx AS SELECT * FROM sr_gone')],
      ['b', Q("PREPARE sr_dx AS SELECT 'b' AS who")],
      ['a', Q('DROP TABLE sr_gone')],
      ['a', Q('EXECUTE sr_dx')],
      ['b', Q('EXECUTE sr_dx')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(-2)).toEqual([['E:42P01', 'Z:I'], ['T', 'D:b', 'C:SELECT 1', 'Z:I']]);
    // pgway lays the statement on afresh, which fails; the client's EXECUTE, which then finds none
    // (26000), is answered with that failure.
    expect((await scenario(single, steps)).slice(-2)).toEqual(direct.slice(-2));
  });
});

describe('PREPARE with parameter types', () => {
  it('is laid on another connection with the same types', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('PREPARE sr_ty (double precision, int[], varchar(3), numeric(10, 2), "char", timestamp with time zone) AS SELECT pg_typeof($1)::text || pg_typeof($2)::text || pg_typeof($3)::text || pg_typeof($4)::text || pg_typeof($5)::text || pg_typeof($6)::text AS t, $3 AS v, $4 AS n')],
      ['b', Q("PREPARE sr_ty AS SELECT 'b' AS who")],
      ['a', Q("EXECUTE sr_ty (1, '{1}', 'abcdef', 1.234, 'x', now())")],
      ['a', Q("EXECUTE sr_ty (1, '{1}')")],
    ];
    const direct = await scenario('direct', steps);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('EXPLAIN ANALYZE EXECUTE and CREATE TABLE AS EXECUTE', () => {
  it("run the client's own statement on a connection holding another's", async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE sr_ex AS SELECT 'a'::text AS who")],
      ['b', Q("PREPARE sr_ex AS SELECT 'b'::text AS who")],
      ['a', Q('CREATE TEMP TABLE IF NOT EXISTS sr_never (x int); DROP TABLE sr_never')],
      ['a', Q('CREATE TABLE sr_ctas AS EXECUTE sr_ex')],
      ['b', Q('CREATE TABLE sr_ctas2 AS EXECUTE sr_ex')],
      ['a', Q('SELECT (SELECT who FROM sr_ctas) || (SELECT who FROM sr_ctas2) AS w; DROP TABLE sr_ctas, sr_ctas2')],
      ['b', Q('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE sr_ex')],
      ['a', Q('EXPLAIN (COSTS OFF) EXECUTE sr_ex')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct[5]).toEqual(['T', 'D:ab', 'C:SELECT 1', 'C:DROP TABLE', 'Z:I']);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('an EXECUTE pipelined behind a request that aborts the transaction block', () => {
  /** b prepares, a prepares, b executes: the one connection holds b's definition when a goes on. */
  async function setup(t: Target, name: string): Promise<RawClient> {
    const out = [];
    const b = await raw(t);
    const a = await raw(t);
    for (const [c, q] of [[b, `PREPARE ${name} AS SELECT 'b' AS who`], [a, `PREPARE ${name} AS SELECT 'a' AS who`], [b, `EXECUTE ${name}`]] as const) {
      c.write(Q(q));
      out.push(await answers(c));
    }
    expect(out).toEqual([['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I'], ['T', 'D:b', 'C:SELECT 1', 'Z:I']]);
    return a;
  }

  it("after ROLLBACK TO SAVEPOINT, EXECUTE runs the client's own statement", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await setup(t, 'sr_pl');
      const out: string[][] = [];
      for (const q of ['BEGIN', 'SAVEPOINT s']) {
        a.write(Q(q));
        out.push(await answers(a));
      }
      a.write(cat(Q('SELECT 1/0'), Q('EXECUTE sr_pl')));
      out.push(await answers(a, 2).catch((e: Error) => [`timeout: ${e.message}`]));
      for (const q of ['ROLLBACK TO SAVEPOINT s', 'EXECUTE sr_pl', 'COMMIT']) {
        a.write(Q(q));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
      }
      return out;
    };
    const direct = await run('direct');
    expect(direct.slice(-3)).toEqual([['C:ROLLBACK', 'Z:T'], ['T', 'D:a', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    expect(await run(single)).toEqual(direct);
  });

  it("pipelined BEGIN, error, EXECUTE, ROLLBACK, EXECUTE: the last runs the client's own statement", async () => {
    const run = async (t: Target): Promise<string[]> => {
      const a = await setup(t, 'sr_pl2');
      a.write(cat(Q('BEGIN'), Q('SELECT 1/0'), Q('EXECUTE sr_pl2'), Q('ROLLBACK'), Q('EXECUTE sr_pl2')));
      return answers(a, 5).catch((e: Error) => [`timeout: ${e.message}`]);
    };
    const direct = await run('direct');
    expect(direct).toEqual(['C:BEGIN', 'Z:T', 'E:22012', 'Z:E', 'E:25P02', 'Z:E', 'C:ROLLBACK', 'Z:I', 'T', 'D:a', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });
});

describe('a client that leaves while its PREPARE (which fails) is in flight', () => {
  it("does not leave the connection recorded as holding that definition for another client", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const out: string[][] = [];
      const d = await raw(t);
      const e = await raw(t);
      const step = async (c: RawClient, q: string): Promise<void> => {
        c.write(Q(q));
        out.push(await answers(c).catch((err: Error) => [`timeout: ${err.message}`]));
      };
      await step(d, 'DROP TABLE IF EXISTS sr_t2; CREATE TABLE sr_t2 (x int); INSERT INTO sr_t2 VALUES (7)');
      await step(d, 'PREPARE sr_gx AS SELECT * FROM sr_t2');
      await step(e, "PREPARE sr_gx AS SELECT 'e' AS who"); // the connection holds e's now
      await step(d, 'DROP TABLE sr_t2');
      const c = await raw(t);
      c.write(cat(Q('SELECT pg_sleep(0.3)'), Q('PREPARE sr_gx AS SELECT * FROM sr_t2')));
      await new Promise((r) => setTimeout(r, 50));
      cleanups.pop()?.(); // c's socket goes, with its PREPARE unanswered
      await new Promise((r) => setTimeout(r, 600));
      await step(d, 'CREATE TABLE sr_t2 (x int); INSERT INTO sr_t2 VALUES (8)');
      await step(d, 'EXECUTE sr_gx');
      await step(e, 'EXECUTE sr_gx');
      await step(d, 'DROP TABLE sr_t2');
      return out;
    };
    const direct = await run('direct');
    expect(direct.slice(-3)).toEqual([['T', 'D:8', 'C:SELECT 1', 'Z:I'], ['T', 'D:e', 'C:SELECT 1', 'Z:I'], ['C:DROP TABLE', 'Z:I']]);
    expect(await run(single)).toEqual(direct);
  });
});

describe('a client that leaves while its DEALLOCATE (refused in an aborted block) is in flight', () => {
  it("does not make the next client's PREPARE of that name fail", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const out: string[][] = [];
      const step = async (c: RawClient, q: string): Promise<void> => {
        c.write(Q(q));
        out.push(await answers(c).catch((err: Error) => [`timeout: ${err.message}`]));
      };
      const c = await raw(t);
      await step(c, "PREPARE sr_lx AS SELECT 'c' AS who");
      c.write(cat(Q('BEGIN'), Q('SELECT pg_sleep(0.3), 1/0'), Q('DEALLOCATE sr_lx')));
      await new Promise((r) => setTimeout(r, 50));
      cleanups.pop()?.(); // c leaves with its requests unanswered
      await new Promise((r) => setTimeout(r, 600));
      const f = await raw(t);
      await step(f, "PREPARE sr_lx AS SELECT 'f' AS who");
      await step(f, 'EXECUTE sr_lx');
      return out;
    };
    const direct = await run('direct');
    expect(direct.slice(-2)).toEqual([['C:PREPARE', 'Z:I'], ['T', 'D:f', 'C:SELECT 1', 'Z:I']]);
    expect(await run(single)).toEqual(direct);
  });
});

describe('a DEALLOCATE ALL / DISCARD ALL (simple query) that does not run', () => {
  const cases: [string, Buffer[]][] = [
    ['DEALLOCATE ALL after an error in its query string', [Q('SELECT 1/0; DEALLOCATE ALL')]],
    ['DISCARD ALL refused inside a transaction block', [Q('BEGIN'), Q('DISCARD ALL'), Q('ROLLBACK')]],
    ['DEALLOCATE ALL pipelined behind an error in a transaction block', [cat(Q('BEGIN'), Q('SELECT 1/0'), Q('DEALLOCATE ALL'), Q('ROLLBACK'))]],
  ];
  for (const [k, [label, msgs]] of cases.entries()) {
    it(`${label}: the client's protocol-level and SQL-level statements stay`, async () => {
      const run = async (t: Target): Promise<string[][]> => {
        const a = await raw(t);
        const out: string[][] = [];
        a.write(cat(P(`sr_keep${k}`, "SELECT 'kept' AS v"), S));
        out.push(await answers(a));
        a.write(Q(`PREPARE sr_keep_sql${k} AS SELECT 'kept sql' AS v`));
        out.push(await answers(a));
        for (const m of msgs) {
          a.write(m);
          const n = m.toString('latin1').split('Q').length - 1;
          out.push(await answers(a, Math.max(n, 1)).catch((e: Error) => [`timeout: ${e.message}`]));
        }
        a.write(cat(B(`sr_keep${k}`), E(), S));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        a.write(Q(`EXECUTE sr_keep_sql${k}`));
        out.push(await answers(a).catch((e: Error) => [`timeout: ${e.message}`]));
        return out;
      };
      const direct = await run('direct');
      expect(direct.slice(-2)).toEqual([['2', 'D:kept', 'C:SELECT 1', 'Z:I'], ['T', 'D:kept sql', 'C:SELECT 1', 'Z:I']]);
      expect(await run(single)).toEqual(direct);
    });
  }
});

describe('two clients PREPARE the same name with the same text', () => {
  it('the second one is not refused (42P05), as on a direct connection', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('PREPARE sr_same AS SELECT 1 AS v')],
      ['b', Q('PREPARE sr_same AS SELECT 1 AS v')],
      ['b', Q('EXECUTE sr_same')],
      ['a', Q('EXECUTE sr_same')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct).toEqual([['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I'], ['T', 'D:1', 'C:SELECT 1', 'Z:I'], ['T', 'D:1', 'C:SELECT 1', 'Z:I']]);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('the second one is not refused after the first client left', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      a.write(Q('PREPARE sr_same2 AS SELECT 2 AS v'));
      const out = [await answers(a)];
      cleanups.pop()?.(); // a leaves
      await new Promise((r) => setTimeout(r, 100));
      const b = await raw(t);
      b.write(Q('PREPARE sr_same2 AS SELECT 2 AS v'));
      out.push(await answers(b));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual([['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I']]);
    expect(await run(single)).toEqual(direct);
  });
});

describe('DEALLOCATE sent through the extended protocol, parsed but not executed', () => {
  it("leaves the client's EXECUTE running its own statement (not pgway's placeholder)", async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE sr_pd AS SELECT 'a' AS who")],
      ['b', Q("PREPARE sr_pd AS SELECT 'b' AS who")], // the connection holds b's definition
      ['a', cat(P('', 'DEALLOCATE sr_pd'), S)], // parsed, never run: a still has sr_pd
      ['a', Q('EXECUTE sr_pd')],
      ['b', Q('EXECUTE sr_pd')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(-3)).toEqual([['1', 'Z:I'], ['T', 'D:a', 'C:SELECT 1', 'Z:I'], ['T', 'D:b', 'C:SELECT 1', 'Z:I']]);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

describe('EXECUTE pipelined behind a query string whose DEALLOCATE does not run (an error before it)', () => {
  it("runs the client's own statement, as on a direct connection", async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const a = await raw(t);
      const b = await raw(t);
      const out: string[][] = [];
      for (const [c, q] of [[a, "PREPARE sr_pe AS SELECT 'a' AS who"], [b, "PREPARE sr_pe AS SELECT 'b' AS who"]] as const) {
        c.write(Q(q));
        out.push(await answers(c));
      }
      a.write(cat(Q('SELECT 1/0; DEALLOCATE sr_pe'), Q('EXECUTE sr_pe')));
      out.push(await answers(a, 2).catch((e: Error) => [`timeout: ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct.at(-1)).toEqual(['E:22012', 'Z:I', 'T', 'D:a', 'C:SELECT 1', 'Z:I']);
    expect(await run(single)).toEqual(direct);
  });
});

describe('more cases', () => {
  it('DISCARD ALL / DEALLOCATE ALL then EXECUTE: 26000, and another client keeps its own', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE sm_d AS SELECT 'a' AS who")],
      ['b', Q("PREPARE sm_d AS SELECT 'b' AS who")],
      ['a', Q('DISCARD ALL')],
      ['a', Q('EXECUTE sm_d')],
      ['b', Q('EXECUTE sm_d')],
      ['b', Q('DEALLOCATE ALL')],
      ['b', Q('EXECUTE sm_d')],
      ['a', Q("PREPARE sm_d AS SELECT 'a2' AS who; EXECUTE sm_d")],
      ['b', Q('EXECUTE sm_d')],
    ];
    const direct = await scenario('direct', steps);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('EXECUTE with the wrong number or type of parameters', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('PREPARE sm_p (int) AS SELECT $1 + 1 AS v')],
      ['b', Q("PREPARE sm_p (text) AS SELECT $1 || 'b' AS v")],
      ['a', Q('EXECUTE sm_p')],
      ['a', Q('EXECUTE sm_p (1, 2)')],
      ['a', Q("EXECUTE sm_p ('x')")],
      ['a', Q('EXECUTE sm_p (41)')],
      ['b', Q("EXECUTE sm_p ('a')")],
    ];
    const direct = await scenario('direct', steps);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('a protocol-level Parse of a name the client PREPAREd in SQL is refused (42P05)', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q("PREPARE sm_both AS SELECT 'sql' AS who")],
      ['a', cat(P('sm_both', "SELECT 'proto' AS who"), B('sm_both'), E(), S)],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.at(-1)).toEqual(['E:42P05', 'Z:I']);
    expect(await scenario(single, steps)).toEqual(direct);
  });

  it('PREPARE inside BEGIN ... ROLLBACK stays, as PREPARE is not transactional', async () => {
    const steps: [string, Buffer][] = [
      ['a', Q('BEGIN')],
      ['a', Q("PREPARE sm_tx AS SELECT 'a' AS who")],
      ['a', Q('ROLLBACK')],
      ['b', Q("PREPARE sm_tx AS SELECT 'b' AS who")],
      ['a', Q('EXECUTE sm_tx')],
      ['a', Q('BEGIN; DEALLOCATE sm_tx; ROLLBACK')],
      ['a', Q('EXECUTE sm_tx')],
      ['b', Q('EXECUTE sm_tx')],
    ];
    const direct = await scenario('direct', steps);
    expect(await scenario(single, steps)).toEqual(direct);
  });
});

const cases: [string, string, string][] = [
  ['upper case, unquoted then lower', 'RbFoo', 'rbfoo'],
  ['quoted mixed case', '"RbFoo"', '"RbFoo"'],
  ['quoted with a quote', '"rb""q"', '"rb""q"'],
  ['unicode unquoted', 'sr_été', 'sr_été'],
  ['unicode upper unquoted', 'SR_ÉTÉ', 'sr_ÉtÉ'],
  ['long unquoted (70 bytes), executed by its 63-byte prefix', 'sr_' + 'x'.repeat(67), 'sr_' + 'x'.repeat(60)],
  ['long quoted, cut inside a 2-byte character', `"${'r'.repeat(62)}é"`, `"${'r'.repeat(62)}"`],
  ['long quoted, 3-byte characters', `"${'€'.repeat(30)}"`, `"${'€'.repeat(21)}"`],
  ['long, executed with a different tail', 'sr_' + 'y'.repeat(60) + 'aaa', 'sr_' + 'y'.repeat(60) + 'bbb'],
];

describe('prepared statement names', () => {
  for (const [label, prepName, execName] of cases) {
    it(`${label}: each client runs its own statement`, async () => {
      const steps: [string, Buffer][] = [
        ['a', Q(`PREPARE ${prepName} AS SELECT 'a' AS who`)],
        ['b', Q(`PREPARE ${prepName} AS SELECT 'b' AS who`)],
        ['a', Q(`EXECUTE ${execName}`)],
        ['b', Q(`EXECUTE ${execName}`)],
        ['a', Q(`DEALLOCATE ${execName}`)],
        ['b', Q(`EXECUTE ${execName}`)],
        ['a', Q(`EXECUTE ${execName}`)],
      ];
      const direct = await scenario('direct', steps);
      expect(direct.slice(2, 4)).toEqual([['T', 'D:a', 'C:SELECT 1', 'Z:I'], ['T', 'D:b', 'C:SELECT 1', 'Z:I']]);
      expect(await scenario(single, steps)).toEqual(direct);
    });
  }
});
