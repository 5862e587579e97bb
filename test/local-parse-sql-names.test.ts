// Found by review round 15 in changes of the same day, and fixed; what went wrong:
// A lone Parse+Sync of a named statement the pool already knows is answered without a server
// (RequestFlow.answerPrepareLocally), now also for texts with session effects. For a text that names
// SQL-level statements (PREPARE/EXECUTE/DEALLOCATE), the server path notes that the client parsed one
// (RequestWriter.onParse: parsedSqlNames), so that a later group binding it has the names laid on
// before its first message (GroupPlacement.placeForGroup). The local answer skips that: a later group
// that binds the statement behind another message gets 0A000 ("mid-group"), where the same client
// whose Parse went to the server (or a direct connection) runs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, type Target, P, B, E, S, Q, cat, answers } from './helpers/wire-script.js';

let gw: TestGateway;
const { raw } = rawTargets();

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

const PREP = 'PREPARE rv_q AS SELECT 1';

/** Another client's SQL-level statement of the name takes the (only) server connection; then `a` parses and binds. */
async function play(t: Target, parsedBefore: boolean): Promise<string[][]> {
  const out: string[][] = [];
  if (parsedBefore) {
    // Some client parsed the same text before: the pool knows the statement.
    const c = await raw(t);
    c.write(cat(P('rv_s', PREP), S));
    out.push(await answers(c, 1, 3000));
  }
  const b = await raw(t);
  b.write(Q("PREPARE rv_q AS SELECT 'b'"));
  out.push(await answers(b, 1, 3000));
  const a = await raw(t);
  a.write(cat(P('rv_s', PREP), S));
  out.push(await answers(a, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  a.write(cat(P('', 'SELECT 2'), B(''), E(''), B('rv_s'), E(''), S));
  out.push(await answers(a, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  a.write(Q('EXECUTE rv_q'));
  out.push(await answers(a, 1, 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  return out;
}

describe('a Parse of a PREPARE text answered without a server, then bound mid-group', () => {
  it('direct', async () => {
    expect(await play('direct', true)).toEqual([
      ['1', 'Z:I'],
      ['C:PREPARE', 'Z:I'],
      ['1', 'Z:I'],
      ['1', '2', 'D:2', 'C:SELECT 1', '2', 'C:PREPARE', 'Z:I'],
      ['T', 'D:1', 'C:SELECT 1', 'Z:I'],
    ]);
  });

  it('control: through pgway, the Parse went to the server', async () => {
    expect(await play(gw, false)).toEqual((await play('direct', true)).slice(1));
  });

  it('through pgway, the Parse answered locally: the same', async () => {
    expect(await play(gw, true)).toEqual(await play('direct', true));
  });
});
