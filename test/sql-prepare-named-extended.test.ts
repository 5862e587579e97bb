// A client's named statements (Parse) whose text is SQL-level PREPARE / EXECUTE / DISCARD ALL, in
// transaction mode through a pool of one connection that other clients share: each script runs
// directly against PostgreSQL (its answers asserted) and through pgway, which must answer the same.
// What the connection holds under a SQL-level name (another client's statement, one the client
// bound but never ran) must not change what the client's Describe, Bind and Execute see, nor fail
// a transaction block; what a DISCARD ALL dropped stays dropped once it ran, and comes back if it
// did not.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { errorFields, type RawClient } from './helpers/raw-client.js';
import { answers, B, cat, D, E, H, P, Q, rawTargets, S, summary, upTo, type Target } from './helpers/wire-script.js';

/** Like scenario, but a RowDescription shows its column names and an error its message. */
async function detailed(raw: (t: Target) => Promise<RawClient>, t: Target, steps: [string, Buffer][]): Promise<string[][]> {
  const clients = new Map<string, RawClient>();
  const out: string[][] = [];
  for (const [who, bytes] of steps) {
    let c = clients.get(who);
    if (!c) { c = await raw(t); clients.set(who, c); }
    c.write(bytes);
    const got: string[] = [];
    for (;;) {
      const m = await c.readMessage(3000);
      if (!m) { got.push('<closed>'); break; }
      if ('SNK'.includes(m.type)) continue;
      if (m.type === 'T') {
        const n = m.body.readInt16BE(0); const cols: string[] = []; let p = 2;
        for (let i = 0; i < n; i++) { const z = m.body.indexOf(0, p); cols.push(m.body.toString('utf8', p, z)); p = z + 19; }
        got.push(`T:${cols.join(',')}`);
      } else if (m.type === 'E') got.push(`E:${errorFields(m.body).get('C')}`);
      else got.push(summary(m));
      if (m.type === 'Z') break;
    }
    out.push(got);
  }
  return out;
}

let gw: TestGateway;
const { script, scenario, raw } = rawTargets();
// A gateway per test: what one test leaves on the pool's connection must not decide another's outcome.
beforeEach(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, max_prepared_statements: 3, query_wait_timeout_ms: 3000 }' });
});
afterEach(async () => { await gw?.stop(); });

describe('named statements whose text names SQL-level prepared statements', () => {
  it('two Binds of one named PREPARE statement in one group: the second gets 42P05, not 0A000', async () => {
    const steps = [cat(P('a', 'PREPARE q0 AS SELECT 1 AS pq'), B('a'), E(), B('a'), E(), S)];
    const direct = await script('direct', steps);
    expect(direct).toEqual([['1', '2', 'C:PREPARE', '2', 'E:42P05', 'Z:I']]);
    expect(await script(gw, steps)).toEqual(direct);
  });

  it('two Binds of one named PREPARE statement in one group inside a transaction block: the block fails only at the second', async () => {
    const steps = [Q('BEGIN'), cat(P('a', 'PREPARE q0 AS SELECT 1 AS pq'), B('a'), E(), B('a'), E(), S), Q('ROLLBACK')];
    const direct = await script('direct', steps);
    expect(direct).toEqual([['C:BEGIN', 'Z:T'], ['1', '2', 'C:PREPARE', '2', 'E:42P05', 'Z:E'], ['C:ROLLBACK', 'Z:I']]);
    expect(await script(gw, steps)).toEqual(direct);
  });

  it("Describe of a named statement whose text is EXECUTE q0, parsed after another client's q0 took the connection: the client's own q0 is described", async () => {
    const steps: [string, Buffer][] = [
      ['A', Q('PREPARE q0 AS SELECT 1 AS pq')],
      ['B', Q("PREPARE q0 AS SELECT 'b'::text AS other, 2 AS two")], // B's own q0, on the same (only) connection
      ['A', cat(P('a', 'EXECUTE q0'), D('S', 'a'), S)],
      ['A', cat(B('a'), D('P', ''), E(), S)],
    ];
    const direct = await detailed(raw, 'direct', steps);
    expect(direct.slice(2)).toEqual([['1', 't', 'T:pq', 'Z:I'], ['2', 'T:pq', 'D:1', 'C:SELECT 1', 'Z:I']]);
    expect(await detailed(raw, gw, steps)).toEqual(direct);
  });

  it('a named DISCARD ALL that ran, then a later error in its group: the statements it dropped stay dropped', async () => {
    const steps = [
      cat(P('a', 'SELECT 1'), P('b', 'DISCARD ALL'), S),
      cat(B('b'), E(), E('nosuch'), S), // DISCARD ALL runs; the Execute of a missing portal fails the group (34000)
      cat(B('a'), E(), S), // 'a' went with DISCARD ALL
      cat(P('a', 'SELECT 2'), S),
    ];
    const direct = await script('direct', steps);
    expect(direct).toEqual([['1', '1', 'Z:I'], ['2', 'C:DISCARD ALL', 'E:34000', 'Z:I'], ['E:26000', 'Z:I'], ['1', 'Z:I']]);
    expect(await script(gw, steps)).toEqual(direct);
  });

  it("Describe of a client's statement whose text is EXECUTE q0 (the client has no q0) does not describe another client's q0", async () => {
    const steps: [string, Buffer][] = [
      ['B', Q('PREPARE q0 (int) AS SELECT $1 AS b_col')], // B's own q0, on the (only) connection
      ['A', cat(P('a', 'EXECUTE q0(2)'), D('S', 'a'), S)], // A has no q0
      ['A', cat(D('S', 'a'), S)],
      ['A', cat(B('a'), E(), S)],
    ];
    const direct = await detailed(raw, 'direct', steps);
    expect(direct).toEqual([['C:PREPARE', 'Z:I'], ['1', 't', 'n', 'Z:I'], ['t', 'n', 'Z:I'], ['2', 'E:26000', 'Z:I']]);
    expect(await detailed(raw, gw, steps)).toEqual(direct);
  });

  it('a named PREPARE bound (no Execute) in a group an earlier error skipped: later, inside a block, its PREPARE runs and the block stays good', async () => {
    const steps = [
      cat(P('a', 'PREPARE q0 (int) AS SELECT $1 * 10 AS pq'), S),
      // 34000 first: the server skips the Bind of the PREPARE (a Bind with no Execute behind it)
      cat(D('P', 'nosuch'), B('a', [], 'p1'), S),
      Q('BEGIN'),
      cat(B('a'), E(), S), // PREPARE q0 runs now, inside the block
      Q('EXECUTE q0(4)'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct.slice(1)).toEqual([['E:34000', 'Z:I'], ['C:BEGIN', 'Z:T'], ['2', 'C:PREPARE', 'Z:T'], ['T', 'D:40', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    expect(await script(gw, steps)).toEqual(direct);
  });

  it('a named PREPARE bound and never executed: later, inside a block, its Bind/Execute runs the PREPARE and the block stays good', async () => {
    const steps = [
      cat(P('a', 'PREPARE q0 (int) AS SELECT $1 * 10 AS pq'), S),
      cat(B('a', [], 'p1'), S), // bound, not executed: nothing is prepared
      Q('BEGIN'),
      cat(B('a'), E(), S),
      Q('EXECUTE q0(4)'),
      Q('COMMIT'),
    ];
    const direct = await script('direct', steps);
    expect(direct.slice(1)).toEqual([['2', 'Z:I'], ['C:BEGIN', 'Z:T'], ['2', 'C:PREPARE', 'Z:T'], ['T', 'D:40', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    expect(await script(gw, steps)).toEqual(direct);
  });

  it("a named PREPARE one client bound and never executed does not abort another client's transaction block", async () => {
    const steps: [string, Buffer][] = [
      ['A', cat(P('a', 'PREPARE q0 AS SELECT 1 AS pq'), S)],
      ['A', cat(B('a', [], 'p1'), S)], // bound, not executed
      ['B', Q('BEGIN')],
      ['B', Q("PREPARE q0 AS SELECT 'b' AS bq")], // B's own q0, on the same (only) connection
      ['B', Q('EXECUTE q0')],
      ['B', Q('COMMIT')],
    ];
    const direct = await scenario('direct', steps);
    expect(direct.slice(2)).toEqual([['C:BEGIN', 'Z:T'], ['C:PREPARE', 'Z:T'], ['T', 'D:b', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    expect(await scenario(gw, steps)).toEqual(direct);
  });

  it('a named DISCARD ALL that fails (25001) in a Flush-split group with a Parse of its own name behind it: the name still runs DISCARD ALL', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const c = await raw(t);
      const out: string[][] = [];
      c.write(cat(P('a', 'DISCARD ALL'), S));
      out.push(await answers(c));
      // DISCARD ALL after another Execute in the group: refused (25001, implicit block); the Parse of 'a' behind it is skipped
      c.write(cat(P('', 'SELECT 1'), B(''), E(), B('a', [], 'p1'), E('p1'), P('a', 'DEALLOCATE ALL'), E('p1'), H));
      out.push(await upTo(c, 'E', 3000).catch((e: Error) => [`timeout ${e.message}`]));
      c.write(S);
      out.push(await answers(c, 1, 3000).catch((e: Error) => [`timeout ${e.message}`]));
      c.write(cat(B('a', [], 'p1'), E('p1', 2), S));
      out.push(await answers(c, 1, 3000).catch((e: Error) => [`timeout ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual([['1', 'Z:I'], ['1', '2', 'D:1', 'C:SELECT 1', '2', 'E:25001'], ['Z:I'], ['2', 'C:DISCARD ALL', 'Z:I']]);
    expect(await run(gw)).toEqual(direct);
  });

  it('a named PREPARE executed in a Flush-split group, bound again after the Flush: the second gets 42P05', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const c = await raw(t);
      const out: string[][] = [];
      c.write(cat(P('a', 'PREPARE q0 AS SELECT 1 AS pq'), S));
      out.push(await answers(c));
      c.write(cat(B('a'), E(), H));
      out.push(await upTo(c, 'C', 3000).catch((e: Error) => [`timeout ${e.message}`]));
      c.write(cat(B('a'), E(), S));
      out.push(await answers(c, 1, 3000).catch((e: Error) => [`timeout ${e.message}`]));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual([['1', 'Z:I'], ['2', 'C:PREPARE'], ['2', 'E:42P05', 'Z:I']]);
    expect(await run(gw)).toEqual(direct);
  });
});
