// Settings the server accepted once are laid on again without waiting for its verdict. When it
// refuses them now, the reset before them (RESET ALL, RESET ROLE) must stand, so that the client's
// request written behind them never runs as the previous client left the connection: under its SET
// ROLE and search_path. The refusal here needs no DDL: `SET plpgsql.extra_warning = 'all'` (a typo of
// extra_warnings) is a placeholder PostgreSQL accepts while plpgsql is not loaded in the session; once
// another client ran a DO block on the server connection, plpgsql is loaded there and takes its prefix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { errorFields, type RawClient } from './helpers/raw-client.js';
import { Q, rawTargets, type Target } from './helpers/wire-script.js';

let gw: TestGateway;

beforeAll(async () => {
  // A pool of 1: a and b take turns on the same server connection.
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
  await adminQuery('DROP ROLE IF EXISTS srl_priv');
  await adminQuery('CREATE ROLE srl_priv');
  await adminQuery('GRANT srl_priv TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP ROLE IF EXISTS srl_priv');
});

const { raw } = rawTargets();

/** One Query's answer: rows as D:<values>, errors as E:<severity> <sqlstate>; '<closed>' when the connection closed first. */
async function run(c: RawClient, sql: string): Promise<string[]> {
  c.write(Q(sql));
  const out: string[] = [];
  for (;;) {
    const m = await c.readMessage(3000).catch(() => undefined);
    if (!m) return [...out, '<closed>'];
    if (m.type === 'E') out.push(`E:${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}`);
    else if (m.type === 'D') out.push(`D:${m.body.toString('utf8', 6)}`);
    if (m.type === 'Z') return out;
  }
}

describe("a client's settings refused when laid on again", () => {
  it("never runs the client's request under the previous client's role and search_path", async () => {
    const seen: Record<string, string[]> = {};
    for (const [key, t] of [['direct', 'direct'], ['pgway', gw]] as [string, Target][]) {
      const a = await raw(t);
      const b = await raw(t);
      expect(await run(a, "SET plpgsql.extra_warning = 'all'")).toEqual([]); // accepted: plpgsql not loaded yet
      expect(await run(b, "SET search_path = b_private; SET ROLE srl_priv")).toEqual([]);
      expect(await run(a, 'SELECT 1')).toEqual(['D:1']);
      expect(await run(b, 'DO $$ BEGIN END $$')).toEqual([]); // loads plpgsql in b's session
      seen[key] = await run(a, "SELECT current_user || ' / ' || current_setting('search_path')");
    }
    expect(seen.direct).toEqual(['D:app / "$user", public']);
    // pgway: ['D:srl_priv / b_private'] -- a's statement ran as b's role, under b's search_path
    expect(seen.pgway).toEqual(seen.direct);
  });
});
