// The config's single source of truth: the typed shape the rest of pgway reads, and the validator that
// turns the plain value parsed from YAML (snake_case) into it (camelCase, defaults applied, deeply frozen).
// Errors come back as paths into the YAML document; load.ts maps them to file, line and column.
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

export type PoolMode = 'session' | 'transaction' | 'statement';
export type AuthMethod = 'scram-sha-256' | 'md5' | 'trust';
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerTarget { host: string; port: number; dbname: string; user?: string; password?: string; sslmode: SslMode; sslrootcert?: string }
export interface PoolSettings {
  mode: PoolMode; size: number; minSize: number; reserveSize: number; reserveTimeoutMs: number; maxDbConnections: number;
  queryWaitTimeoutMs: number; idleTransactionTimeoutMs: number; serverIdleTimeoutMs: number; serverLifetimeMs: number;
  serverConnectTimeoutMs: number; serverLoginRetryMs: number; serverCheckDelayMs: number; serverResetQuery: string;
  maxPreparedStatements: number;
}
/** `pool` is already merged with the global defaults. */
export interface DatabaseConfig { name: string; primary: ServerTarget; replicas: ServerTarget[]; pool: PoolSettings }
/** `password` is raw as written: plaintext, a `SCRAM-SHA-256$...` verifier or `md5<hex>`; `method` is the user's own or auth.method. */
export interface UserConfig { name: string; password?: string; method: AuthMethod; admin: boolean; poolMode?: PoolMode; serverUser?: string; serverPassword?: string }
/** File paths, resolved relative to the config file's directory. */
export interface TlsListenConfig { cert: string; key: string; ca?: string; mode: 'allow' | 'require' }
export interface Config {
  source: string;
  listen: { host: string; port: number; unixSocketDir?: string; tls?: TlsListenConfig };
  http: { enabled: boolean; host: string; port: number };
  auth: { method: AuthMethod; users: UserConfig[] };
  pool: PoolSettings;
  limits: { maxClientConn: number; maxMessageBytes: number; startupTimeoutMs: number };
  shutdownTimeoutMs: number;
  /** SHOW STATS' averages cover the last period of this length (PgBouncer's stats_period). */
  statsPeriodMs: number;
  databases: DatabaseConfig[];
  cache: { enabled: boolean; redis?: string; maxEntries: number; ttlMs: number };
  analyzer: { enabled: boolean; slowThresholdMs: number };
  log: { level: LogLevel };
  /** V8's young-generation GC on helper threads (default) or on the main thread only (docs/performance.md). */
  gc: { parallelScavenge: boolean };
  sandbox: { dataDir: string; port: number };
}

export const DEFAULT_POOL: Readonly<PoolSettings> = Object.freeze({
  mode: 'transaction', size: 20, minSize: 0, reserveSize: 0, reserveTimeoutMs: 5000, maxDbConnections: 0,
  queryWaitTimeoutMs: 120_000, idleTransactionTimeoutMs: 0, serverIdleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000,
  serverConnectTimeoutMs: 15_000, serverLoginRetryMs: 1000, serverCheckDelayMs: 30_000, serverResetQuery: 'DISCARD ALL', maxPreparedStatements: 200,
});

/** Database names that log in to the admin console: no database of the config may take one. */
export const ADMIN_DATABASES: ReadonlySet<string> = new Set(['pgway', 'pgbouncer']);

/** A problem found in the parsed value; `path` uses the YAML's keys, `atKey` points at the key rather than its value. */
export interface PathIssue { path: (string | number)[]; message: string; atKey?: boolean }
export type ValidationResult = { ok: true; config: Config } | { ok: false; issues: PathIssue[] };

// ---- field builders: each says in its message what it expected and what it got ----

const MAX_INT = Number.MAX_SAFE_INTEGER;
const KIB = 1024;
const GIB = 1024 ** 3;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

// Interpolated values are always text, so numbers and booleans also accept their spelling as a string:
// that is what makes `port: ${PORT:-6432}` work.
function int(min: number, max = MAX_INT, want = max === MAX_INT ? `an integer >= ${min}` : `an integer between ${min} and ${max}`) {
  const error = (iss: { input?: unknown }) => `expected ${want}, got ${describe(iss.input)}`;
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
    z.number({ error }).int({ error }).min(min, { error }).max(max, { error }),
  );
}

const port = (min = 0) => int(min, 65535);

/**
 * The longest delay Node's timers take: setTimeout and setInterval turn a longer one into 1 ms, so a
 * duration meant as "practically never" would fire at once. PostgreSQL refuses its *_timeout settings
 * above the same INT_MAX.
 */
const MAX_MS = 2_147_483_647;

/** A duration in milliseconds (every `_ms` field), at most MAX_MS. */
const ms = (min: number) => int(min, MAX_MS, `a number of milliseconds between ${min} and ${MAX_MS} (about 24.8 days)`);

const bool = z.preprocess(
  (v) => (v === 'true' ? true : v === 'false' ? false : v),
  z.boolean({ error: (iss) => `expected true or false, got ${describe(iss.input)}` }),
);

/** `secret` keeps the value out of the message: it may be a password. */
function text(opts: { secret?: boolean; allowEmpty?: boolean } = {}) {
  const got = (v: unknown) => (opts.secret && v !== undefined && v !== null ? `a ${typeof v} (quote it)` : describe(v));
  const s = z.string({ error: (iss) => (iss.input === undefined ? 'is required' : `expected a string, got ${got(iss.input)}`) });
  return opts.allowEmpty ? s : s.min(1, { error: 'must not be empty' });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: (iss) => `expected one of ${values.join(' | ')}, got ${describe(iss.input)}` });
}

/** A mapping whose keys are checked: an unknown key is an error. An empty value (`pool:`) means all defaults. */
function section<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.preprocess((v) => v ?? {}, z.strictObject(shape, {
    error: (iss) => (iss.code === 'invalid_type' ? `expected a mapping, got ${describe(iss.input)}` : undefined),
  }));
}

function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => v ?? [], z.array(item, { error: (iss) => `expected a list, got ${describe(iss.input)}` }));
}

// ---- the YAML document's shape ----

const poolMode = oneOf(['session', 'transaction', 'statement']);
const authMethod = oneOf(['scram-sha-256', 'md5', 'trust']);

// Every pool field is optional here: the global section and each database's section override field by field.
const poolSection = section({
  mode: poolMode.optional(),
  size: int(1).optional(),
  min_size: int(0).optional(),
  reserve_size: int(0).optional(),
  reserve_timeout_ms: ms(0).optional(),
  max_db_connections: int(0).optional(),
  query_wait_timeout_ms: ms(0).optional(),
  idle_transaction_timeout_ms: ms(0).optional(),
  server_idle_timeout_ms: ms(0).optional(),
  server_lifetime_ms: ms(0).optional(),
  server_connect_timeout_ms: ms(1).optional(),
  server_login_retry_ms: ms(100).optional(),
  server_check_delay_ms: ms(0).optional(),
  server_reset_query: text({ allowEmpty: true }).optional(),
  max_prepared_statements: int(0).optional(),
});

// Replicas inherit what they leave out (except host and port) from the primary, so nothing defaults here.
const targetSection = section({
  host: text().optional(),
  port: port(1).optional(),
  dbname: text().optional(),
  user: text().optional(),
  password: text({ secret: true, allowEmpty: true }).optional(),
  sslmode: oneOf(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  sslrootcert: text().optional(),
});

const userSection = section({
  name: text(),
  password: text({ secret: true, allowEmpty: true }).optional(),
  method: authMethod.optional(),
  admin: bool.default(false),
  pool_mode: poolMode.optional(),
  server_user: text().optional(),
  server_password: text({ secret: true, allowEmpty: true }).optional(),
});

const databaseSection = section({
  primary: targetSection,
  replicas: list(targetSection),
  pool: poolSection,
});

// Top-level keys starting with `x-` are ignored, as in docker compose: a place for YAML anchors to share.
const withoutExtensions = (v: unknown) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith('x-'))) : v;

export const configSchema = z.preprocess(withoutExtensions, section({
  listen: section({
    host: text().default('127.0.0.1'),
    port: port().default(6432),
    unix_socket_dir: text().optional(),
    tls: section({ cert: text(), key: text(), ca: text().optional(), mode: oneOf(['allow', 'require']).default('allow') }).optional(),
  }),
  http: section({ enabled: bool.default(true), host: text().default('127.0.0.1'), port: port().default(9432) }),
  auth: section({ method: authMethod.default('scram-sha-256'), users: list(userSection) }),
  pool: poolSection,
  limits: section({
    max_client_conn: int(1).default(1000),
    max_message_bytes: int(KIB, GIB).default(64 * 1024 * 1024),
    startup_timeout_ms: ms(1).default(15_000),
  }),
  shutdown_timeout_ms: ms(0).default(30_000),
  stats_period_ms: ms(100).default(60_000),
  databases: z.preprocess((v) => v ?? {}, z.record(z.string(), databaseSection, {
    error: (iss) => (iss.code === 'invalid_type' ? `expected a mapping of database name to settings, got ${describe(iss.input)}` : undefined),
  })),
  cache: section({
    enabled: bool.default(false),
    redis: text().optional(),
    max_entries: int(1).default(10_000),
    ttl_ms: ms(1).default(60_000),
  }),
  analyzer: section({ enabled: bool.default(false), slow_threshold_ms: ms(0).default(200) }),
  log: section({ level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }),
  gc: section({ parallel_scavenge: bool.default(true) }),
  sandbox: section({ data_dir: text().default('.pgway'), port: port().default(0) }),
}));

type RawConfig = z.output<typeof configSchema>;
type RawPool = z.output<typeof poolSection>;
type RawTarget = z.output<typeof targetSection>;

// ---- validation ----

/** Validates the plain value parsed from YAML. `source` is a file path (relative paths in the config resolve
 * against its directory) or a `<name>` placeholder (they resolve against the working directory). */
export function validateConfig(input: unknown, source: string): ValidationResult {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.flatMap((iss) => toPathIssues(iss)) };
  const issues: PathIssue[] = [];
  const isFile = !/^<.*>$/.test(source);
  const config = build(parsed.data, isFile ? resolve(source) : source, isFile ? dirname(resolve(source)) : process.cwd(), issues);
  return issues.length > 0 ? { ok: false, issues } : { ok: true, config: deepFreeze(config) };
}

function toPathIssues(iss: z.core.$ZodIssue): PathIssue[] {
  const path = iss.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (iss.code !== 'unrecognized_keys') return [{ path, message: iss.message }];
  // One issue per unknown key, pointing at the key itself, with the closest known key as a hint.
  const known = knownKeysAt(configSchema, path);
  return iss.keys.map((key) => {
    const hint = suggest(key, known);
    return { path: [...path, key], atKey: true, message: `unknown key${hint ? `, did you mean "${hint}"?` : ` (known: ${known.join(', ')})`}` };
  });
}

function knownKeysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  let node: z.ZodType = schema;
  let i = 0;
  for (;;) {
    if (node instanceof z.ZodPipe) node = node.out as z.ZodType;
    else if (node instanceof z.ZodOptional || node instanceof z.ZodDefault) node = node.unwrap() as z.ZodType;
    else if (i >= path.length) break;
    else if (node instanceof z.ZodObject) node = node.shape[String(path[i++])] as z.ZodType;
    else if (node instanceof z.ZodRecord) { node = node.valueType as z.ZodType; i++; }
    else if (node instanceof z.ZodArray) { node = node.element as z.ZodType; i++; }
    else return [];
    if (node === undefined) return [];
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function suggest(key: string, known: readonly string[]): string | undefined {
  // camelCase is the TS spelling of a snake_case YAML key: an easy slip, so check it first.
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/-/g, '_');
  if (known.includes(snake)) return snake;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

// ---- raw (snake_case, optional) -> Config (camelCase, complete), with the checks that span fields ----

function build(raw: RawConfig, source: string, baseDir: string, issues: PathIssue[]): Config {
  const path = (p: string) => (p === 'system' ? p : resolve(baseDir, p)); // libpq's sslrootcert=system is not a file
  const pool = mergePool(DEFAULT_POOL, raw.pool);
  checkPool(pool, raw.pool, ['pool'], issues);

  const databases = Object.entries(raw.databases).map(([name, db]): DatabaseConfig => {
    if (name === '') issues.push({ path: ['databases', name], atKey: true, message: 'a database name must not be empty' });
    if (ADMIN_DATABASES.has(name)) {
      // Logins to it would reach the admin console, never the database.
      issues.push({
        path: ['databases', name], atKey: true,
        message: `"${name}" is reserved for the admin console (reserved: ${[...ADMIN_DATABASES].join(', ')}); name the database otherwise, with primary.dbname: ${name} if the server's database is called so`,
      });
    }
    const primary = target(db.primary, { host: '127.0.0.1', port: 5432, dbname: name, sslmode: 'prefer' }, path);
    const dbPool = mergePool(pool, db.pool);
    checkPool(dbPool, db.pool, ['databases', name, 'pool'], issues);
    return { name, primary, replicas: db.replicas.map((r) => target(r, { ...primary, host: '127.0.0.1', port: 5432 }, path)), pool: dbPool };
  });

  const seen = new Set<string>();
  const users = raw.auth.users.map((u, i): UserConfig => {
    if (seen.has(u.name)) issues.push({ path: ['auth', 'users', i, 'name'], message: `duplicate user name "${u.name}"` });
    seen.add(u.name);
    const method = u.method ?? raw.auth.method;
    const problem = passwordProblem(u.password, method);
    if (problem) issues.push({ path: ['auth', 'users', i, u.password === undefined ? 'name' : 'password'], message: problem });
    return {
      name: u.name, method, admin: u.admin,
      ...(u.password !== undefined && { password: u.password }),
      ...(u.pool_mode !== undefined && { poolMode: u.pool_mode }),
      ...(u.server_user !== undefined && { serverUser: u.server_user }),
      ...(u.server_password !== undefined && { serverPassword: u.server_password }),
    };
  });

  const { listen, http, cache } = raw;
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::';
  const sameHost = http.host === listen.host || wildcard(http.host) || wildcard(listen.host);
  if (http.enabled && http.port !== 0 && http.port === listen.port && sameHost) {
    issues.push({ path: ['http', 'port'], message: `port ${http.port} is already used by listen.port` });
  }
  if (cache.redis !== undefined && !/^rediss?:\/\/|^\//.test(cache.redis)) {
    issues.push({ path: ['cache', 'redis'], message: `expected a redis:// or rediss:// URL (or a unix socket path), got ${describe(cache.redis)}` });
  }
  const tls = listen.tls;
  return {
    source,
    listen: {
      host: listen.host, port: listen.port,
      ...(listen.unix_socket_dir !== undefined && { unixSocketDir: resolve(baseDir, listen.unix_socket_dir) }),
      ...(tls && { tls: { cert: path(tls.cert), key: path(tls.key), mode: tls.mode, ...(tls.ca !== undefined && { ca: path(tls.ca) }) } }),
    },
    http: { enabled: http.enabled, host: http.host, port: http.port },
    auth: { method: raw.auth.method, users },
    pool,
    limits: { maxClientConn: raw.limits.max_client_conn, maxMessageBytes: raw.limits.max_message_bytes, startupTimeoutMs: raw.limits.startup_timeout_ms },
    shutdownTimeoutMs: raw.shutdown_timeout_ms,
    statsPeriodMs: raw.stats_period_ms,
    databases,
    cache: { enabled: cache.enabled, maxEntries: cache.max_entries, ttlMs: cache.ttl_ms, ...(cache.redis !== undefined && { redis: cache.redis }) },
    analyzer: { enabled: raw.analyzer.enabled, slowThresholdMs: raw.analyzer.slow_threshold_ms },
    log: { level: raw.log.level },
    gc: { parallelScavenge: raw.gc.parallel_scavenge },
    // Relative to the working directory, like any other data directory a daemon is started with.
    sandbox: { dataDir: raw.sandbox.data_dir, port: raw.sandbox.port },
  };
}

function target(raw: RawTarget, inherit: ServerTarget, path: (p: string) => string): ServerTarget {
  const user = raw.user ?? inherit.user;
  const password = raw.password ?? inherit.password;
  const sslrootcert = raw.sslrootcert !== undefined ? path(raw.sslrootcert) : inherit.sslrootcert;
  return {
    host: raw.host ?? inherit.host, port: raw.port ?? inherit.port, dbname: raw.dbname ?? inherit.dbname,
    sslmode: raw.sslmode ?? inherit.sslmode,
    ...(user !== undefined && { user }),
    ...(password !== undefined && { password }),
    ...(sslrootcert !== undefined && { sslrootcert }),
  };
}

function mergePool(base: Readonly<PoolSettings>, o: RawPool): PoolSettings {
  return {
    mode: o.mode ?? base.mode,
    size: o.size ?? base.size,
    minSize: o.min_size ?? base.minSize,
    reserveSize: o.reserve_size ?? base.reserveSize,
    reserveTimeoutMs: o.reserve_timeout_ms ?? base.reserveTimeoutMs,
    maxDbConnections: o.max_db_connections ?? base.maxDbConnections,
    queryWaitTimeoutMs: o.query_wait_timeout_ms ?? base.queryWaitTimeoutMs,
    idleTransactionTimeoutMs: o.idle_transaction_timeout_ms ?? base.idleTransactionTimeoutMs,
    serverIdleTimeoutMs: o.server_idle_timeout_ms ?? base.serverIdleTimeoutMs,
    serverLifetimeMs: o.server_lifetime_ms ?? base.serverLifetimeMs,
    serverConnectTimeoutMs: o.server_connect_timeout_ms ?? base.serverConnectTimeoutMs,
    serverLoginRetryMs: o.server_login_retry_ms ?? base.serverLoginRetryMs,
    serverCheckDelayMs: o.server_check_delay_ms ?? base.serverCheckDelayMs,
    serverResetQuery: o.server_reset_query ?? base.serverResetQuery,
    maxPreparedStatements: o.max_prepared_statements ?? base.maxPreparedStatements,
  };
}

function checkPool(pool: PoolSettings, raw: RawPool, at: (string | number)[], issues: PathIssue[]): void {
  if (pool.minSize > pool.size) {
    // Blame the field this section actually wrote; an inherited pair is reported where it was set.
    const field = raw.min_size !== undefined ? 'min_size' : raw.size !== undefined ? 'size' : undefined;
    if (field) issues.push({ path: [...at, field], message: `min_size (${pool.minSize}) must not exceed size (${pool.size})` });
  }
}

const SCRAM_VERIFIER = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+=*)\$([A-Za-z0-9+/]+=*):([A-Za-z0-9+/]+=*)$/;
// PostgreSQL's own test for a stored md5 hash: lowercase hex only.
const MD5_HASH = /^md5[0-9a-f]{32}$/;

/** How a user's password is stored, by PostgreSQL's rules: a verifier, an md5 hash or plaintext. */
export function passwordKind(password: string): 'scram' | 'md5' | 'plain' {
  if (password.startsWith('SCRAM-SHA-256$')) return 'scram';
  return MD5_HASH.test(password) ? 'md5' : 'plain';
}

function passwordProblem(password: string | undefined, method: AuthMethod): string | undefined {
  if (method === 'trust') return undefined;
  if (password === undefined || password === '') return `a password is required for method ${method}`;
  const kind = passwordKind(password);
  if (kind === 'scram') {
    const m = SCRAM_VERIFIER.exec(password);
    const keysOk = m !== null && Number(m[1]) >= 1 && [m[3], m[4]].every((k) => Buffer.from(k ?? '', 'base64').length === 32);
    // Not echoed: a malformed verifier may be a real password pasted in the wrong place.
    if (!keysOk) return 'looks like a SCRAM-SHA-256 verifier but is malformed (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)';
    if (method === 'md5') return 'a SCRAM-SHA-256 verifier cannot check an md5 login: use method scram-sha-256 or a plaintext password';
  }
  if (kind === 'md5' && method === 'scram-sha-256') {
    return 'an md5 hash cannot check a SCRAM-SHA-256 login: use method md5 or a plaintext password';
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
