/**
 * A client's startup parameters, turned into the settings pgway applies on whichever server
 * connection serves it, so they take effect exactly as on a direct connection.
 */

import { FeatureNotSupportedError, ReadOnlySettingError } from '../errors.js';
import { NOT_CARRIED } from '../router/session-effects.js';

/** Startup keys that are not settings: they pick the connection, not its state. */
const NOT_SETTINGS = new Set(['user', 'database', 'replication', 'options']);

/**
 * Settings PostgreSQL takes at login but that have no lasting effect there, so they are not laid
 * on: the transaction_* ones are set afresh from default_transaction_* as each transaction starts
 * (and set_config refuses them inside pgway's settings block, after its snapshot), and the login
 * user's session_authorization overrides a startup value.
 */
const IGNORED_AT_LOGIN = new Set(['transaction_isolation', 'transaction_read_only', 'transaction_deferrable', 'session_authorization']);

/**
 * Settings only a new backend takes (pg_settings.context backend / superuser-backend): a pooled
 * server connection already started cannot have them, so a client asking for one is refused at
 * login, as PgBouncer refuses a startup parameter it does not carry.
 */
const CONNECTION_START_ONLY = new Set([
  'ignore_system_indexes',
  'post_auth_delay',
  'log_connections',
  'log_disconnections',
  'jit_debugging_support',
  'jit_profiling_support',
]);

/**
 * Settings that report how the server was built or started, or who the session is
 * (pg_settings.context internal): PostgreSQL refuses them in a startup packet with FATAL 55P02,
 * and so does pgway, at login rather than when it first lays them on.
 */
const READ_ONLY = new Set([
  'block_size',
  'data_checksums',
  'data_directory_mode',
  'debug_assertions',
  'huge_pages_status',
  'in_hot_standby',
  'integer_datetimes',
  'is_superuser',
  'lc_collate',
  'lc_ctype',
  'max_function_args',
  'max_identifier_length',
  'max_index_keys',
  'num_os_semaphores',
  'segment_size',
  'server_encoding',
  'server_version',
  'server_version_num',
  'shared_memory_size',
  'shared_memory_size_in_huge_pages',
  'ssl_library',
  'wal_block_size',
  'wal_segment_size',
]);

/**
 * Parses the `options` startup parameter as PostgreSQL does: `-c name=value` or `--name=value`,
 * separated by spaces, where a backslash escapes the next character.
 */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let word = '';
  let escaped = false;
  let inWord = false;
  for (const ch of options) {
    if (escaped) {
      word += ch;
      escaped = false;
      inWord = true;
    } else if (ch === '\\') {
      escaped = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);

  const settings: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let spec: string | undefined;
    const w = words[i]!;
    if (w === '-c') spec = words[++i];
    else if (w.startsWith('-c')) spec = w.slice(2);
    else if (w.startsWith('--')) spec = w.slice(2);
    if (!spec) continue;
    const eq = spec.indexOf('=');
    if (eq > 0) settings.push([spec.slice(0, eq).replaceAll('-', '_'), spec.slice(eq + 1)]);
  }
  return settings;
}

/**
 * The settings a client asked for at startup, lower-cased names, `options` expanded. Throws for
 * one that only a new server connection can take (see CONNECTION_START_ONLY) or none can (READ_ONLY).
 */
export function startupSettings(params: ReadonlyMap<string, string>): Map<string, string> {
  const settings = new Map<string, string>();
  const options = params.get('options');
  if (options) for (const [k, v] of parseOptions(options)) settings.set(k.toLowerCase(), v);
  for (const [k, v] of params) if (!NOT_SETTINGS.has(k)) settings.set(k.toLowerCase(), v);
  for (const name of settings.keys()) {
    // A startup value of a setting not carried on SET (seed, temp_buffers) is not carried either.
    if (IGNORED_AT_LOGIN.has(name) || NOT_CARRIED.has(name)) settings.delete(name);
    else if (READ_ONLY.has(name)) throw new ReadOnlySettingError(name);
    else if (CONNECTION_START_ONLY.has(name)) {
      throw new FeatureNotSupportedError(`unsupported startup parameter: ${name}`, {
        detail: `"${name}" can only be set when a server connection starts, and pgway's server connections are shared.`,
      });
    }
  }
  return settings;
}

export function quoteLiteral(value: string): string {
  const doubled = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${doubled.replaceAll('\\', '\\\\')}'` : `'${doubled}'`;
}

/**
 * Sets `name` the way a startup packet would: set_config parses the value as the raw setting
 * string, so list settings such as search_path keep their meaning. NULL resets it.
 */
export function setConfigCall(name: string, value: string | null): string {
  return `pg_catalog.set_config(${quoteLiteral(name)}, ${value === null ? 'NULL' : quoteLiteral(value)}, false)`;
}

/**
 * The ParameterStatus values a client should see at login without a server round trip: the
 * pool's last known server values with the client's own startup settings laid over them.
 */
export function reportedParams(server: ReadonlyMap<string, string>, settings: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map(server);
  const byLower = new Map([...server.keys()].map((k) => [k.toLowerCase(), k]));
  for (const [name, value] of settings) {
    const key = byLower.get(name);
    if (!key) continue;
    out.set(key, name === 'client_encoding' && /^utf-?8$|^unicode$/i.test(value) ? 'UTF8' : value);
  }
  return out;
}
