// A client is pinned only while its session holds the state behind the pin. In the cases below that
// state is gone, or never came, though the statement that makes or releases it did not commit. Each is
// run on direct PostgreSQL and then through pgway with a pool of 1, where another client must get the
// one server connection (a client pinned for nothing keeps it, and the other waits out 57P05):
// - CLOSE of a WITH HOLD cursor (or CLOSE ALL) and pg_advisory_unlock_all() take effect at once: a
//   ROLLBACK, a ROLLBACK TO or an error later in the same query string does not bring the cursor or
//   the lock back (a CLOSE that never ran, after an error, leaves the cursor, and its pin).
// - A session advisory lock call that failed (lock_timeout, statement_timeout, a cancel request, a bad
//   argument) took no lock (one taken before a later error in the query string stays, with its pin).
// - A SET SESSION AUTHORIZATION rolled back, followed by an error, or refused leaves the session to its
//   login user (or to the session user of one that committed before it, which keeps the pin).
import net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest, errorOf, sqlstate, waitFor } from './helpers/pg-helpers.js';
import { cancelRequestPacket } from './helpers/raw-client.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1500 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const { connect } = clientsOfEachTest({ endWithinMs: 2000 });

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

describe('a session advisory lock that was never taken', () => {
  const failures: [string, string[]][] = [
    ['its wait ended by lock_timeout (55P03)', ["SET lock_timeout = '200ms'", 'SELECT pg_advisory_lock(4720)']],
    ['its wait ended by statement_timeout (57014)', ["SET statement_timeout = '200ms'", 'SELECT pg_advisory_lock(4720)']],
    ['its argument failed to cast (22P02)', ["SELECT pg_advisory_lock('x'::text::bigint)"]],
  ];
  for (const [name, steps] of failures) {
    it(`${name}: another client gets the (only) server connection`, async () => {
      // Lock 4720 is held by a direct session for the whole test.
      const holder = await connect(directUrl());
      await holder.query('SELECT pg_advisory_lock(4720)');

      const d = await connect(directUrl());
      const directErrors: (string | undefined)[] = [];
      for (const sql of steps) directErrors.push(sqlstate(await errorOf(d.query(sql))));
      expect((await d.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 0 });

      const a = await connect(gw.url());
      const errors: (string | undefined)[] = [];
      for (const sql of steps) errors.push(sqlstate(await errorOf(a.query(sql))));
      expect(errors).toEqual(directErrors);
      expect((await a.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 0 });
      const b = await connect(gw.url());
      const err = await errorOf(b.query('SELECT 1'));
      expect(sqlstate(err), 'another client waited for the connection the first one no longer needs').toBeUndefined();
    });
  }
  it('one taken before an error later in the same query string stays, and so does the pin', async () => {
    const sql = 'SELECT pg_advisory_lock(4722); SELECT 1/0';
    const d = await connect(directUrl());
    expect(sqlstate(await errorOf(d.query(sql)))).toBe('22012');
    expect((await d.query(STATE)).rows[0]).toEqual({ locks: 1, cursors: 0 });
    await d.query('SELECT pg_advisory_unlock_all()');

    const a = await connect(gw.url());
    expect(sqlstate(await errorOf(a.query(sql)))).toBe('22012');
    expect((await a.query(STATE)).rows[0]).toEqual({ locks: 1, cursors: 0 });
    const b = await connect(gw.url());
    expect(sqlstate(await errorOf(b.query('SELECT 1'))), 'the lock went to another client').toBe('57P05');
  });
});

describe('a session advisory lock wait stopped by a cancel request', () => {
  it('the lock was never taken: another client gets the (only) server connection', async () => {
    const holder = await connect(directUrl());
    await holder.query('SELECT pg_advisory_lock(4721)');
    const cancelled: (string | undefined)[] = [];
    for (const url of [directUrl(), gw.url()]) {
      const a = await connect(url);
      const waiting = errorOf(a.query('SELECT pg_advisory_lock(4721)'));
      // The cancel must find the call waiting for the lock.
      await waitFor('the lock call to wait', async () =>
        (await holder.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0]!.n > 0);
      const { processID, secretKey } = a as unknown as { processID: number; secretKey: number };
      const u = new URL(url);
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: u.hostname, port: Number(u.port) }, () => socket.end(cancelRequestPacket(processID, secretKey)));
        socket.on('error', reject);
        socket.on('close', () => resolve());
      });
      cancelled.push(sqlstate(await waiting));
      expect((await a.query(STATE)).rows[0]).toEqual({ locks: 0, cursors: 0 });
    }
    expect(cancelled).toEqual(['57014', '57014']);
    const b = await connect(gw.url());
    const err = await errorOf(b.query('SELECT 1'));
    expect(sqlstate(err), 'another client waited for the connection the first one no longer needs').toBeUndefined();
  });
});

describe('SET SESSION AUTHORIZATION that did not stay', () => {
  const superDirect = (): Promise<pg.Client> => {
    const info = lab();
    return connect({ ...info.primary, user: info.superuser, password: info.superuserPassword, database: 'app' });
  };
  const WHO = 'SELECT session_user::text AS s, current_user::text AS c';

  const cases2: [string, 'admin' | 'app', string[]][] = [
    ['rolled back with its transaction (superuser)', 'admin', ['BEGIN', 'SET SESSION AUTHORIZATION app', 'ROLLBACK']],
    ['followed by an error in the same query string (superuser)', 'admin', ['SET SESSION AUTHORIZATION app; SELECT 1/0']],
    ['refused with 42501 (not a superuser)', 'app', ['SET SESSION AUTHORIZATION md5user']],
  ];
  for (const [name, user, steps] of cases2) {
    it(`${name}: the session is back to the login user, and the client is not pinned`, async () => {
      const d = user === 'admin' ? await superDirect() : await connect(directUrl());
      for (const sql of steps) await d.query(sql).catch(() => undefined);
      const want = (await d.query(WHO)).rows[0];

      const a = await connect(gw.url(user));
      for (const sql of steps) await a.query(sql).catch(() => undefined);
      expect((await a.query(WHO)).rows[0]).toEqual(want);
      // Pools are per user: another client of the same user needs the one server connection.
      const b = await connect(gw.url(user));
      const err = await errorOf(b.query('SELECT 1'));
      expect(sqlstate(err), 'another client waited for the connection the first one no longer needs').toBeUndefined();
    });
  }
  it('one rolled back after another that committed: the session stays the committed one\'s, and the client pinned', async () => {
    const steps = ['SET SESSION AUTHORIZATION app', 'BEGIN', 'SET SESSION AUTHORIZATION md5user', 'ROLLBACK'];
    const d = await superDirect();
    for (const sql of steps) await d.query(sql);
    const want = (await d.query(WHO)).rows[0];
    expect(want).toEqual({ s: 'app', c: 'app' });

    const a = await connect(gw.url('admin'));
    for (const sql of steps) await a.query(sql);
    expect((await a.query(WHO)).rows[0]).toEqual(want);
    const b = await connect(gw.url('admin'));
    expect(sqlstate(await errorOf(b.query('SELECT 1'))), 'the session user went to another client').toBe('57P05');
  });
});
