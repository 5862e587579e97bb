// Found by review round 19 (A), and fixed: a client parsed its unnamed statement on server connection c1, then sent a
// Query that ran on c2 (which drops the unnamed statement, as in PostgreSQL: pgway counts it in
// RequestWriter.queries). Back on c1, in one write: a group that fails before its unnamed Parse (the
// server skips the Parse), then a group that binds the unnamed statement. c1 still holds the
// client's OLD statement. onParse registers an undo for the skipped Parse but no claim
// (`if (before !== this.id)`: the statement before was the client's own, parsed before a Query
// since), and it set unnamedAfterQueries to the current count, so the Bind of the next group is not
// held (UnnamedStatement.mustWait) and is taken to be the client's (UnnamedStatement.here): it runs the statement the
// Query dropped. PostgreSQL answers 26000 (the Query dropped it, the Parse was skipped).
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, D, S, Q, cat } from './helpers/wire-script.js';
import { twoConnectionSteering } from './helpers/steering.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
/** Two connections each, so that a client can be steered between them: [0] shares statements, [1] has max_prepared_statements 0. */
const gws = oneConnectionGateways(2);

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

/** Two holder clients steer y: its Parse on c1, its Query on c2, then back on c1. */
async function run(t: Target): Promise<{ out: string[][]; pids: string[] }> {
  const steer = await twoConnectionSteering(t);
  const y = await raw(t);
  const out: string[][] = [];
  const pids: string[] = [];
  const pid = (s: string[]) => pids.push(s.find((m) => m.startsWith('D:'))!.split(',').at(-1)!);
  await steer.to(1);
  y.write(cat(P('', "SELECT 'old' AS v, pg_backend_pid()::text AS pid"), B(''), E(''), S));
  const a = await read(y); out.push(a); pid(a);
  await steer.to(2);
  // y's Query on c2: it drops y's unnamed statement.
  y.write(Q('SELECT pg_backend_pid()::text AS pid'));
  const b = await read(y); out.push(b.map((m) => (m.startsWith('D:') ? 'D:pid' : m))); pids.push(b.find((m) => m.startsWith('D:'))!.slice(2));
  await steer.to(1);
  // y back on c1: a group whose unnamed Parse the server skips, then a Bind of the unnamed statement.
  y.write(cat(D('P', 'rv_nosuch'), P('', "SELECT 'new' AS v, pg_backend_pid()::text AS pid"), S, B(''), E(''), S));
  out.push(await read(y, 2));
  await steer.done();
  return { out, pids };
}

describe('a Bind behind a skipped unnamed Parse, back on the connection where a Query-dropped statement still is', () => {
  it('direct: 26000', async () => {
    const { out } = await run('direct');
    expect(out[2]).toEqual(['E:34000', 'Z:I', 'E:26000', 'Z:I']);
  });

  for (const [name, g] of [['transaction', () => gws[0]!], ['transaction, max_prepared_statements 0', () => gws[1]!]] as const) {
    it(`through pgway (${name}): 26000 too, never the dropped statement`, async () => {
      const { out, pids } = await run(g());
      // The steering worked: y's Parse and its Query ran on two different server connections.
      expect(pids[0]).not.toEqual(pids[1]);
      expect(out[2]).toEqual(['E:34000', 'Z:I', 'E:26000', 'Z:I']);
    });
  }
});
