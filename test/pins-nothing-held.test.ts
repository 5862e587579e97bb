// Found by review round 33 C, and fixed (a lock call that may not have run, SET SESSION AUTHORIZATION
// and a transaction that made a temp table ON COMMIT DROP are followed by a question to the server):
// A client pinned for state its session does not hold keeps a server connection until it leaves:
// with a pool of 1, every other client of the pool waits and gets 57P05. Each case below leaves the
// session with no temp relation, no advisory lock and the login user as session user (checked on a
// direct connection first), so another client must get the one server connection:
// - a temp view or sequence that went with an ON COMMIT DROP table at COMMIT (DROP ... CASCADE-like:
//   PostgreSQL drops dependent objects of an on-commit-drop table);
// - a session advisory lock call that never ran (a WHERE that is false, a FROM with no rows, a CASE
//   branch not taken), as in `SELECT pg_advisory_lock(id) FROM jobs WHERE ...` finding no job;
// - SET SESSION AUTHORIZATION back to the user the connection logged in as.
// README: these pin "until that state is gone"; a lock call that may have taken nothing is followed by
// a question to the server only when it failed or was a try/unlock.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest, errorOf, sqlstate } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1500 }' });
});
afterAll(async () => { await gw?.stop(); });

const { connect } = clientsOfEachTest({ endWithinMs: 2000 });

const STATE = `SELECT (SELECT count(*)::int FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temps,
  (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
  session_user::text AS who`;

const superDirect = (): Promise<pg.Client> => {
  const info = lab();
  return connect({ ...info.primary, user: info.superuser, password: info.superuserPassword, database: 'app' });
};

const cases: [string, 'app' | 'admin', string[]][] = [
  ['a temp view on an ON COMMIT DROP table', 'app',
    ['BEGIN', 'CREATE TEMP TABLE rnh_t (a int) ON COMMIT DROP', 'CREATE TEMP VIEW rnh_v AS SELECT * FROM rnh_t', 'COMMIT']],
  ['a temp sequence owned by an ON COMMIT DROP table', 'app',
    ['BEGIN', 'CREATE TEMP TABLE rnh_t2 (a int) ON COMMIT DROP', 'CREATE TEMP SEQUENCE rnh_s OWNED BY rnh_t2.a', 'COMMIT']],
  ['pg_advisory_lock() under a WHERE that is false', 'app', ['SELECT pg_advisory_lock(93301) WHERE false']],
  ['pg_advisory_lock() over a FROM with no rows', 'app', ['SELECT pg_advisory_lock(g) FROM generate_series(1, 0) g']],
  ['pg_advisory_lock() in a CASE branch not taken', 'app', ['SELECT CASE WHEN false THEN pg_advisory_lock(93302) END']],
  ['SET SESSION AUTHORIZATION back to the login user (superuser)', 'admin', ['SET SESSION AUTHORIZATION app', 'SET SESSION AUTHORIZATION postgres']],
];

describe('a pin whose state the session does not hold', () => {
  for (const [name, user, steps] of cases) {
    it(`${name}: another client gets the (only) server connection`, async () => {
      const d = user === 'admin' ? await superDirect() : await connect(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
      for (const sql of steps) await d.query(sql.replace('AUTHORIZATION postgres', `AUTHORIZATION ${lab().superuser}`));
      const want = (await d.query(STATE)).rows[0];
      expect({ temps: want.temps, locks: want.locks }).toEqual({ temps: 0, locks: 0 });

      const a = await connect(gw.url(user));
      for (const sql of steps) await a.query(sql.replace('AUTHORIZATION postgres', `AUTHORIZATION ${lab().superuser}`));
      expect((await a.query(STATE)).rows[0]).toEqual(want);
      const b = await connect(gw.url(user));
      const err = await errorOf(b.query('SELECT 1'));
      expect(sqlstate(err), 'another client waited for the connection the first one holds for nothing').toBeUndefined();
    });
  }
});
