// Found by review rounds 24 B and 25 B, and fixed:
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
import { answers, upTo, rawTargets, type Target, P, B, E, Q, S, H, cat, INVALID_UTF8_PARSE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

/**
 * Client a prepares `name`; through pgway, client b then leaves its own `name` on the one connection,
 * so that pgway must lay a's on again (and refuses an unnamed Parse of EXECUTE of it mid-group).
 */
async function preparedElsewhere(t: Target, name: string, out: string[][]): Promise<Awaited<ReturnType<typeof raw>>> {
  const a = await raw(t);
  a.write(Q(`PREPARE ${name} AS SELECT 42`));
  out.push(await read(a));
  if (t !== 'direct') {
    const b = await raw(t);
    b.write(Q(`PREPARE ${name} AS SELECT 7`));
    out.push(await read(b));
  } else out.push(['C:PREPARE', 'Z:I']);
  return a;
}

async function run(t: Target): Promise<string[][]> {
  const name = `ur_u${runs++}`;
  const out: string[][] = [];
  const a = await preparedElsewhere(t, name, out);
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
/** `failingParse`: a group with an unnamed Parse that fails as read (22021) goes between the refused Parse and the Bind. */
async function runPipelined(t: Target, failingParse = false): Promise<string[][]> {
  const name = `ur_v${runs}`;
  // Its own name: with statements untracked (gateway 1) an earlier run's stays on the connection.
  const sleep = `ur_slp${runs++}`;
  const out: string[][] = [];
  const a = await preparedElsewhere(t, name, out);
  a.write(cat(P(sleep, 'SELECT pg_sleep(0.4)'), P('', "SELECT 'old' AS v"), S));
  out.push(await read(a));
  a.write(cat(B(sleep), E(''), E('nope'), H));
  await new Promise((r) => setTimeout(r, 100));
  a.write(cat(P('', `EXECUTE ${name}`), B(''), E(''), S, ...(failingParse ? [INVALID_UTF8_PARSE, S] : []), B(''), E(''), S));
  out.push(await read(a, failingParse ? 3 : 2));
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

// Review round 25 B (5566b71: the refusal slot of an unnamed Parse pgway refuses itself).
// UnnamedStatement.parseRefused counts the refused Parse (parses++) and its slot's undo, when the server
// skips the group there, only takes the count back if nothing was parsed since (parseNotDone). An
// unnamed Parse that begins a later group does not wait for that slot (onParse waits only inside a
// group), so it is written before the refusal's fate is known, and its UnnamedOwnerChange keeps
// parsesBefore = the count that included the refused Parse. When that later Parse then fails as the
// server reads it (invalid UTF-8, 22021: PostgreSQL keeps the unnamed statement it had), its undo sees
// that the statement before it (the client's 'old') was not the client's latest (parse 1 != parsesBefore 2),
// leaves the record nobody's, and the client's Bind gets pgway's 26000 where PostgreSQL runs 'old'.
//   a: PREPARE rb_r (and client b leaves its own rb_r on the one connection)
//   a: Parse ur_slp pg_sleep(0.4), Parse '' SELECT 'old', Sync                 -> 1, 1, Z
//   a: Bind ur_slp, Execute, Execute of a portal that does not exist, Flush    (34000 comes after 0.4 s)
//   a (100 ms later): Parse '' EXECUTE rb_r (pgway refuses it mid-group), Bind, Execute, Sync,
//      invalid-UTF-8 Parse '', Sync, Bind '', Execute, Sync
//   direct:  2, D:, C:SELECT 1, E:34000, Z, E:22021, Z, 2, D:old, C:SELECT 1, Z
//   pgway:   ... E:22021, Z, E:26000, Z
describe('a refused unnamed Parse the server skips, then a later group whose unnamed Parse fails as read', () => {
  it('direct: the refused Parse is skipped, the failing Parse keeps the old statement, the Bind runs it', async () => {
    expect(await runPipelined('direct', true)).toEqual([
      ['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I'], ['1', '1', 'Z:I'],
      ['2', 'D:', 'C:SELECT 1', 'E:34000', 'Z:I', 'E:22021', 'Z:I', '2', 'D:old', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await runPipelined(gws[k]!, true)).toEqual(await runPipelined('direct', true));
    });
  }
});
