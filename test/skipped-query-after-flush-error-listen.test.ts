// Found by review round 27 A, and fixed: a Query skipped behind an error answered up to a Flush gets no ReadyForQuery, but
// pgway counts it as a request still to be answered (requestsUnanswered is not told): the requests
// behind it are settled one late. A LISTEN in the next request, followed by a failing statement, is
// taken to have been rolled back: the pin is lifted, the connection goes back to the pool still
// listening; y misses the notification, and the next client of that connection gets it instead.
//   y: Parse '' SELEC 1, Flush                                        -> E:42601
//   y: Query SELECT 1 (skipped), Sync, Query LISTEN ch, Query SELECT 1/0 -> Z:I, C:LISTEN, Z:I, E:22012, Z:I
//   x: NOTIFY ch, 'hi'                                                -> C:NOTIFY, Z:I
//   y: SELECT 5                                                       -> A (the notification), T, D:5, C, Z:I
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, Q, S, H, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways(2);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

const run = async (t: Target): Promise<string[][]> => {
  const y = await raw(t);
  const out: string[][] = [];
  y.write(cat(P('', 'SELEC 1'), H));
  out.push(await upTo(y, 'E', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  y.write(cat(Q('SELECT 1'), S, Q('LISTEN r27a_ch'), Q('SELECT 1/0')));
  out.push(await read(y, 3));
  const x = await raw(t);
  x.write(Q("NOTIFY r27a_ch, 'hi'"));
  out.push(await read(x, 1, 6000));
  await new Promise((r) => setTimeout(r, 200));
  y.write(Q('SELECT 5 AS v'));
  out.push(await read(y));
  x.destroy();
  y.destroy();
  return out;
};

describe('a LISTEN behind a Query skipped after a Flushed error', () => {
  it('stays the client\'s', async () => {
    const direct = await run('direct');
    expect(direct.at(-1)![0]).toBe('A');
    for (const gw of gws) expect(await run(gw)).toEqual(direct);
  }, 30000);
});
