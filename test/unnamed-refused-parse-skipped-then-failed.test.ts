// Found by review round 25 B, and fixed:
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
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, Q, S, H, cat, INVALID_UTF8_PARSE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

async function run(t: Target): Promise<string[][]> {
  const name = `rb_r${runs++}`;
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
  a.write(cat(P('', `EXECUTE ${name}`), B(''), E(''), S, INVALID_UTF8_PARSE, S, B(''), E(''), S));
  out.push(await read(a, 3));
  return out;
}

describe('a refused unnamed Parse the server skips, then a later group whose unnamed Parse fails as read', () => {
  it('direct: the refused Parse is skipped, the failing Parse keeps the old statement, the Bind runs it', async () => {
    expect(await run('direct')).toEqual([
      ['C:PREPARE', 'Z:I'], ['C:PREPARE', 'Z:I'], ['1', '1', 'Z:I'],
      ['2', 'D:', 'C:SELECT 1', 'E:34000', 'Z:I', 'E:22021', 'Z:I', '2', 'D:old', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
});
