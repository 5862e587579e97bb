// SQL-level PREPARE / EXECUTE / DEALLOCATE in transaction mode, compared with a direct
// connection. `single` (pool size 1) makes the clients share one server connection.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawAfterLogin, Q, answers } from './helpers/wire-script.js';

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

/** Runs [client, message] steps in order, each client its own connection; the answers, one list per step. */
async function scenario(t: Target, steps: [string, Buffer][]): Promise<string[][]> {
  const clients = new Map<string, RawClient>();
  const out: string[][] = [];
  for (const [who, bytes] of steps) {
    let c = clients.get(who);
    if (!c) {
      c = await raw(t);
      clients.set(who, c);
    }
    c.write(bytes);
    out.push(await answers(c));
  }
  return out;
}

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
