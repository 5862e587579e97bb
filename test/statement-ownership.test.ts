// Whose statement a name means on a shared server connection: SQL-level PREPARE / EXECUTE in
// transaction mode (RequestWriter.placeSqlPrepared), protocol messages naming statements the client
// never prepared, an unnamed Parse the server skipped, a named Parse that failed. Each case is
// compared with what PostgreSQL answers on a direct connection. `single` (one server connection)
// makes sharing certain.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawAfterLogin, P, B, E, C, D, S, Q, answers, cat } from './helpers/wire-script.js';

let single: TestGateway;

beforeAll(async () => {
  single = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await single?.stop();
});
const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

type Target = TestGateway | 'direct';
const raw = (t: Target): Promise<RawClient> =>
  rawAfterLogin(t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : t.url(), (end) => cleanups.push(end));

async function script(t: Target, steps: Buffer[]): Promise<string[][]> {
  const r = await raw(t);
  const out: string[][] = [];
  for (const bytes of steps) {
    r.write(bytes);
    out.push(await answers(r));
  }
  return out;
}

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
