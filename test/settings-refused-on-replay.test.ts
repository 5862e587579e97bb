// A client's settings the server accepted once are laid on the next server connection without
// waiting for the verdict, with the client's request written behind them. When the server refuses
// them there, the request must not run: not without them, and never under what the previous client
// left on that connection (its SET ROLE, its search_path). The client ends with the server's refusal
// as a FATAL, and hears nothing of the request.
// The refusal needs no DDL: `SET plpgsql.extra_warning = 'all'` (a typo of extra_warnings) makes a
// placeholder PostgreSQL accepts while plpgsql is not loaded in the session; once another client ran
// a DO block on the server connection, plpgsql is loaded there and reserves its prefix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { errorFields, type RawClient } from './helpers/raw-client.js';
import { B, cat, E, H, P, Q, rawTargets, summary, type Target } from './helpers/wire-script.js';

// A pool of 1 each: a and b take turns on the same server connection. One gateway per case, since
// a case leaves plpgsql loaded on its connection.
let gw: TestGateway;
let gw2: TestGateway;
let gw3: TestGateway;

beforeAll(async () => {
  const pool = '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }';
  [gw, gw2, gw3] = await Promise.all([startGateway({ pool }), startGateway({ pool }), startGateway({ pool })]);
  await adminQuery('DROP TABLE IF EXISTS public.sr_log');
  await adminQuery('DROP SCHEMA IF EXISTS sr_private CASCADE');
  await adminQuery('DROP ROLE IF EXISTS sr_priv');
  await adminQuery('CREATE ROLE sr_priv');
  await adminQuery('GRANT sr_priv TO app');
  await adminQuery('CREATE TABLE public.sr_log (who text, path text)');
  await adminQuery('CREATE SCHEMA sr_private');
  // b's own table of the same name: under b's search_path an unqualified sr_log is this one.
  await adminQuery('CREATE TABLE sr_private.sr_log (who text, path text)');
  await adminQuery('GRANT USAGE ON SCHEMA sr_private TO sr_priv, app');
  await adminQuery('GRANT ALL ON public.sr_log, sr_private.sr_log TO sr_priv, app');
});

afterAll(async () => {
  await Promise.all([gw?.stop(), gw2?.stop(), gw3?.stop()]);
  await adminQuery('DROP TABLE IF EXISTS public.sr_log');
  await adminQuery('DROP SCHEMA IF EXISTS sr_private CASCADE');
  await adminQuery('DROP ROLE IF EXISTS sr_priv');
});

const { raw } = rawTargets();

/** The answer to a Query (or to `sql`'s messages) as summaries (errors as E:<severity> <sqlstate>); '<closed>' when none came for 3 s. */
async function run(c: RawClient, sql: string | Buffer): Promise<string[]> {
  c.write(typeof sql === 'string' ? Q(sql) : sql);
  const out: string[] = [];
  for (;;) {
    const m = await c.readMessage(3000).catch(() => undefined);
    if (!m) return [...out, '<closed>'];
    if (m.type === 'E') out.push(`E:${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}`);
    else if (m.type === 'D' || m.type === 'C') out.push(summary(m));
    if (m.type === 'Z') return out;
  }
}

/** Rows of both sr_log tables as who / path, then emptied. */
async function logged(): Promise<string[]> {
  const { rows } = await adminQuery<{ r: string }>(
    `SELECT tableoid::regclass || ': ' || who || ' / ' || path AS r FROM sr_private.sr_log UNION ALL SELECT tableoid::regclass || ': ' || who || ' / ' || path FROM public.sr_log`,
  );
  await adminQuery('TRUNCATE public.sr_log, sr_private.sr_log');
  return rows.map((r) => r.r);
}

/**
 * a's placeholder is accepted, laid on the connection once (so known to be accepted), then refused
 * there; a's answer to `request`, the rows it logged, and what b reads after.
 */
async function refusedOnReplay(t: Target, request: string | Buffer): Promise<{ answer: string[]; rows: string[]; after: string[] }> {
  const a = await raw(t);
  const b = await raw(t);
  expect(await run(a, "SET plpgsql.extra_warning = 'all'")).toEqual(['C:SET']);
  expect(await run(b, 'SET search_path = sr_private; SET ROLE sr_priv')).toEqual(['C:SET', 'C:SET']);
  expect(await run(a, 'SELECT 1')).toEqual(['D:1', 'C:SELECT 1']);
  expect(await run(b, 'DO $$ BEGIN END $$')).toEqual(['C:DO']); // loads plpgsql in b's session
  const answer = await run(a, request);
  // b goes on as it was on the connection a failed on: no failed block left, its own role and path.
  return { answer, rows: await logged(), after: await run(b, "SELECT current_user || ' / ' || current_setting('search_path')") };
}

const B_READS = ['D:sr_priv / sr_private', 'C:SELECT 1'];
const insert = `INSERT INTO sr_log SELECT current_user, current_setting('search_path') RETURNING who`;

describe("a client's settings refused when laid on again", () => {
  it('its request does not run, and the client ends with the refusal', async () => {
    // On a direct connection a's session never loaded plpgsql: its placeholder stands.
    expect(await refusedOnReplay('direct', insert)).toEqual({ answer: ['D:app', 'C:INSERT 0 1'], rows: ['sr_log: app / "$user", public'], after: B_READS });
    // Laid on without waiting, the request used to run as b's role, into b's table.
    expect(await refusedOnReplay(gw, insert)).toEqual({ answer: ['E:FATAL 42602', '<closed>'], rows: [], after: B_READS });
  });

  it('a request that begins by ending the failed block runs with the defaults, never with the last client\'s role or path', async () => {
    // The known limit (README): only the ROLLBACK gets out of the failed block, and what follows it
    // in the same request runs as the login user with default settings. The client still hears only the refusal.
    expect(await refusedOnReplay(gw2, `ROLLBACK; ${insert}`)).toEqual({ answer: ['E:FATAL 42602', '<closed>'], rows: ['sr_log: app / "$user", public'], after: B_READS });
  });

  it('an extended-protocol request waiting for more (no Sync yet) does not run either: the client ends at once', async () => {
    const unsynced = cat(P('', insert), B(''), E(''), H);
    expect(await refusedOnReplay(gw3, unsynced)).toEqual({ answer: ['E:FATAL 42602', '<closed>'], rows: [], after: B_READS });
  });
});
