// A client is pinned only while its session holds the state behind the pin. In the cases below that
// state is gone, or never came, though the statement that makes or releases it did not commit. Each is
// run on direct PostgreSQL and then through pgway with a pool of 1, where another client must get the
// one server connection (a client pinned for nothing keeps it, and the other waits out 57P05):
// - CLOSE of a WITH HOLD cursor (or CLOSE ALL) and pg_advisory_unlock_all() take effect at once: a
//   ROLLBACK, a ROLLBACK TO or an error later in the same query string does not bring the cursor or
//   the lock back (a CLOSE that never ran, after an error, leaves the cursor, and its pin).
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { errorOf, sleep, sqlstate } from './helpers/pg-helpers.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1500 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const opened: pg.Client[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => Promise.race([c.end().catch(() => undefined), sleep(2000)])));
});

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  opened.push(c);
  await c.connect();
  return c;
}

const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

const STATE = `SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::int AS locks,
  (SELECT count(*) FROM pg_cursors)::int AS cursors`;

const HOLD = 'BEGIN; DECLARE pe_c CURSOR WITH HOLD FOR SELECT 1; COMMIT';

const cases: [string, string[]][] = [
  ['CLOSE of a WITH HOLD cursor in a transaction that rolls back', [HOLD, 'BEGIN', 'CLOSE pe_c', 'ROLLBACK']],
  ['CLOSE of a WITH HOLD cursor followed by an error in the same query string', [HOLD, 'CLOSE pe_c; SELECT 1/0']],
  ['CLOSE ALL in a transaction that rolls back', [HOLD, 'BEGIN', 'CLOSE ALL', 'ROLLBACK']],
  ['CLOSE of a WITH HOLD cursor rolled back to a savepoint', [HOLD, 'BEGIN; SAVEPOINT s; CLOSE pe_c; ROLLBACK TO s; COMMIT']],
  ['pg_advisory_unlock_all() in a transaction that rolls back', ['SELECT pg_advisory_lock(4711)', 'BEGIN', 'SELECT pg_advisory_unlock_all()', 'ROLLBACK']],
  ['pg_advisory_unlock_all() followed by an error in the same query string', ['SELECT pg_advisory_lock(4712)', 'SELECT pg_advisory_unlock_all(); SELECT 1/0']],
  ['CLOSE of one of two WITH HOLD cursors rolled back, then CLOSE of the other',
    [`${HOLD}; DECLARE pe_d CURSOR WITH HOLD FOR SELECT 2`, 'BEGIN', 'CLOSE pe_c', 'ROLLBACK', 'CLOSE pe_d']],
];

describe('a release PostgreSQL does not roll back', () => {
  for (const [name, steps] of cases) {
    it(`${name}: nothing is left, so another client gets the (only) server connection`, async () => {
      // Direct: the cursor and the lock are gone after the steps.
      const d = await connect(directUrl());
      for (const sql of steps) await d.query(sql).catch(() => undefined);
      expect((await d.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 0 });

      // pgway, pool of 1: the same steps, then the state is gone there too...
      const a = await connect(gw.url());
      for (const sql of steps) await a.query(sql).catch(() => undefined);
      expect((await a.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 0 });
      // ...so another client must be able to run a statement (a pinned `a` makes it wait out 57P05).
      const b = await connect(gw.url());
      const err = await errorOf(b.query('SELECT 1'));
      expect(sqlstate(err), 'another client waited for the connection the first one no longer needs').toBeUndefined();
    });
  }
});

describe('a CLOSE that did not run, in a transaction that had failed before it', () => {
  it('the cursor stays, and so does the pin, until a CLOSE that runs', async () => {
    const steps = [HOLD, 'BEGIN', 'SELECT 1/0', 'CLOSE pe_c', 'ROLLBACK'];
    const d = await connect(directUrl());
    for (const sql of steps) await d.query(sql).catch(() => undefined);
    expect((await d.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 1 });

    const a = await connect(gw.url());
    for (const sql of steps) await a.query(sql).catch(() => undefined);
    expect((await a.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 1 });
    const b = await connect(gw.url());
    expect(sqlstate(await errorOf(b.query('SELECT 1'))), 'the cursor went to another client').toBe('57P05');
    await a.query('CLOSE pe_c');
    expect(sqlstate(await errorOf(b.query('SELECT 1')))).toBeUndefined();
  });
});
