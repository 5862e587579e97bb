import { beforeAll, describe, expect, it } from 'vitest';
import { classifySessionEffects, classifySessionEffectsIn, initSessionEffects, type PinReason, type SessionEffect } from './session-effects.js';
import { setConfigCallEffects } from './setting-effects.js';

beforeAll(async () => {
  await initSessionEffects();
});

const effects = (sql: string): readonly SessionEffect[] => classifySessionEffects(sql).effects;
const set = (name: string, value: string): SessionEffect => ({ kind: 'set', name, value });
const reset = (name: string): SessionEffect => ({ kind: 'reset', name });
const pin = (reason: PinReason, name?: string): SessionEffect => (name === undefined ? { kind: 'pin', reason } : { kind: 'pin', reason, name });
const unpin = (reason: PinReason): SessionEffect => ({ kind: 'unpin', reason });
const UNPARSEABLE = pin('unparseable-session-statement');

describe('SET and RESET', () => {
  it.each([
    ['SET statement_timeout = 1000', set('statement_timeout', '1000')],
    ['SET statement_timeout TO 0', set('statement_timeout', '0')],
    ["SET SESSION statement_timeout TO '5s'", set('statement_timeout', '5s')],
    ['SET DateStyle = ISO, DMY', set('datestyle', 'iso, dmy')],
    ["set datestyle to 'SQL', 'mdy'", set('datestyle', 'SQL, mdy')],
    ['SET search_path = a, "B c"', set('search_path', 'a, "B c"')],
    ['SET search_path = "My Schema", public', set('search_path', '"My Schema", public')],
    ["SET search_path TO 'My Schema', public", set('search_path', '"My Schema", public')],
    ['SET search_path = "select", "$user", x_1, "user", "between", "name"', set('search_path', '"select", "$user", x_1, "user", "between", name')],
    ['SET search_path = "a""b", "é"', set('search_path', '"a""b", "é"')],
    ["SET search_path = ''", set('search_path', '""')],
    ['SET "search_path" = "A"', set('search_path', '"A"')],
    ["SET SCHEMA 'My'", set('search_path', '"My"')],
    ["SET TIME ZONE 'UTC'", set('timezone', 'UTC')],
    ["SET TimeZone TO 'Europe/Berlin'", set('timezone', 'Europe/Berlin')],
    ['SET TIME ZONE -7', set('timezone', '-7')],
    ['SET TIME ZONE 5.5', set('timezone', '5.5')],
    ["SET TIME ZONE INTERVAL '+05:00'", set('timezone', "INTERVAL '+05:00'")],
    ['SET TIME ZONE LOCAL', reset('timezone')],
    ['SET TIME ZONE DEFAULT', reset('timezone')],
    ["SET \"MyApp.Tenant\" = 'acme'", set('myapp.tenant', 'acme')],
    ["SET \"Straße.X\" = 'y'", set('straße.x', 'y')],
    ['SET myapp.flag = on', set('myapp.flag', 'on')],
    ['SET myapp.flag = TRUE', set('myapp.flag', 'true')],
    ['SET myapp.n = 0x10', set('myapp.n', '16')],
    ['SET myapp.n = -1.5e3', set('myapp.n', '-1.5e3')],
    ['SET myapp.n = +2.50', set('myapp.n', '2.50')],
    ['SET myapp.n = 99999999999', set('myapp.n', '99999999999')],
    ["SET application_name = 'it''s'", set('application_name', "it's")],
    ["SET application_name = $$dollar 'quoted'$$", set('application_name', "dollar 'quoted'")],
    ["SET NAMES 'UTF8'", set('client_encoding', 'UTF8')],
    ['SET XML OPTION DOCUMENT', set('xmloption', 'DOCUMENT')],
    ['SET ROLE app', set('role', 'app')],
    ['SET ROLE "App"', set('role', 'App')],
    ['SET ROLE NONE', set('role', 'none')],
    ['RESET ROLE', reset('role')],
    ['SET statement_timeout TO DEFAULT', reset('statement_timeout')],
    ['RESET statement_timeout', reset('statement_timeout')],
    ['RESET DateStyle', reset('datestyle')],
    ['RESET ALL', { kind: 'reset-all' } as SessionEffect],
  ])('%s', (sql, effect) => {
    const c = classifySessionEffects(sql);
    expect(c).toMatchObject({ effects: [effect], local: false, statements: 1, parsed: true });
    expect(c.parseError).toBeUndefined();
  });

  it('SET SESSION CHARACTERISTICS sets the default_transaction_* settings', () => {
    expect(effects('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY, NOT DEFERRABLE')).toEqual([
      set('default_transaction_isolation', 'repeatable read'),
      set('default_transaction_read_only', '1'),
      set('default_transaction_deferrable', '0'),
    ]);
  });

  it.each([
    "SET TIME ZONE INTERVAL '+05:00' HOUR TO MINUTE",
    "SET TIME ZONE INTERVAL '5' HOUR",
    "SET TIME ZONE INTERVAL(2) '+05:00'",
    'SET search_path FROM CURRENT',
  ])('%s cannot be replayed faithfully: pin', (sql) => {
    expect(effects(sql)).toEqual([UNPARSEABLE]);
  });

  it.each([
    'SET LOCAL statement_timeout = 1',
    'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'",
  ])('%s is transaction-scoped: not tracked', (sql) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [], local: true, statements: 1 });
  });

  it.each([
    ['SET LOCAL search_path TO DEFAULT', 'search_path'],
    ['SET LOCAL TIME ZONE 5', 'timezone'],
    ['SET LOCAL ROLE app', 'role'],
    ['SET LOCAL SESSION AUTHORIZATION app', 'session_authorization'],
  ])('%s is transaction-scoped, and changes how statements read until the transaction ends', (sql, name) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [{ kind: 'set-local', name }], local: true, statements: 1 });
  });

  it.each([
    ['SET LOCAL ROLE app', 'app'],
    ["SELECT set_config('role', 'app', true)", 'app'],
    ['SET LOCAL ROLE NONE', 'none'],
  ])('%s names the role: a session SET made under it is laid on under it', (sql, value) => {
    expect(classifySessionEffects(sql).effects).toEqual([{ kind: 'set-local', name: 'role', value }]);
  });

  it.each([
    ["SET LOCAL application_name = 'x'", 'application_name'],
    ["SELECT set_config('default_transaction_read_only', 'on', true)", 'default_transaction_read_only'],
  ])('%s is followed: the server reports the local value at the end of its request', (sql, name) => {
    expect(classifySessionEffects(sql).effects).toEqual([{ kind: 'set-local', name }]);
  });

  it('classifies a COMMIT in a Parse, where it shares its request with what surrounds it, and not in a Query', () => {
    const text = Buffer.from('commit');
    expect(classifySessionEffectsIn(text, 0, text.length, true).effects).toEqual([{ kind: 'commit' }]);
    expect(classifySessionEffectsIn(Buffer.from('END'), 0, 3, true).effects).toEqual([{ kind: 'commit' }]);
    expect(classifySessionEffectsIn(text, 0, text.length).parsed).toBe(false);
  });

  it.each([
    'SET seed = 0.5',
    'RESET seed',
    "SELECT set_config('seed', '0.5', false)",
  ])('%s reseeds random() once, a setting not carried', (sql) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [], local: false });
  });

  it.each([
    "SET temp_buffers = '16MB'",
    "SELECT set_config('temp_buffers', '16MB', false)",
  ])('%s is not carried: it could not be laid on where temporary tables were used', (sql) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [], local: false });
  });

  it('keeps session sets next to local ones in a transaction', () => {
    const c = classifySessionEffects('BEGIN; SET LOCAL a.b = 1; SET a.c = 2; COMMIT');
    expect(c).toMatchObject({ effects: [set('a.c', '2'), { kind: 'commit' }], local: true, statements: 4 });
  });

  it('marks transaction control in order: ends, savepoints, RELEASE and ROLLBACK TO', () => {
    expect(effects("SET a.b = '1'; COMMIT; SELECT 1/0")).toEqual([set('a.b', '1'), { kind: 'commit' }]);
    expect(effects("BEGIN; SET a.b = '1'; ROLLBACK; SET a.c = '2'; END")).toEqual(
      [set('a.b', '1'), { kind: 'rollback' }, set('a.c', '2'), { kind: 'commit' }]);
    expect(effects('SAVEPOINT s; SET a.b = 1; ROLLBACK TO SAVEPOINT s; RELEASE SAVEPOINT "S"')).toEqual([
      { kind: 'savepoint', name: 's' }, set('a.b', '1'), { kind: 'rollback-to', name: 's' }, { kind: 'release', name: 'S' }]);
    expect(effects('ROLLBACK TO s')).toEqual([{ kind: 'rollback-to', name: 's' }]);
    expect(effects('SET a.b = 1; ABORT')).toEqual([set('a.b', '1'), { kind: 'rollback' }]);
  });

  it('takes the value of set_config(name, $n, false) from the Bind: a parameter, bare or cast to text', () => {
    expect(effects("SELECT set_config('app.tenant', $2, false)")).toEqual([{ kind: 'set-param', name: 'app.tenant', param: 2 }]);
    expect(effects("SELECT set_config('App.Tenant', $1::text, false)")).toEqual([{ kind: 'set-param', name: 'app.tenant', param: 1 }]);
    expect(effects("SELECT set_config('app.tenant', $1, $2)")).toEqual([pin('unparseable-session-statement')]);
    expect(effects("SELECT set_config($1, 'x', false)")).toEqual([pin('unparseable-session-statement')]);
    expect(effects("SELECT set_config('app.tenant', $1::int::text, false)")).toEqual([pin('unparseable-session-statement')]);
  });

  it('leaves a COMMIT or END alone to the precheck: the server reports whether it committed', () => {
    expect(classifySessionEffects('COMMIT')).toMatchObject({ effects: [], parsed: false });
    expect(classifySessionEffects('BEGIN; SELECT 1; END')).toMatchObject({ effects: [], parsed: false });
  });

  it.each([
    "SET transaction_isolation = 'repeatable read'",
    'SET transaction_read_only = on',
    'SET SESSION transaction_deferrable TO true',
    'RESET transaction_isolation',
    "SELECT set_config('transaction_isolation', 'serializable', false)",
  ])('%s changes the current transaction only', (sql) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [], local: true });
  });
});

describe('text pgway cannot read as the server does', () => {
  it.each([
    "SET LOCAL client_encoding = 'SJIS'",
    "SET LOCAL client_encoding TO 'Shift_JIS_2004'",
    "SELECT set_config('client_encoding', 'big5', true)",
    "SET LOCAL standard_conforming_strings = off",
  ])('%s pins, though local: what follows in its transaction may read otherwise', (sql) => {
    expect(classifySessionEffects(sql).effects).toContainEqual(UNPARSEABLE);
  });

  it.each(["SET LOCAL client_encoding = 'LATIN1'", "SET LOCAL client_encoding = 'UTF8'"])('%s does not pin', (sql) => {
    expect(classifySessionEffects(sql).effects).not.toContainEqual(UNPARSEABLE);
  });
});

describe('set_config()', () => {
  it('by FunctionCall has the effects of the same call in SQL', () => {
    expect(setConfigCallEffects('Work_Mem', '77MB', false)).toEqual([set('work_mem', '77MB')]);
    expect(setConfigCallEffects('x.y', null, false)).toEqual([reset('x.y')]);
    expect(setConfigCallEffects('x.y', 'z', true)).toEqual([]);
    expect(setConfigCallEffects('search_path', 'pg_temp', true)).toEqual([{ kind: 'set-local', name: 'search_path' }, pin('temp-table')]);
    expect(setConfigCallEffects('session_authorization', 'app', false)).toEqual([pin('session-authorization'), { kind: 'recheck', reason: 'session-authorization' }, reset('role')]);
    expect(setConfigCallEffects('seed', '0.5', false)).toEqual([]);
    expect(setConfigCallEffects(null, 'z', false)).toEqual([]);
    expect(setConfigCallEffects('x.y', undefined, false)).toEqual([UNPARSEABLE]);
    expect(setConfigCallEffects('x.y', 'z', undefined)).toEqual([UNPARSEABLE]);
  });

  it.each([
    ["SELECT set_config('search_path', 'a, \"B c\"', false)", [set('search_path', 'a, "B c"')]],
    ["select SET_CONFIG('DateStyle', 'ISO', 'off')", [set('datestyle', 'ISO')]],
    ["SELECT pg_catalog.set_config('x.y', 'z', 'f')", [set('x.y', 'z')]],
    ["SELECT set_config('x.y', 'z', NULL)", [set('x.y', 'z')]],
    ["SELECT set_config('x.y', 'z', false::boolean)", [set('x.y', 'z')]],
    ["SELECT set_config('x.y'::text, 'z'::text, 0::bool)", [set('x.y', 'z')]],
    ["SELECT set_config('x.y', NULL, false)", [reset('x.y')]],
    ["SELECT set_config(setting_name => 'x.y', new_value => 'z', is_local => false)", [set('x.y', 'z')]],
    ["SELECT set_config('x.y', new_value => 'z', is_local => 'no')", [set('x.y', 'z')]],
    ["SELECT set_config('role', 'app', false)", [set('role', 'app')]],
    ["SELECT set_config('a.a', '1', false), set_config('a.b', '2', false) AS b", [set('a.a', '1'), set('a.b', '2')]],
    ["WITH x AS (SELECT 1) SELECT set_config('a.a', '1', false)", [set('a.a', '1')]],
    ["SELECT set_config('x.y', $1, false)", [{ kind: 'set-param', name: 'x.y', param: 1 }]],
    ["SELECT set_config($1, 'z', false)", [UNPARSEABLE]],
    ["SELECT set_config('x.y', 'z', $1)", [UNPARSEABLE]],
    ["SELECT set_config('search_path', current_setting('search_path') || ', x', false)", [UNPARSEABLE]],
    ["SELECT set_config('x.y', 'z', false) FROM generate_series(1, 3)", [UNPARSEABLE]],
    // Another call among the targets may return a set: the targets then run once per row it yields.
    ["SELECT set_config('x.y', 'z', false), generate_series(1, 3)", [UNPARSEABLE]],
    ["SELECT set_config('x.y', 'z', false), 1 + unnest(ARRAY[1, 2])", [UNPARSEABLE]],
    ["SELECT set_config('x.y', 'z', false), current_setting('x.y')", [set('x.y', 'z')]],
    ["SELECT 1 WHERE set_config('x.y', 'z', false) IS NOT NULL", [UNPARSEABLE]],
    ["SELECT set_config('x.y', 'z', false) LIMIT 0", [UNPARSEABLE]],
    ["SELECT coalesce(set_config('x.y', 'z', false), '')", [UNPARSEABLE]],
    ["SELECT (SELECT set_config('x.y', 'z', false))", [UNPARSEABLE]],
    ["UPDATE t SET a = set_config('x.y', 'z', false)", [UNPARSEABLE]],
    ["SELECT myschema.set_config('x.y', 'z', false)", []],
    ["SELECT \"SET_CONFIG\"('x.y', 'z', false)", []],
    ["SELECT set_config(NULL, 'z', false)", []],
  ])('%s', (sql, expected) => {
    expect(effects(sql)).toEqual(expected);
  });

  it.each([
    "SELECT set_config('x.y', 'z', true)",
    "SELECT set_config('x.y', 'z', 'on')",
    "SELECT set_config('x.y', 'z', 't'), 1",
    "SELECT * FROM t WHERE set_config('x.y', $1, true) IS NOT NULL",
  ])('%s is transaction-scoped: not tracked', (sql) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [], local: true });
  });
});

describe('advisory locks', () => {
  it.each([
    'SELECT pg_advisory_lock(1)',
    'SELECT pg_advisory_lock(1, 2)',
    'SELECT pg_advisory_lock_shared(1)',
    'SELECT pg_catalog.pg_advisory_lock(1)',
    'SELECT PG_ADVISORY_LOCK(42)',
    'SELECT U&"pg_\\0061dvisory_lock"(1)',
  ])('%s pins', (sql) => {
    expect(effects(sql)).toEqual([pin('advisory-lock')]);
  });

  it.each([
    'SELECT pg_advisory_lock(id) FROM jobs WHERE id = 7',
    'WITH l AS (SELECT pg_advisory_lock(1)) SELECT * FROM l',
    'SELECT CASE WHEN $1 THEN pg_advisory_lock(1) END',
    'INSERT INTO t SELECT pg_advisory_lock(1)',
    'EXPLAIN ANALYZE SELECT pg_advisory_lock(1)',
    'EXPLAIN (ANALYZE, BUFFERS) SELECT pg_advisory_lock(1)',
    'DECLARE c CURSOR FOR SELECT pg_advisory_lock(1)',
  ])('%s pins, and the server is asked whether it took a lock (it may not have run)', (sql) => {
    expect(effects(sql)).toEqual([pin('advisory-lock'), { kind: 'recheck', reason: 'advisory-lock' }]);
  });

  it.each([
    'SELECT pg_advisory_xact_lock(1)',
    'SELECT pg_advisory_xact_lock_shared(1)',
    'SELECT pg_try_advisory_xact_lock(1)',
    'SELECT pg_try_advisory_xact_lock_shared(1)',
    'SELECT other.pg_advisory_lock(1)',
    'EXPLAIN SELECT pg_advisory_lock(1)',
    'EXPLAIN (ANALYZE false) SELECT pg_advisory_lock(1)',
    'CREATE VIEW v AS SELECT pg_advisory_lock(1)',
    'CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC SELECT pg_advisory_lock(1); END',
    'CREATE TABLE t (a bigint DEFAULT pg_advisory_lock(1))',
    "SELECT 'pg_advisory_lock(1)'",
  ])('%s does not change the pin', (sql) => {
    expect(effects(sql)).toEqual([]);
  });

  it.each([
    'SELECT pg_try_advisory_lock(1)',
    'SELECT pg_try_advisory_lock_shared(1)',
    'SELECT * FROM jobs WHERE pg_try_advisory_lock(id) LIMIT 1',
    'UPDATE jobs SET taken = pg_try_advisory_lock(id)',
  ])('%s pins, and asks the server afterwards whether a lock was taken', (sql) => {
    expect(effects(sql)).toEqual([pin('advisory-lock'), { kind: 'recheck', reason: 'advisory-lock' }]);
  });

  it.each([
    'SELECT pg_advisory_unlock(1)',
    'SELECT pg_advisory_unlock_shared(1)',
    'SELECT pg_advisory_unlock(id) FROM jobs',
    // An unlock of all that may not run, or may run more than once: the server knows.
    'SELECT pg_advisory_unlock_all() FROM t',
    'SELECT 1 WHERE pg_advisory_unlock_all() IS NULL',
    'SELECT * FROM pg_advisory_unlock_all()',
  ])('%s asks the server afterwards whether a lock is left', (sql) => {
    expect(effects(sql)).toEqual([{ kind: 'recheck', reason: 'advisory-lock' }]);
  });

  it('pg_catalog.pg_advisory_unlock_all() unpins', () => {
    expect(effects('SELECT pg_catalog.pg_advisory_unlock_all()')).toEqual([unpin('advisory-lock')]);
  });

  it('pg_advisory_unlock_all() by its bare name (a function of the search_path may shadow it) is checked with the server', () => {
    expect(effects('SELECT pg_advisory_unlock_all()')).toEqual([{ kind: 'recheck', reason: 'advisory-lock' }]);
  });

  it('stays pinned when a statement both locks and unlocks all', () => {
    expect(effects('SELECT pg_advisory_lock(2), pg_catalog.pg_advisory_unlock_all()')).toEqual([unpin('advisory-lock'), pin('advisory-lock')]);
  });
});

describe('LISTEN, temp objects, cursors, session authorization', () => {
  it.each([
    ['LISTEN jobs', [pin('listen')]],
    ['LISTEN "Jobs"', [pin('listen')]],
    ['UNLISTEN jobs', [{ kind: 'recheck', reason: 'listen' }]],
    ['UNLISTEN *', [unpin('listen')]],
    ['NOTIFY jobs', []],
    ['CREATE TEMP TABLE t (a int)', [pin('temp-table', 't')]],
    ['CREATE TEMPORARY TABLE IF NOT EXISTS t (a int)', [pin('temp-table', 't')]],
    ['CREATE LOCAL TEMP TABLE t (a int)', [pin('temp-table', 't')]],
    ['CREATE GLOBAL TEMPORARY TABLE t (a int)', [pin('temp-table', 't')]],
    ['CREATE TABLE pg_temp.t (a int)', [pin('temp-table', 't')]],
    ['CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS', [pin('temp-table', 't')]],
    ['CREATE TEMP SEQUENCE s', [pin('temp-table', 's')]],
    ['CREATE SEQUENCE IF NOT EXISTS pg_temp.s', [pin('temp-table', 's')]],
    ['CREATE TEMP VIEW v AS SELECT 1', [pin('temp-table', 'v')]],
    ['CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1', [pin('temp-table', 'v')]],
    ['CREATE VIEW pg_temp.v AS SELECT 1', [pin('temp-table', 'v')]],
    ['CREATE VIEW v AS SELECT 1', []],
    ['CREATE SEQUENCE s', []],
    ['CREATE TEMPORARY TABLE t AS SELECT 1', [pin('temp-table', 't')]],
    ['SELECT 1 AS a INTO TEMP t', [pin('temp-table', 't')]],
    ["CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'select 1'", [pin('temp-table')]],
    ['CREATE TYPE pg_temp.pair AS (a int, b int)', [pin('temp-table')]],
    ['CREATE TEMP TABLE t (a int) ON COMMIT DROP', [{ kind: 'recheck', reason: 'temp-table' }]],
    ['CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1', [{ kind: 'recheck', reason: 'temp-table' }]],
    ['CREATE TABLE t (a int)', []],
    ['CREATE UNLOGGED TABLE t (a int)', []],
    ['CREATE TABLE "pg_temp"."t" (a int)', [pin('temp-table', 't')]],
    ['CREATE TABLE "PG_TEMP".t (a int)', []],
    ['DISCARD TEMP', [unpin('temp-table')]],
    ['DISCARD TEMPORARY', [unpin('temp-table')]],
    ['DISCARD PLANS', []],
    ['DISCARD SEQUENCES', []],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', [pin('hold-cursor', 'c')]],
    ['DECLARE c BINARY SCROLL CURSOR WITH HOLD FOR SELECT * FROM t', [pin('hold-cursor', 'c')]],
    ['DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1', []],
    ['DECLARE c CURSOR FOR SELECT 1', []],
    ['CLOSE c', [{ kind: 'drop', reason: 'hold-cursor', name: 'c' }]],
    ['CLOSE "C"', [{ kind: 'drop', reason: 'hold-cursor', name: 'C' }]],
    ['DROP TABLE t', [{ kind: 'drop', reason: 'temp-table', name: 't' }]],
    ['DROP TABLE IF EXISTS "T", pg_temp.u, public.v, w', [
      { kind: 'drop', reason: 'temp-table', name: 'T' }, { kind: 'drop', reason: 'temp-table', name: 'u' },
      { kind: 'drop', reason: 'temp-table', name: 'w' }]],
    ['DROP TABLE t, public.v CASCADE', [{ kind: 'drop', reason: 'temp-table', name: 't', cascade: true }]],
    ['DROP TABLE public.v CASCADE', [{ kind: 'drop', reason: 'temp-table', name: '', cascade: true }]],
    ['DROP SCHEMA s CASCADE', [{ kind: 'drop', reason: 'temp-table', name: '', cascade: true }]],
    ['DROP FUNCTION f(int) CASCADE', [{ kind: 'drop', reason: 'temp-table', name: '', cascade: true }]],
    ['DROP SCHEMA s RESTRICT', []],
    ['ALTER TABLE t DROP COLUMN y CASCADE', [{ kind: 'drop', reason: 'temp-table', name: '', cascade: true }]],
    ['ALTER TYPE ty DROP ATTRIBUTE a CASCADE', [{ kind: 'drop', reason: 'temp-table', name: '', cascade: true }]],
    ['ALTER TABLE t DROP COLUMN y', []],
    ['DROP OWNED BY CURRENT_USER', [{ kind: 'drop', reason: 'temp-table', name: '', cascade: true }]],
    ['EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1', [pin('temp-table', 't')]],
    ['EXPLAIN (ANALYZE on, VERBOSE) CREATE TEMP TABLE t AS SELECT 1', [pin('temp-table', 't')]],
    ['EXPLAIN (ANALYZE false) CREATE TEMP TABLE t AS SELECT 1', []],
    ['EXPLAIN CREATE TEMP TABLE t AS SELECT 1', []],
    ['CREATE TYPE pg_temp.r AS RANGE (subtype = int4)', [pin('temp-table')]],
    ['CREATE AGGREGATE pg_temp.a(int) (sfunc = int4pl, stype = int)', [pin('temp-table')]],
    ['CREATE AGGREGATE a(int) (sfunc = int4pl, stype = int)', []],
    ['ABORT', [{ kind: 'rollback' }]],
    ['SET LOCAL search_path = pg_temp, public', [{ kind: 'set-local', name: 'search_path' }, pin('temp-table')]],
    ['SET LOCAL search_path = public, pg_temp', [{ kind: 'set-local', name: 'search_path' }]],
    ["SELECT set_config('search_path', '\"$user\", pg_temp', true)", [{ kind: 'set-local', name: 'search_path' }, pin('temp-table')]],
    ['DROP VIEW v', [{ kind: 'drop', reason: 'temp-table', name: 'v' }]],
    ['DROP SEQUENCE IF EXISTS pg_temp.s, public.s', [{ kind: 'drop', reason: 'temp-table', name: 's' }]],
    ['DROP MATERIALIZED VIEW m', []],
    ['DROP INDEX i', []],
    ['ALTER VIEW v RENAME TO w', [{ kind: 'rename', reason: 'temp-table', from: 'v', to: 'w' }]],
    ['ALTER SEQUENCE pg_temp.s RENAME TO t', [{ kind: 'rename', reason: 'temp-table', from: 's', to: 't' }]],
    ['ALTER VIEW public.v RENAME TO w', []],
    ['ALTER TABLE t RENAME TO u', [{ kind: 'rename', reason: 'temp-table', from: 't', to: 'u' }]],
    ['ALTER TABLE public.t RENAME TO u', []],
    ['ALTER TABLE t RENAME COLUMN a TO b', []],
    ['CREATE TEMP TABLE t (a int); DROP TABLE t', [pin('temp-table', 't'), { kind: 'drop', reason: 'temp-table', name: 't' }]],
    ['CLOSE ALL', [unpin('hold-cursor')]],
    ['SET SESSION AUTHORIZATION app', [pin('session-authorization'), { kind: 'recheck', reason: 'session-authorization' }, reset('role')]],
    ["SET SESSION AUTHORIZATION 'app'", [pin('session-authorization'), { kind: 'recheck', reason: 'session-authorization' }, reset('role')]],
    ['SET SESSION AUTHORIZATION DEFAULT', [unpin('session-authorization'), reset('role')]],
    ['RESET SESSION AUTHORIZATION', [unpin('session-authorization'), reset('role')]],
    ["SELECT set_config('session_authorization', 'app', false)", [pin('session-authorization'), { kind: 'recheck', reason: 'session-authorization' }, reset('role')]],
  ])('%s', (sql, expected) => {
    expect(effects(sql)).toEqual(expected);
  });

  it('DISCARD ALL resets everything, unpins everything and commits', () => {
    expect(effects('DISCARD ALL')).toEqual([
      { kind: 'reset-all' }, reset('role'), { kind: 'deallocate-all' },
      unpin('listen'), unpin('advisory-lock'), unpin('temp-table'), unpin('hold-cursor'),
      unpin('session-authorization'), unpin('unparseable-session-statement'), { kind: 'commit', own: true },
    ]);
  });

  it('DISCARD ALL in a query string of several statements fails there: it and what follows do nothing', () => {
    expect(effects('DISCARD ALL; LISTEN c')).toEqual([]);
    expect(effects("SET a.b = '1'; DISCARD ALL; SET a.c = '2'")).toEqual([set('a.b', '1')]);
  });
});

describe('PREPARE, EXECUTE, DEALLOCATE', () => {
  const prepare = (name: string, sql: string, paramTypes: string[] = []): SessionEffect => ({ kind: 'prepare', name, sql, paramTypes });

  it.each([
    ['PREPARE p AS SELECT 1', prepare('p', 'SELECT 1')],
    ['PREPARE MyStmt AS SELECT 1;', prepare('mystmt', 'SELECT 1')],
    ['PREPARE "MyStmt" AS SELECT 1', prepare('MyStmt', 'SELECT 1')],
    ['PREPARE p (int, text) AS SELECT $1, $2', prepare('p', 'SELECT $1, $2', ['int', 'text'])],
    ['PREPARE p(int4,character varying(10), numeric(10, 2)[], pg_catalog.int8, "MyType") AS SELECT 1',
      prepare('p', 'SELECT 1', ['int4', 'character varying(10)', 'numeric(10, 2)[]', 'pg_catalog.int8', '"MyType"'])],
    ['PREPARE p (timestamp with time zone, int ARRAY) AS SELECT 1', prepare('p', 'SELECT 1', ['timestamp with time zone', 'int ARRAY'])],
    ['/* lead */ PREPARE p AS /*+ SeqScan(t) */ SELECT * FROM t -- trail', prepare('p', '/*+ SeqScan(t) */ SELECT * FROM t')],
    ['PREPARE p AS\n  INSERT INTO t VALUES ($1)\n  RETURNING id ;  ', prepare('p', 'INSERT INTO t VALUES ($1)\n  RETURNING id')],
    ["PREPARE \"as\" AS SELECT 'AS' AS \"as\"", prepare('as', "SELECT 'AS' AS \"as\"")],
    ["PREPARE p AS SELECT 'é', $$ ; SET x = 1 $$", prepare('p', "SELECT 'é', $$ ; SET x = 1 $$")],
    ['PREPARE p AS UPDATE t SET a = $1 WHERE id = $2', prepare('p', 'UPDATE t SET a = $1 WHERE id = $2')],
    ['PREPARE p AS SELECT pg_advisory_lock(1)', prepare('p', 'SELECT pg_advisory_lock(1)')], // runs at EXECUTE
    ['PREPARE p AS WITH x AS (SELECT 1) SELECT * FROM x', prepare('p', 'WITH x AS (SELECT 1) SELECT * FROM x')],
    ['PREPARE p AS TABLE t', prepare('p', 'TABLE t')],
    ['PREPARE p AS VALUES (1), (2)', prepare('p', 'VALUES (1), (2)')],
    ['PREPARE p AS (SELECT 1)', prepare('p', '(SELECT 1)')],
    ['PREPARE p AS INSERT INTO t DEFAULT VALUES', prepare('p', 'INSERT INTO t DEFAULT VALUES')],
    ['PREPARE p AS SELECT 1 /* a */ + /* b */ 2 /* z */', prepare('p', 'SELECT 1 /* a */ + /* b */ 2')],
    ["PREPARE p AS SELECT 'x' -- c\n ; SELECT 2", prepare('p', "SELECT 'x'")],
    ["PREPARE p AS SELECT $$ a; 'b' $$ ::text", prepare('p', "SELECT $$ a; 'b' $$ ::text")],
    ['EXECUTE p', { kind: 'execute', name: 'p', runs: true }],
    ["EXECUTE P(1, 'a')", { kind: 'execute', name: 'p', runs: true }],
    ['EXECUTE "P"', { kind: 'execute', name: 'P', runs: true }],
    ['EXPLAIN EXECUTE p(1)', { kind: 'execute', name: 'p', runs: false }],
    ['EXPLAIN ANALYZE EXECUTE p(1)', { kind: 'execute', name: 'p', runs: true }],
    ['CREATE TABLE t AS EXECUTE p', { kind: 'execute', name: 'p', runs: true }],
    ['DEALLOCATE p', { kind: 'deallocate', name: 'p' }],
    ['DEALLOCATE PREPARE p', { kind: 'deallocate', name: 'p' }],
    ['DEALLOCATE "P"', { kind: 'deallocate', name: 'P' }],
    ['DEALLOCATE ALL', { kind: 'deallocate-all' }],
    ['DEALLOCATE PREPARE ALL', { kind: 'deallocate-all' }],
  ] as [string, SessionEffect][])('%s', (sql, effect) => {
    expect(effects(sql)).toEqual([effect]);
  });

  it('cuts each PREPARE out of a multi-statement string with non-ASCII text before it', () => {
    expect(effects("SELECT 'ünïcödé'; PREPARE a (text) AS SELECT 'é', $1; EXECUTE a('x'); PREPARE b AS SELECT 2")).toEqual([
      prepare('a', "SELECT 'é', $1", ['text']), { kind: 'execute', name: 'a', runs: true }, prepare('b', 'SELECT 2'),
    ]);
  });

  it('sees advisory locks in EXECUTE parameters', () => {
    expect(effects('EXECUTE p(pg_advisory_lock(1))')).toEqual([{ kind: 'execute', name: 'p', runs: true }, pin('advisory-lock'), { kind: 'recheck', reason: 'advisory-lock' }]);
    // EXPLAIN plans the statement but evaluates its parameters; a plain EXPLAIN of the call runs nothing.
    expect(effects('EXPLAIN EXECUTE p(pg_advisory_lock(1))')).toEqual([{ kind: 'execute', name: 'p', runs: false }, pin('advisory-lock'), { kind: 'recheck', reason: 'advisory-lock' }]);
    expect(effects('EXPLAIN SELECT pg_advisory_lock(1)')).toEqual([]);
  });
});

describe('multi-statement strings, comments, quoting', () => {
  it('returns effects in statement order', () => {
    const c = classifySessionEffects('SET a.a=1; SELECT 2; SET b.b=3; LISTEN x; RESET a.a');
    expect(c).toMatchObject({ statements: 5, local: false, parsed: true });
    expect(c.effects).toEqual([set('a.a', '1'), set('b.b', '3'), pin('listen'), reset('a.a')]);
  });

  it.each([
    '/* SET search_path = x */ SELECT 1',
    '-- LISTEN x\nSELECT 1',
    'SELECT 1 -- DISCARD ALL',
    "SELECT 'SET search_path = evil; LISTEN x'",
    "SELECT E'it\\'s SET x = 1; LISTEN y'",
    'SELECT $$SET search_path = evil; LISTEN x; SELECT pg_advisory_lock(1)$$',
    "SELECT $body$ RESET ALL; DISCARD ALL; CREATE TEMP TABLE t () $body$, 'PREPARE p AS SELECT 1'",
    "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SET search_path = x; SELECT pg_advisory_lock(1) $$",
    "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $fn$ BEGIN EXECUTE 'LISTEN x'; END $fn$",
    'SELECT "SET", "listen", "temp" FROM "DISCARD"',
    'UPDATE t SET a = 1',
    'INSERT INTO settings (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = excluded.name',
    'SELECT * FROM t OFFSET 10',
    'NOTIFY jobs, $$SET x = 1$$',
  ])('%s has no effects', (sql) => {
    expect(classifySessionEffects(sql)).toMatchObject({ effects: [], local: false });
  });

  it('reads SET through comments and odd spacing', () => {
    expect(effects('SET /* c */ search_path /* d */ =\n\t"My Schema" -- e\n,public')).toEqual([set('search_path', '"My Schema", public')]);
  });

  it('walks expressions nested thousands deep without overflowing the stack', () => {
    const chain = Array.from({ length: 5000 }, (_, i) => `coalesce(x${i}, '')`).join(' || ');
    expect(effects(`SELECT ${chain} || pg_advisory_lock(1)::text`)).toEqual([pin('advisory-lock'), { kind: 'recheck', reason: 'advisory-lock' }]);
  });

  it('reads a SET hidden after a string that looks like a statement end', () => {
    expect(effects("SELECT ';'; SET a.b = ';'")).toEqual([set('a.b', ';')]);
  });
});

describe('unparseable SQL and the precheck', () => {
  it.each([
    'SELEC 1; SET a.b = 1',
    'SET search_path = ',
    'SET a.b = 1; SET',
    "SET CATALOG 'x'",
  ])('%s: no effects, parseError set', (sql) => {
    const c = classifySessionEffects(sql);
    expect(c.effects).toEqual([]);
    expect(c.parseError).toEqual(expect.any(String));
    expect(c.statements).toBe(0);
  });

  it.each([
    'SELECT 1', 'select * from users where id = $1', 'INSERT INTO t VALUES (1)', 'BEGIN', 'COMMIT', '', 'SELEC 1',
    // The precheck tokenizes: SET inside UPDATE, comments, strings and dollar quotes starts no statement.
    'UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 12345',
    '/* SET search_path = x */ SELECT 1', "SELECT 'x; SET a = 1'", 'SELECT $q$ ; LISTEN x $q$', 'SELECT * FROM t OFFSET 10',
    "SELECT 'unterminated; SET a.b = 1", // PostgreSQL reports the syntax error itself
  ])(
    '%s skips the parser', (sql) => {
      expect(classifySessionEffects(sql)).toEqual({ effects: [], local: false, statements: 0, parsed: false });
    });

  it('parses texts with a telling token even when nothing comes of it', () => {
    expect(classifySessionEffects('SELECT temp FROM t')).toEqual({ effects: [], local: false, statements: 1, parsed: true });
    expect(classifySessionEffects('SELECT 1; SET a.b = 2').parsed).toBe(true);
    expect(classifySessionEffects('SELECT "set_config"(\'a.b\', \'1\', false)').parsed).toBe(true);
  });

  it('ends a -- comment where PostgreSQL does: at a carriage return too', () => {
    expect(classifySessionEffects('-- note\rSET a.b = 1').effects).toEqual([set('a.b', '1')]);
    expect(classifySessionEffects('SELECT 1 -- note\r; LISTEN x').effects).toEqual([pin('listen')]);
  });

  it('takes a temp schema named by number (pg_temp_3) for what it is', () => {
    expect(classifySessionEffects('CREATE TABLE pg_temp_3.t (x int)').effects).toEqual([pin('temp-table', 't')]);
    expect(classifySessionEffects('DROP TABLE pg_temp_3.t').effects).toEqual([{ kind: 'drop', reason: 'temp-table', name: 't' }]);
  });

  it('reads a message text in place: only its own bytes, multibyte names whole', () => {
    const chunk = Buffer.from('\0SELECT $q$ 1\0SET a.b = 1 -- $q$\0SELECT ñtemp, "holdé" FROM t\0select TEMP');
    const texts = chunk.toString('latin1').split('\0').slice(1);
    let at = 1;
    const [unterminated, setting, multibyte, upper] = texts.map((t) => {
      const start = at;
      at += Buffer.byteLength(t, 'latin1') + 1;
      return classifySessionEffectsIn(chunk, start, at - 1);
    });
    // A dollar quote left open runs to the end of its own text, not into the next one.
    expect(unterminated).toEqual({ effects: [], local: false, statements: 0, parsed: false });
    expect(setting!.effects).toEqual([set('a.b', '1')]);
    expect(multibyte!.parsed).toBe(false);
    expect(upper!.parsed).toBe(true);
  });

  it('caches by text and hands out frozen results', () => {
    const sql = 'SET a.cached = 1';
    const first = classifySessionEffects(sql);
    expect(classifySessionEffects(sql)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.effects)).toBe(true);
    expect(Object.isFrozen(first.effects[0])).toBe(true);
  });
});
