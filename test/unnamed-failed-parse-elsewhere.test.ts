// From review round 22 (E), minor: a client's unnamed statement parsed on connection c1; on c2 the
// client sends an unnamed Parse that fails. PostgreSQL drops the old unnamed statement before it
// parses (a syntax error: the client has none), but not when the message fails while being read
// (text invalid in UTF8, 22021: the client's statement stays). pgway cannot tell the two apart from
// the error, and takes the Parse to have dropped it: a Bind back on c1 gets 26000 (README, "Unnamed
// statement"). These cases pin that down: the syntax error as PostgreSQL, the early failure as README says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, rawTargets, type Target, P, B, E, S, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { twoConnectionSteering } from './helpers/steering.js';

const { raw } = rawTargets();
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target, failing = BAD_PARSE): Promise<string[][]> {
  const steer = await twoConnectionSteering(t);
  const y = await raw(t);
  const out: string[][] = [];
  await steer.to(1);
  y.write(cat(P('', "SELECT 'own' AS v"), B(''), E(''), S));
  out.push(await read(y));
  await steer.to(2);
  y.write(cat(failing, S));
  out.push(await read(y));
  await steer.to(1);
  y.write(cat(B(''), E(''), S));
  out.push(await read(y));
  await steer.done();
  return out;
}

const SYNTAX = P('', 'SELEC broken');

describe('an unnamed Parse failing on another connection, then a Bind back where the statement lived', () => {
  it('direct, a syntax error: 42601, then 26000 (the Parse dropped the statement)', async () => {
    expect((await run('direct', SYNTAX)).slice(1)).toEqual([['E:42601', 'Z:I'], ['E:26000', 'Z:I']]);
  });
  it('through pgway, a syntax error: the same', async () => {
    expect(await run(gw, SYNTAX)).toEqual(await run('direct', SYNTAX));
  });
  it('direct, text invalid in UTF8: 22021, then the statement runs (the Parse failed before the drop)', async () => {
    expect((await run('direct')).slice(1)).toEqual([['E:22021', 'Z:I'], ['2', 'D:own', 'C:SELECT 1', 'Z:I']]);
  });
  it('through pgway, text invalid in UTF8: 22021, then 26000 (README), never another statement', async () => {
    expect((await run(gw)).slice(1)).toEqual([['E:22021', 'Z:I'], ['E:26000', 'Z:I']]);
  });
});
