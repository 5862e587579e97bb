// Found by review round 21 (minor), and fixed: 8745579 leaves the connection's record naming nobody
// when an unnamed Parse fails, also when it fails before PostgreSQL drops the old unnamed statement
// (text invalid in the client encoding, 22021) and that old statement is the CLIENT'S OWN. PostgreSQL
// keeps it, and the client's next Bind runs it; pgway answers 26000. README says nothing of it.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const y = await raw(t);
  y.write(cat(P('', "SELECT 'own' AS v"), B(''), E(''), S));
  const out = [await read(y)];
  y.write(cat(BAD_PARSE, S));
  out.push(await read(y));
  y.write(cat(B(''), E(''), S));
  out.push(await read(y));
  return out;
}

describe("a failing unnamed Parse that leaves the client's own unnamed statement in place", () => {
  it('direct: 22021, then the old statement runs', async () => {
    expect((await run('direct')).slice(1)).toEqual([['E:22021', 'Z:I'], ['2', 'D:own', 'C:SELECT 1', 'Z:I']]);
  });
  it('through pgway: the same', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });
});
