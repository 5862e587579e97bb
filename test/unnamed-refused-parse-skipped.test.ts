// Found by review round 24 B, and fixed:
// Review B (108691c): an unnamed Parse pgway refuses itself (0A000: EXECUTE of a SQL-level statement
// that needs laying on, in the middle of a group split across writes) counts as a Parse of the
// client's (UnnamedStatement.parseRefused: parses++) even where PostgreSQL never runs it: an error
// earlier in the same group makes the server skip everything up to the Sync, the refused Parse
// included. PostgreSQL keeps the client's earlier unnamed statement, and a later Bind runs it.
// pgway: the refused Parse's synthesized answer is dropped (skipped, no error shown, as PostgreSQL),
// but the Parse count stays raised: no record matches, and the Bind gets pgway's 26000.
//   client a: PREPARE ur_u (and another client b leaves its own ur_u on the one connection);
//   a: Parse '' SELECT 'old', Sync                      -> 1, Z
//   a: Execute of a portal that does not exist, Flush    -> E:34000 (the server skips to the Sync)
//   a: Parse '' EXECUTE ur_u, Bind, Execute, Sync,      -> (skipped) Z
//      Bind '', Execute, Sync                           -> 2, D:old, C:SELECT 1, Z   (pgway: E:26000, Z)
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, B, E, Q, S, H, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

async function run(t: Target): Promise<string[][]> {
  const name = `ur_u${runs++}`;
  const out: string[][] = [];
  const a = await raw(t);
  a.write(Q(`PREPARE ${name} AS SELECT 42`));
  out.push(await read(a));
  if (t !== 'direct') {
    const b = await raw(t);
    b.write(Q(`PREPARE ${name} AS SELECT 7`));
    out.push(await read(b));
  } else out.push(['C:PREPARE', 'Z:I']);
  a.write(cat(P('', "SELECT 'old' AS v"), S));
  out.push(await read(a));
  a.write(cat(E('nope'), H));
  out.push(await upTo(a, 'E', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  a.write(cat(P('', `EXECUTE ${name}`), B(''), E(''), S, B(''), E(''), S));
  out.push(await read(a, 2));
  return out;
}

describe('an unnamed Parse pgway would refuse, in a group the server already skips to its Sync', () => {
  it('direct: the Parse is skipped, and the later Bind runs the old statement', async () => {
    expect(await run('direct')).toEqual([
      ['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I'], ['1', 'Z:I'], ['E:34000'],
      ['Z:I', '2', 'D:old', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
});

// The same, the earlier message's error not yet in when the refused Parse is written (its
// synthesized 0A000 is queued, then dropped by failHead: nothing takes the count back either).
async function runPipelined(t: Target): Promise<string[][]> {
  const name = `ur_v${runs++}`;
  const out: string[][] = [];
  const a = await raw(t);
  a.write(Q(`PREPARE ${name} AS SELECT 42`));
  out.push(await read(a));
  if (t !== 'direct') {
    const b = await raw(t);
    b.write(Q(`PREPARE ${name} AS SELECT 7`));
    out.push(await read(b));
  } else out.push(['C:PREPARE', 'Z:I']);
  a.write(cat(P('ur_slp', 'SELECT pg_sleep(0.4)'), P('', "SELECT 'old' AS v"), S));
  out.push(await read(a));
  a.write(cat(B('ur_slp'), E(''), E('nope'), H));
  await new Promise((r) => setTimeout(r, 100));
  a.write(cat(P('', `EXECUTE ${name}`), B(''), E(''), S, B(''), E(''), S));
  out.push(await read(a, 2));
  return out;
}

describe('the same, the error earlier in the group still to come when the Parse is refused', () => {
  it('direct: the Parse is skipped, and the later Bind runs the old statement', async () => {
    expect(await runPipelined('direct')).toEqual([
      ['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I'], ['1', '1', 'Z:I'],
      ['2', 'D:', 'C:SELECT 1', 'E:34000', 'Z:I', '2', 'D:old', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await runPipelined(gws[k]!)).toEqual(await runPipelined('direct'));
    });
  }
});
