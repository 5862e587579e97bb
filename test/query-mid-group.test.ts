// A simple Query sent in the middle of an extended-protocol group (after a Bind/Execute, before the
// Sync) that pgway must see answered before it writes on: a search_path change followed by a named
// Bind, a DEALLOCATE ALL, an EXECUTE of a SQL-level statement. pgway held the rest of the group until
// the server was idle, which it never is before the client's Sync: the client hung, and with a pool
// of 1 every other client waited until query_wait_timeout. Each case also checks that another client
// gets the connection afterwards (PostgreSQL 18 can leave the session broken after such a group, so
// pgway closes that connection rather than lend it: see ServerConnection.queryInsideGroup).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawTargets, type Target, P, B, E, S, Q, cat, answers } from './helpers/wire-script.js';

let gw: TestGateway;
const { raw } = rawTargets();

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
  await adminQuery('DROP SCHEMA IF EXISTS rm_qm CASCADE; DROP TABLE IF EXISTS rm_qm_t');
  await adminQuery("CREATE TABLE rm_qm_t (v text); INSERT INTO rm_qm_t VALUES ('public')");
  await adminQuery("CREATE SCHEMA rm_qm; CREATE TABLE rm_qm.rm_qm_t (v text); INSERT INTO rm_qm.rm_qm_t VALUES ('rm_qm')");
  await adminQuery('GRANT USAGE ON SCHEMA rm_qm TO app; GRANT SELECT ON rm_qm_t, rm_qm.rm_qm_t TO app');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP SCHEMA IF EXISTS rm_qm CASCADE; DROP TABLE IF EXISTS rm_qm_t');
});

type Step = [who: string, bytes: Buffer, reads: number];

async function play(t: Target, steps: Step[]): Promise<string[][]> {
  const clients = new Map<string, RawClient>();
  const out: string[][] = [];
  for (const [who, bytes, reads] of steps) {
    let c = clients.get(who);
    if (!c) { c = await raw(t); clients.set(who, c); }
    c.write(bytes);
    out.push(await answers(c, reads, 3000).catch((e: Error) => [`timeout: ${e.message}`]));
  }
  return out;
}

const scenario = (query: string, syncFirst: boolean): Step[] => [
  ['a', cat(P('sel', 'SELECT v FROM rm_qm_t'), S), 1],
  ['a', cat(B('sel'), E(''), syncFirst ? S : Buffer.alloc(0), Q(query), B('sel'), E(''), S), syncFirst ? 3 : 2],
  ['b', cat(P('', 'SELECT 7'), B(''), E(''), S), 1],
];

describe('a Query in the middle of an extended group', () => {
  for (const query of ['SET search_path = rm_qm, public', 'RESET search_path']) {
    it(`${query} between Execute and Sync, then a named Bind: answered as by PostgreSQL, pool not wedged`, async () => {
      const direct = await play('direct', scenario(query, false));
      const viaGw = await play(gw, scenario(query, false));
      expect(viaGw).toEqual(direct);
    }, 30_000);
  }

  it('control: SELECT 1 between Execute and Sync', async () => {
    expect(await play(gw, scenario('SELECT 1', false))).toEqual(await play('direct', scenario('SELECT 1', false)));
  }, 30_000);

  it('control: SET search_path after a Sync', async () => {
    const q = 'SET search_path = rm_qm, public';
    expect(await play(gw, scenario(q, true))).toEqual(await play('direct', scenario(q, true)));
  }, 30_000);

  it('DEALLOCATE ALL between Execute and Sync, then a named Bind', async () => {
    const steps: Step[] = [
      ['a', cat(P('sel', 'SELECT v FROM rm_qm_t'), S), 1],
      ['a', cat(B('sel'), E(''), Q('DEALLOCATE ALL'), B('sel'), E(''), S), 2],
      ['b', cat(P('', 'SELECT 7'), B(''), E(''), S), 1],
    ];
    expect(await play(gw, steps)).toEqual(await play('direct', steps));
  }, 30_000);

  it('EXECUTE of a SQL-level statement between Execute and Sync', async () => {
    const steps: Step[] = [
      ['a', Q('PREPARE p AS SELECT 42'), 1],
      ['a', cat(P('', 'SELECT 1'), B(''), E(''), Q('EXECUTE p'), S), 2],
      ['b', cat(P('', 'SELECT 7'), B(''), E(''), S), 1],
    ];
    expect(await play(gw, steps)).toEqual(await play('direct', steps));
  }, 30_000);

  it("EXECUTE of a statement the connection holds as another client's: refused with 0A000 (README) as a failing Query is answered there, nothing hangs", async () => {
    const x = await raw(gw);
    const a = await raw(gw);
    a.write(Q('PREPARE rm_qm_p AS SELECT 42'));
    expect(await answers(a, 1, 3000)).toEqual(['C:PREPARE', 'Z:I']);
    x.write(Q("PREPARE rm_qm_p AS SELECT 'x'"));
    expect(await answers(x, 1, 3000)).toEqual(['C:PREPARE', 'Z:I']);
    // The connection now holds x's rm_qm_p: a's needs laying on, which a Query of pgway's inside the group cannot do.
    a.write(cat(P('', 'SELECT 1'), B(''), E(''), Q('EXECUTE rm_qm_p'), S));
    expect(await answers(a, 2, 3000)).toEqual(['1', '2', 'D:1', 'C:SELECT 1', 'E:0A000', 'Z:I', 'Z:I']);
    a.write(Q('EXECUTE rm_qm_p'));
    expect(await answers(a, 1, 3000)).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
    x.write(Q('EXECUTE rm_qm_p'));
    expect(await answers(x, 1, 3000)).toEqual(['T', 'D:x', 'C:SELECT 1', 'Z:I']);
  }, 30_000);
});
