// Found by review round 19 (A), and fixed: an unnamed Parse the server skips (an error earlier in its group) leaves the
// client's earlier unnamed statement in place, as pgway knows (the Bind of it in the next request
// runs it). But onParse takes the skipped statement's session effects as the unnamed statement's
// (RequestWriter.unnamedStatementEffects = effects, set when the Parse is written, never taken back),
// so the Bind stages the effects of the statement that was NOT parsed, and not those of the one that
// runs: a SET the client never ran follows it to its next connections, or one it ran is lost.
// PostgreSQL runs the surviving statement and nothing else.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, D, S, Q, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

/** y's unnamed statement `first`; a Parse of `skipped` the server skips; y binds; x uses the connection; y reads work_mem. */
async function run(t: Target, first: string, skipped: string): Promise<string[][]> {
  const out: string[][] = [];
  const y = await raw(t);
  y.write(cat(P('', first), S));
  out.push(await read(y));
  y.write(cat(D('P', 'rv_nosuch'), P('', skipped), S));
  out.push(await read(y));
  y.write(cat(B(''), E(''), S));
  out.push(await read(y));
  // Another client on the pool's only server connection: its own work_mem.
  const x = await raw(t);
  x.write(Q("SET work_mem = '128kB'"));
  out.push(await read(x));
  y.write(Q('SHOW work_mem'));
  out.push(await read(y));
  return out;
}

describe("the effects of an unnamed Parse the server skipped", () => {
  it("direct: the surviving statement runs; the skipped SET never happened", async () => {
    expect((await run('direct', 'SELECT 1 AS one', "SET work_mem = '64kB'")).at(-1)).toEqual(['T', 'D:4MB', 'C:SHOW', 'Z:I']);
  });
  it("through pgway: a SET that was never parsed does not become the client's setting", async () => {
    expect(await run(gws[0]!, 'SELECT 1 AS one', "SET work_mem = '64kB'")).toEqual(await run('direct', 'SELECT 1 AS one', "SET work_mem = '64kB'"));
  });
  it('through pgway (max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!, 'SELECT 1 AS one', "SET work_mem = '64kB'")).toEqual(await run('direct', 'SELECT 1 AS one', "SET work_mem = '64kB'"));
  });

  it('direct: the surviving statement is a SET, which runs', async () => {
    expect((await run('direct', "SET work_mem = '64kB'", 'SELECT 1 AS one')).at(-1)).toEqual(['T', 'D:64kB', 'C:SHOW', 'Z:I']);
  });
  it("through pgway: the SET that ran stays the client's setting", async () => {
    expect(await run(gws[0]!, "SET work_mem = '64kB'", 'SELECT 1 AS one')).toEqual(await run('direct', "SET work_mem = '64kB'", 'SELECT 1 AS one'));
  });
});
