// set_config with its value bound as a parameter ($1) must do what the same call with the value written
// in does: session_authorization pins the client (the identity cannot be laid on another connection),
// temp_buffers is not carried. Transaction mode, pool of 1: both clients use one server connection.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

let gw: TestGateway;
// A gateway of its own for each test: a test that leaves its server connection under another
// identity must not decide the next test's outcome.
beforeEach(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
});
afterEach(async () => {
  await gw?.stop();
});

const clients = clientsOfEachTest({ endWithinMs: 2000 });
const who = 'SELECT session_user::text AS s, current_user::text AS c';
const direct = (): string => pgUrl(lab().primary, lab().superuser, lab().superuserPassword, lab().database);

describe('session_authorization set by set_config with a bound value', () => {
  it('direct PostgreSQL: the other session is not affected, and this one is app', { timeout: 20_000 }, async () => {
    const a = await clients.connect(direct());
    const b = await clients.connect(direct());
    await a.query("SELECT set_config('session_authorization', $1, false)", ['app']);
    expect((await a.query(who)).rows).toEqual([{ s: 'app', c: 'app' }]);
    expect((await b.query(who)).rows).toEqual([{ s: 'postgres', c: 'postgres' }]);
  });

  it('through pgway: another client does not run as app', { timeout: 20_000 }, async () => {
    // Pool of 2: a, pinned, keeps its connection, and b gets the other; unpinned, a would give its
    // connection back, and b would get it (the pool hands out the connection given back last).
    const two = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
    try {
      const a = await clients.connect(two.url('admin', 'app', PASSWORDS.admin));
      const b = await clients.connect(two.url('admin', 'app', PASSWORDS.admin));
      await a.query("SELECT set_config('session_authorization', $1, false)", ['app']);
      const mine = (await a.query(who)).rows;
      const other = (await b.query(who)).rows;
      expect({ mine, other }).toEqual({ mine: [{ s: 'app', c: 'app' }], other: [{ s: 'postgres', c: 'postgres' }] });
    } finally {
      await clients.endAll();
      await two.stop();
    }
  });

  it('through pgway: a client that left under it leaves the connection clean', { timeout: 20_000 }, async () => {
    const a = await clients.connect(gw.url('admin', 'app', PASSWORDS.admin));
    await a.query("SELECT set_config('session_authorization', $1, false)", ['app']);
    await a.end();
    const b = await clients.connect(gw.url('admin', 'app', PASSWORDS.admin));
    expect((await b.query(who)).rows).toEqual([{ s: 'postgres', c: 'postgres' }]);
  });
});

describe('temp_buffers set by set_config with a bound value', () => {
  const tempUse = 'CREATE TEMP TABLE g_tb (x int); INSERT INTO g_tb VALUES (1); DROP TABLE g_tb';
  it('direct PostgreSQL: the client goes on after another session used temporary tables', { timeout: 20_000 }, async () => {
    const a = await clients.connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
    const b = await clients.connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
    await a.query("SELECT set_config('temp_buffers', $1, false)", ['2MB']);
    await b.query(tempUse);
    await b.end();
    expect((await a.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('through pgway: the client is not ended because another client used a temporary table on its connection', { timeout: 20_000 }, async () => {
    const a = await clients.connect(gw.url());
    const b = await clients.connect(gw.url());
    await a.query("SELECT set_config('temp_buffers', $1, false)", ['2MB']);
    await b.query(tempUse); // pool of 1: the same server connection; b is pinned until it leaves
    await b.end();
    let outcome: unknown;
    try {
      outcome = (await a.query('SELECT 1 AS one')).rows;
    } catch (err) {
      outcome = `${(err as { code?: string }).code} ${(err as Error).message}`;
    }
    expect(outcome).toEqual([{ one: 1 }]);
  });
});
