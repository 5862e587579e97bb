// Found by review round 27 A, and fixed: requests that never get a ReadyForQuery, and the settling of a SET behind them.
// (1) A Query sent after an error of a group that was answered up to a Flush (no Sync queued): the
//     server skips it, so it gets no ReadyForQuery; pgway counts it written but never answered.
//   y: Parse '' SELEC 1, Flush                                        -> E:42601
//   y: Query SELECT 1 (skipped), Sync, Query SET statement_timeout = '7s', Query SELECT 1/0
//                                                                      -> Z:I, C:SET, Z:I, E:22012, Z:I
//   x: SHOW statement_timeout -> 0;  y: SHOW statement_timeout -> 7s (pgway: 0)
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, type Target, P, Q, S, H, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);
const SHOW = Q('SHOW statement_timeout');

describe('a Query skipped behind an error answered up to a Flush, then a SET and a failing statement', () => {
  const run = async (t: Target): Promise<string[][]> => {
    const y = await raw(t);
    const out: string[][] = [];
    y.write(cat(P('', 'SELEC 1'), H));
    out.push(await upTo(y, 'E', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    y.write(cat(Q('SELECT 1'), S, Q("SET statement_timeout = '7s'"), Q('SELECT 1/0')));
    out.push(await read(y, 3));
    const x = await raw(t);
    x.write(SHOW);
    out.push(await read(x, 1, 6000));
    x.destroy();
    y.write(SHOW);
    out.push(await read(y));
    y.destroy();
    return out;
  };
  it('the SET stays the client\'s', async () => {
    const direct = await run('direct');
    expect(direct.at(-1)).toContain('D:7s');
    for (const gw of gws) expect(await run(gw)).toEqual(direct);
  }, 30000);
});
