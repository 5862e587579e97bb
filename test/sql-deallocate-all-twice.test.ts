// Found by review round 32 B, and fixed: a query string with two DEALLOCATE ALLs where the first
// runs and a statement between them fails. PostgreSQL keeps the first one's work (not
// transactional), so the client's protocol-level statements are gone: a Bind of one is refused
// (26000) and a Parse of its name again works. pgway tied the take-back of those statements to the
// text's last DEALLOCATE ALL, which never ran; it now ties it to the first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, cat, B, E, P, S, Q } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const { script } = rawTargets();

describe('DEALLOCATE ALL that ran, a later one in the same text that did not', () => {
  it('the protocol-level statement stays dropped', async () => {
    const steps = [
      cat(P('rdt_s', "SELECT 'proto' AS who"), S),
      Q("PREPARE rdt_a AS SELECT 'a' AS who"),
      Q('DEALLOCATE ALL; SELECT 1/0; DEALLOCATE ALL'),
      cat(B('rdt_s'), E(), S),
      cat(P('rdt_s', "SELECT 'p2' AS who"), B('rdt_s'), E(), S),
      Q('EXECUTE rdt_a'),
    ];
    const direct = await script('direct', steps);
    expect(direct.slice(2)).toEqual([
      ['C:DEALLOCATE ALL', 'E:22012', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['1', '2', 'D:p2', 'C:SELECT 1', 'Z:I'],
      ['E:26000', 'Z:I'],
    ]);
    expect(await script(gw, steps)).toEqual(direct);
  });

  it('also with a PREPARE between them that ran', async () => {
    const steps = [
      cat(P('rdt_s2', "SELECT 'proto' AS who"), S),
      Q("DEALLOCATE ALL; PREPARE rdt_b AS SELECT 'b' AS who; SELECT 1/0; DEALLOCATE ALL"),
      cat(B('rdt_s2'), E(), S),
      Q('EXECUTE rdt_b'),
    ];
    const direct = await script('direct', steps);
    expect(direct.slice(1)).toEqual([
      ['C:DEALLOCATE ALL', 'C:PREPARE', 'E:22012', 'Z:I'],
      ['E:26000', 'Z:I'],
      ['T', 'D:b', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(await script(gw, steps)).toEqual(direct);
  });
});
