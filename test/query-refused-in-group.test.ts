// Found by review round 15 in changes of the same day, and fixed; what went wrong:
// A Query inside an extended-protocol group the client has not synced, which pgway refuses with
// 0A000 (an EXECUTE of a statement it would have to lay on first, RequestWriter.write). PostgreSQL
// answers a failing Query there with ErrorResponse and ReadyForQuery 'I' (the Query's error ends
// the implicit transaction, not a transaction block) and then runs the rest of the group as usual.
// pgway answers ReadyForQuery 'E' and skips the rest of the group up to the Sync: the client is told
// it is in a failed transaction block and loses the answers to the messages behind the Query.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, P, B, E, S, Q, cat, answers } from './helpers/wire-script.js';

let gw: TestGateway;
const { raw } = rawTargets();

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

const group = (query: string): Buffer =>
  cat(P('', 'SELECT 1'), B(''), E(''), Q(query), P('', 'SELECT 2'), B(''), E(''), S);

/** What the client sees after the Query's error: the error's code masked, so refusals compare. */
const masked = (xs: string[]): string[] => xs.map((x) => (x.startsWith('E:') ? 'E:*' : x));

describe('a failing Query inside an unsynced extended group', () => {
  it('direct: error, ReadyForQuery I, then the rest of the group runs', async () => {
    const c = await raw('direct');
    c.write(group('EXECUTE rv_no_such'));
    expect(await answers(c, 2, 3000)).toEqual(['1', '2', 'D:1', 'C:SELECT 1', 'E:26000', 'Z:I', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I']);
  });

  it("through pgway, an EXECUTE refused with 0A000 there: the rest of the group answered as PostgreSQL answers it after a failing Query", async () => {
    const a = await raw(gw);
    a.write(Q('PREPARE rv_p AS SELECT 42'));
    expect(await answers(a, 1, 3000)).toEqual(['C:PREPARE', 'Z:I']);
    // Another client's statement of that name takes the connection's (pool of one).
    const b = await raw(gw);
    b.write(Q("PREPARE rv_p AS SELECT 'b'"));
    expect(await answers(b, 1, 3000)).toEqual(['C:PREPARE', 'Z:I']);
    a.write(group('EXECUTE rv_p'));
    const got = await answers(a, 2, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
    // Direct, the client's own statement simply runs; pgway may refuse it (0A000), but what follows
    // must then be what PostgreSQL answers after a Query that fails there.
    expect(masked(got)).toEqual(['1', '2', 'D:1', 'C:SELECT 1', 'E:*', 'Z:I', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I']);
  });
});
