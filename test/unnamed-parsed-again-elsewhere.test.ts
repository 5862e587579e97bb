// Found by review round 19 (A), and fixed: a client's unnamed statement, parsed on server connection c1, then parsed
// AGAIN (another text) on server connection c2. Back on c1 (nobody else parsed there since, and the
// client sent no Query), pgway takes c1 to hold the client's unnamed statement
// (ServerStatements.unnamedOwner is still this client, unnamedAfterQueries still equals its Query
// count: UnnamedStatement.here) and forwards the Bind: it runs the client's OLD statement.
// PostgreSQL runs the newest one; README ("Unnamed statement") promises 26000 on any connection other
// than the one it was parsed on. Either is acceptable; running the superseded statement is not.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, D, S, cat } from './helpers/wire-script.js';
import { twoConnectionSteering } from './helpers/steering.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
/** Two connections each, so that a client can be steered between them: [0] shares statements, [1] has max_prepared_statements 0. */
const gws = oneConnectionGateways(2);

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

/**
 * Two holder clients steer which of the pool's two connections the client y gets: y parses 'old' on
 * one, 'new' on the other, then binds on the first. Returns y's answers and the backend pids seen.
 */
const NEW = cat(P('', "SELECT 'new' AS v, pg_backend_pid()::text AS pid"), B(''), E(''), S);

async function run(t: Target, last: Buffer, second = NEW): Promise<{ out: string[][]; pids: string[] }> {
  const steer = await twoConnectionSteering(t);
  const y = await raw(t);
  const out: string[][] = [];
  const pids: string[] = [];
  const pid = (s: string[]) => pids.push(s.find((m) => m.startsWith('D:'))!.split(',').at(-1)!);
  await steer.to(1);
  y.write(cat(P('', "SELECT 'old' AS v, pg_backend_pid()::text AS pid"), B(''), E(''), S));
  const a = await read(y); out.push(a); pid(a);
  await steer.to(2);
  // y on c2: a new unnamed statement.
  y.write(second);
  const b = await read(y); out.push(b);
  if (second === NEW) pid(b);
  await steer.to(1);
  // y back on c1: its unnamed statement is the 'new' one (parsed on c2).
  y.write(last);
  out.push(await read(y));
  await steer.done();
  return { out, pids };
}

const BIND = cat(B(''), E(''), S);
const DESCRIBE_BIND = cat(D('S', ''), B(''), E(''), S);

describe("a client's unnamed statement parsed again on another server connection", () => {
  it('direct: the Bind runs the newest statement', async () => {
    const { out } = await run('direct', BIND);
    expect(out[2]![1]).toMatch(/^D:new,/);
  });

  for (const [name, g] of [['transaction', () => gws[0]!], ['transaction, max_prepared_statements 0', () => gws[1]!]] as const) {
    it(`through pgway (${name}): a Bind back on the first connection never runs the superseded statement`, async () => {
      const { out, pids } = await run(g(), BIND);
      // The steering worked: y's two Parses ran on two different server connections.
      expect(pids[0]).not.toEqual(pids[1]);
      // 26000 (README: another connection than the one it was parsed on), or the newest statement (PostgreSQL);
      // never 'old', the statement y replaced.
      const last = out[2]!.map((m) => m.replace(/,\d+$/, ''));
      expect([JSON.stringify(['E:26000', 'Z:I']), JSON.stringify(['2', 'D:new', 'C:SELECT 1', 'Z:I'])]).toContain(JSON.stringify(last));
    });
  }

  it('through pgway: a Describe back on the first connection does not describe the superseded statement either', async () => {
    const { out } = await run(gws[0]!, DESCRIBE_BIND);
    // PostgreSQL describes and runs 'new'; README: 26000 here. pgway describes and runs 'old'.
    const last = out[2]!.map((m) => m.replace(/,\d+$/, ''));
    expect(last.some((m) => m === 'D:old')).toBe(false);
  });
});

// An unnamed Parse that fails (not one the server skips) drops the unnamed statement before it is
// parsed, in PostgreSQL: the client has none, on any connection.
describe("a client's unnamed Parse that fails on another server connection", () => {
  const FAILS = cat(P('rv_ok', "SELECT 'ok' AS v"), P('', 'SELEC broken'), S);
  it('direct: the Bind finds no unnamed statement (26000)', async () => {
    const { out } = await run('direct', BIND, FAILS);
    expect(out[1]).toEqual(['1', 'E:42601', 'Z:I']);
    expect(out[2]).toEqual(['E:26000', 'Z:I']);
  });
  it("through pgway: the same, not the statement the failed Parse dropped", async () => {
    const d = await run('direct', BIND, FAILS);
    const g = await run(gws[0]!, BIND, FAILS);
    expect(g.out.slice(1)).toEqual(d.out.slice(1));
  });
});
