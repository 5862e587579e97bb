import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfig } from './check.js';
import { ConfigError, defaultConfig, loadConfig, parseConfig, type ConfigIssue } from './load.js';
import { DEFAULT_POOL } from './schema.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The issues parseConfig reports for `text` (fails the test when it loads). */
function issuesOf(text: string, env: Record<string, string> = {}): ConfigIssue[] {
  try {
    parseConfig(text, 'my.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('defaults', () => {
  it('an empty file is a valid config with every default and no databases', () => {
    for (const text of ['', '# only a comment\n', 'pool:\nlisten:\n']) {
      const config = parseConfig(text, '<test>', {});
      expect(config).toEqual({ ...defaultConfig(), source: '<test>' });
    }
    const d = defaultConfig();
    expect(d.source).toBe('<defaults>');
    expect(d.listen).toEqual({ host: '127.0.0.1', port: 6432 });
    expect(d.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9432 });
    expect(d.auth).toEqual({ method: 'scram-sha-256', users: [] });
    expect(d.pool).toEqual(DEFAULT_POOL);
    expect(d.limits).toEqual({ maxClientConn: 1000, maxMessageBytes: 64 * 1024 * 1024, startupTimeoutMs: 15000 });
    expect(d.databases).toEqual([]);
    expect(d.cache).toEqual({ enabled: false, maxEntries: 10000, ttlMs: 60000 });
    expect(d.sandbox).toEqual({ dataDir: '.pgway', port: 0 });
    expect(d.gc).toEqual({ parallelScavenge: true });
  });

  it('returns a deeply frozen object', () => {
    const config = parseConfig('databases:\n  app:\n    replicas: [{ port: 5433 }]\n', '<test>', {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.pool)).toBe(true);
    expect(Object.isFrozen(config.databases)).toBe(true);
    expect(Object.isFrozen(config.databases[0]?.replicas[0])).toBe(true);
    expect(() => {
      (config.pool as { size: number }).size = 1;
    }).toThrow(TypeError);
  });
});

describe('${VAR} interpolation', () => {
  const text = 'auth:\n  users:\n    - name: app\n      password: "${APP_PASSWORD:-fallback}"\n';
  const password = (env: Record<string, string>) => parseConfig(text, 'my.yaml', env).auth.users[0]?.password;

  it('uses the variable when set, the default when unset or empty', () => {
    expect(password({ APP_PASSWORD: 's3cret' })).toBe('s3cret');
    expect(password({})).toBe('fallback');
    expect(password({ APP_PASSWORD: '' })).toBe('fallback');
  });

  it('substitutes inside longer strings, keeps $${ literal and leaves keys alone', () => {
    const config = parseConfig(
      'cache: { redis: "redis://${REDIS_HOST}:${REDIS_PORT:-6379}/0" }\nauth:\n  users: [{ name: "u", password: "a$${b}" }]\n',
      'my.yaml', { REDIS_HOST: 'cache.internal' });
    expect(config.cache.redis).toBe('redis://cache.internal:6379/0');
    expect(config.auth.users[0]?.password).toBe('a${b}');
  });

  it('lets numbers and booleans come from the environment', () => {
    const config = parseConfig('listen:\n  port: ${PGWAY_PORT:-7000}\nhttp:\n  enabled: ${HTTP_ON}\n', 'my.yaml', { HTTP_ON: 'false' });
    expect(config.listen.port).toBe(7000);
    expect(config.http.enabled).toBe(false);
  });

  it('an unset variable without a default names the variable, file, line and field', () => {
    const issues = issuesOf('auth:\n  users:\n    - name: app\n      password: "${APP_PASSWORD}"\n');
    expect(issues).toEqual([expect.objectContaining({ file: 'my.yaml', line: 4, field: 'auth.users[0].password' })]);
    expect(issues[0]?.message).toContain('APP_PASSWORD is not set');
  });

  it('rejects a malformed placeholder', () => {
    const issues = issuesOf('listen:\n  host: "${not a name}"\n');
    expect(issues[0]).toMatchObject({ line: 2, field: 'listen.host' });
    expect(issues[0]?.message).toContain('malformed placeholder');
  });
});

describe('gc', () => {
  it('turns parallel scavenge off, and refuses a value that is not a boolean', () => {
    expect(parseConfig('gc:\n  parallel_scavenge: false\n', '<test>', {}).gc).toEqual({ parallelScavenge: false });
    expect(issuesOf('gc:\n  parallel_scavenge: sometimes\n')).toEqual([expect.objectContaining({ line: 2, field: 'gc.parallel_scavenge' })]);
  });
});

describe('errors name the file, line and field', () => {
  it('reports a bad value at its line with the dotted field', () => {
    const text = [
      'databases:',           // 1
      '  app:',               // 2
      '    primary:',         // 3
      '      host: db1',      // 4
      '    pool:',            // 5
      '      size: x',        // 6
    ].join('\n');
    const issues = issuesOf(text);
    expect(issues).toEqual([{ file: 'my.yaml', line: 6, column: 13, field: 'databases.app.pool.size', message: 'expected an integer >= 1, got "x"' }]);
    expect(new ConfigError(issues).format()).toBe('my.yaml:6:13 databases.app.pool.size: expected an integer >= 1, got "x"');
  });

  it('reports every problem at once, in file order', () => {
    const issues = issuesOf('listen:\n  port: 70000\nlog:\n  level: loud\nlimits:\n  max_message_bytes: 10\n');
    expect(issues.map((i) => [i.line, i.field])).toEqual([[2, 'listen.port'], [4, 'log.level'], [6, 'limits.max_message_bytes']]);
    expect(issues[0]?.message).toBe('expected an integer between 0 and 65535, got 70000');
    expect(issues[1]?.message).toContain('expected one of fatal | error');
  });

  it('rejects an unknown key and suggests the closest known one', () => {
    const issues = issuesOf('pool:\n  size: 10\n  max_prepared_statement: 5\n  minSize: 1\n  zzz: 1\n');
    expect(issues.map((i) => [i.line, i.column, i.field])).toEqual([[3, 3, 'pool.max_prepared_statement'], [4, 3, 'pool.minSize'], [5, 3, 'pool.zzz']]);
    expect(issues[0]?.message).toBe('unknown key, did you mean "max_prepared_statements"?');
    expect(issues[1]?.message).toBe('unknown key, did you mean "min_size"?');
    expect(issues[2]?.message).toMatch(/^unknown key \(known: mode, size, /);
  });

  it('points an unknown section at its key, not its contents', () => {
    expect(issuesOf('databasess:\n  app:\n    primary: {}\n')).toEqual([
      { file: 'my.yaml', line: 1, column: 1, field: 'databasess', message: 'unknown key, did you mean "databases"?' },
    ]);
  });

  it('reports a YAML syntax error with its line', () => {
    const issues = issuesOf('listen:\n  host: 127.0.0.1\n  port: [6432\nhttp: {}\n');
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatchObject({ file: 'my.yaml', field: '' });
    expect(issues[0]?.line).toBeGreaterThanOrEqual(3);
    expect(issuesOf('pool:\n  size: 1\n  size: 2\n')[0]).toMatchObject({ line: 3, message: expect.stringContaining('unique') });
  });

  it('points a missing required field at the mapping that lacks it', () => {
    const issues = issuesOf('listen:\n  tls:\n    cert: a.pem\n');
    expect(issues).toEqual([expect.objectContaining({ line: 3, field: 'listen.tls.key', message: 'is required' })]);
  });

  it('does not echo a password that has the wrong type', () => {
    const issues = issuesOf('auth:\n  users:\n    - { name: app, password: 123456 }\n');
    expect(issues[0]?.field).toBe('auth.users[0].password');
    expect(issues[0]?.message).not.toContain('123456');
  });

  it('checks rules that span fields', () => {
    const issues = issuesOf([
      'pool: { size: 5 }',
      'databases:',
      '  app: { pool: { min_size: 9 } }',
      'auth:',
      '  users:',
      '    - { name: app, password: a }',
      '    - { name: app, password: b }',
      '    - { name: nopw }',
      '    - { name: m, method: md5, password: "SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB" }',
      'http: { port: 6432 }',
    ].join('\n'));
    expect(issues.map((i) => [i.line, i.field])).toEqual([
      [3, 'databases.app.pool.min_size'],
      [7, 'auth.users[1].name'],
      [8, 'auth.users[2].name'],
      [9, 'auth.users[3].password'],
      [10, 'http.port'],
    ]);
    expect(issues[3]?.message).toContain('malformed');
  });
});

describe('durations', () => {
  // Every `_ms` field (one inside a database's pool too), with its smallest value.
  const fields: [string, number][] = [
    ['pool.reserve_timeout_ms', 0], ['pool.query_wait_timeout_ms', 0], ['pool.idle_transaction_timeout_ms', 0],
    ['pool.server_idle_timeout_ms', 0], ['pool.server_lifetime_ms', 0], ['pool.server_connect_timeout_ms', 1],
    ['pool.server_login_retry_ms', 100], ['pool.server_check_delay_ms', 0], ['databases.app.pool.query_wait_timeout_ms', 0],
    ['limits.startup_timeout_ms', 1], ['shutdown_timeout_ms', 0], ['stats_period_ms', 100], ['cache.ttl_ms', 1],
    ['analyzer.slow_threshold_ms', 0],
  ];
  /** `field: value` as block YAML, one key per line: the value is on the last line. */
  const yaml = (field: string, value: number): string =>
    field.split('.').map((key, depth, keys) => `${'  '.repeat(depth)}${key}:${depth === keys.length - 1 ? ` ${value}` : ''}`).join('\n');

  it('refuses more than 2147483647 ms (a Node timer would fire at once) in every _ms field, naming the line and the bounds', () => {
    for (const [field, min] of fields) {
      expect(issuesOf(yaml(field, 2_147_483_648)), field).toEqual([expect.objectContaining({
        line: field.split('.').length, field,
        message: `expected a number of milliseconds between ${min} and 2147483647 (about 24.8 days), got 2147483648`,
      })]);
    }
  });

  it('accepts 2147483647 ms, and 0 where it means "off"', () => {
    for (const [field] of fields) expect(() => parseConfig(yaml(field, 2_147_483_647), 'my.yaml', {}), field).not.toThrow();
    const c = parseConfig('pool: { query_wait_timeout_ms: 0, idle_transaction_timeout_ms: 0, server_lifetime_ms: 0 }\n', 'my.yaml', {});
    expect(c.pool).toMatchObject({ queryWaitTimeoutMs: 0, idleTransactionTimeoutMs: 0, serverLifetimeMs: 0 });
  });
});

describe('databases', () => {
  const text = [
    'pool:',
    '  mode: session',
    '  size: 10',
    '  query_wait_timeout_ms: 5000',
    'databases:',
    '  app:',
    '    primary: { host: db1, dbname: app_prod, user: svc, password: pw, sslmode: verify-full, sslrootcert: ca.pem }',
    '    replicas:',
    '      - { host: db2 }',
    '      - { host: /var/run/postgresql, port: 5433, dbname: other }',
    '    pool: { size: 40, mode: transaction }',
    '  reports: {}',
  ].join('\n');
  const config = parseConfig(text, 'conf/my.yaml', {});

  it("refuses a database named like the admin console (pgway, pgbouncer), pointing at its key", () => {
    const issues = issuesOf('databases:\n  app: {}\n  pgbouncer: { primary: { dbname: app } }\n  pgway: {}\n');
    expect(issues.map((i) => [i.line, i.column, i.field])).toEqual([[3, 3, 'databases.pgbouncer'], [4, 3, 'databases.pgway']]);
    expect(issues[0]?.message).toMatch(/^"pgbouncer" is reserved for the admin console \(reserved: pgway, pgbouncer\)/);
  });

  it('merges a database pool over the global pool field by field', () => {
    const [app, reports] = config.databases;
    expect(app?.pool).toEqual({ ...DEFAULT_POOL, mode: 'transaction', size: 40, queryWaitTimeoutMs: 5000 });
    expect(reports?.pool).toEqual({ ...DEFAULT_POOL, mode: 'session', size: 10, queryWaitTimeoutMs: 5000 });
    expect(config.pool).toEqual(reports?.pool);
  });

  it('defaults dbname to the database name and lets replicas inherit from the primary', () => {
    const [app, reports] = config.databases;
    const caFile = resolve('conf/ca.pem');
    expect(app?.primary).toEqual({ host: 'db1', port: 5432, dbname: 'app_prod', user: 'svc', password: 'pw', sslmode: 'verify-full', sslrootcert: caFile });
    expect(app?.replicas).toEqual([
      { host: 'db2', port: 5432, dbname: 'app_prod', user: 'svc', password: 'pw', sslmode: 'verify-full', sslrootcert: caFile },
      { host: '/var/run/postgresql', port: 5433, dbname: 'other', user: 'svc', password: 'pw', sslmode: 'verify-full', sslrootcert: caFile },
    ]);
    expect(reports).toEqual({ name: 'reports', primary: { host: '127.0.0.1', port: 5432, dbname: 'reports', sslmode: 'prefer' }, replicas: [], pool: config.pool });
  });

  it('resolves listen paths against the config file directory', () => {
    const c = parseConfig('listen:\n  unix_socket_dir: sock\n  tls: { cert: c.pem, key: /abs/k.pem, mode: require }\n', 'conf/my.yaml', {});
    expect(c.listen).toEqual({
      host: '127.0.0.1', port: 6432, unixSocketDir: resolve('conf/sock'),
      tls: { cert: resolve('conf/c.pem'), key: '/abs/k.pem', mode: 'require' },
    });
    expect(c.source).toBe(resolve('conf/my.yaml'));
  });
});

describe('users', () => {
  it('applies auth.method and keeps per-user settings', () => {
    const c = parseConfig([
      'auth:',
      '  method: md5',
      '  users:',
      '    - { name: app, password: pw }',
      '    - { name: admin, password: "md5571c0c2fe9ae5e2c5f2a88d6bc0d98e3", admin: true, pool_mode: session, server_user: x, server_password: y }',
      '    - { name: s, method: scram-sha-256, password: "SCRAM-SHA-256$4096:gZQ1CUsZ10M+a8Wkjr8h0g==$wx0GPouAvQAE7wqef6Z6jFpcZKQoWRmL+g4NVgM8YcA=:tYmosVFOOb7P/Xrj3nRxsDUSTozmZbwq/Nb6QGrMxe0=" }',
      '    - { name: t, method: trust }',
    ].join('\n'), 'my.yaml', {});
    expect(c.auth.users.map((u) => [u.name, u.method, u.admin])).toEqual([['app', 'md5', false], ['admin', 'md5', true], ['s', 'scram-sha-256', false], ['t', 'trust', false]]);
    expect(c.auth.users[1]).toMatchObject({ poolMode: 'session', serverUser: 'x', serverPassword: 'y' });
  });
});

describe('shipped files', () => {
  it('loads the example with every field set', () => {
    const c = loadConfig(join(root, 'config/pgway.example.yaml'), { APP_PASSWORD: 'a', ADMIN_PASSWORD: 'b' });
    expect(c.databases.map((d) => d.name)).toEqual(['app']);
    expect(c.databases[0]?.pool.size).toBe(40);
    expect(c.auth.users.find((u) => u.admin)?.name).toBe('admin');
  });

  it('loads the default: no databases, transaction pooling, app and admin users', () => {
    const c = loadConfig(undefined, {});
    expect(c.source).toBe(join(root, 'config/default.yaml'));
    expect(c.databases).toEqual([]);
    expect(c.pool.mode).toBe('transaction');
    expect(c.listen).toMatchObject({ host: '127.0.0.1', port: 6432 });
    expect(c.auth.users.map((u) => [u.name, u.password, u.admin])).toEqual([['app', 'app', false], ['admin', 'admin', true]]);
    expect(loadConfig(undefined, { PGWAY_ADMIN_PASSWORD: 'x' }).auth.users[1]?.password).toBe('x');
  });

  it('reports a missing file as a ConfigError', () => {
    expect(() => loadConfig('/nonexistent/pgway.yaml', {})).toThrow(/cannot read the config file/);
  });
});

describe('checkConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgway-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('summarizes a valid file', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'databases:\n  app: { replicas: [{ port: 5433 }] }\nauth:\n  users: [{ name: app, password: pw }]\n');
    const { ok, output } = checkConfig(file, {});
    expect(ok).toBe(true);
    expect(output).toContain('127.0.0.1:6432');
    expect(output).toContain('app -> primary 127.0.0.1:5432/app, replicas 127.0.0.1:5433/app');
    expect(output).toContain('app (scram-sha-256)');
    expect(output).not.toContain('pw');
  });

  it('prints every error line, including files the config names that cannot be read', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'pool:\n  size: 0\n  mod: session\n');
    expect(checkConfig(bad, {})).toEqual({
      ok: false,
      output: `${bad}:2:9 pool.size: expected an integer >= 1, got 0\n${bad}:3:3 pool.mod: unknown key, did you mean "mode"?`,
    });
    const tls = join(dir, 'tls.yaml');
    writeFileSync(tls, 'listen:\n  tls: { cert: missing.pem, key: missing.key }\n');
    const result = checkConfig(tls, {});
    expect(result.ok).toBe(false);
    expect(result.output.split('\n')).toEqual([
      `${tls} listen.tls.cert: cannot read ${join(dir, 'missing.pem')}: ENOENT`,
      `${tls} listen.tls.key: cannot read ${join(dir, 'missing.key')}: ENOENT`,
    ]);
  });
});
