// The session effects of statements run through named portals (Bind to a portal name, Execute it
// later): pgway follows at most 64 such portals open at once per client; past that the client keeps
// its server connection, so that nothing a portal it no longer follows does (here a session
// advisory lock) reaches another client. Portals end with their transaction: binding many over
// many transactions pins nothing. Each case runs on direct PostgreSQL and on pgway with a pool of 1,
// where the next client gets the first one's server connection as soon as it is let go.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, B, cat, E, P, Q, rawTargets, S, X, type Target } from './helpers/wire-script.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2000 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const { raw } = rawTargets();

const LOCKS_HELD = Q("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()");

describe('an advisory lock taken through the 1st of 65 named portals with session effects, open at once', () => {
  it('stays with its client while it is connected, and never reaches the next one', async () => {
    const seen: Record<string, string[][]> = {};
    for (const [key, t, lock] of [['direct', 'direct', 4800], ['pgway', gw, 4801]] as [string, Target, number][]) {
      const a = await raw(t);
      const parts: Buffer[] = [Q('BEGIN'), P('', `SELECT pg_advisory_lock(${lock})`), B('', [], 'p0'), P('', "SELECT set_config('rd.x', 'v', false)")];
      for (let i = 1; i <= 64; i++) parts.push(B('', [], `p${i}`));
      parts.push(E('p0'), S, Q('COMMIT'));
      a.write(cat(...parts));
      const made = (await answers(a, 3)).filter((m) => m.startsWith('E:'));
      a.write(LOCKS_HELD);
      const own = await answers(a);
      a.write(X);
      expect(await a.readByte()).toBeUndefined(); // the session is over
      const b = await raw(t);
      b.write(LOCKS_HELD);
      seen[key] = [made, own, await answers(b).catch((e: Error) => [`no answer: ${e.message}`])];
    }
    expect(seen.direct).toEqual([[], ['T', 'D:1', 'C:SELECT 1', 'Z:I'], ['T', 'D:0', 'C:SELECT 1', 'Z:I']]);
    expect(seen.pgway).toEqual(seen.direct);
  });
});

describe('65 named portals with session effects, one transaction each', () => {
  it('are followed as usual: the client is not pinned and its setting is carried', async () => {
    const seen: Record<string, string[]> = {};
    for (const [key, t] of [['direct', 'direct'], ['pgway', gw]] as [string, Target][]) {
      const a = await raw(t);
      a.write(P('fx', "SELECT set_config('rd.y', 'w', false)"));
      for (let i = 0; i < 65; i++) {
        a.write(cat(B('fx', [], `q${i}`), E(`q${i}`), S));
        expect((await answers(a)).filter((m) => m.startsWith('E:'))).toEqual([]);
      }
      // Another client needs the one server connection, which a pinned client would keep.
      const b = await raw(t);
      b.write(Q('SELECT 1'));
      a.write(Q("SELECT current_setting('rd.y')"));
      seen[key] = [...(await answers(b).catch((e: Error) => [`no answer: ${e.message}`])), ...(await answers(a))];
    }
    expect(seen.direct).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I', 'T', 'D:w', 'C:SELECT 1', 'Z:I']);
    expect(seen.pgway).toEqual(seen.direct);
  });
});
