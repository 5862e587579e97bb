/**
 * A client's startup parameters, turned into the settings pgway applies on whichever server
 * connection serves it, so they take effect exactly as on a direct connection.
 */

import { FeatureNotSupportedError, InvalidStartupOptionsError, ReadOnlySettingError } from '../errors.js';
import { NOT_CARRIED } from '../router/setting-effects.js';
import { parseBool } from '../router/guc-value.js';

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
 * The switches of PostgreSQL's command line that it reads in `options` (process_postgres_switches)
 * and take an argument (the rest of their word, or the next word), each with the settings it sets;
 * undefined for an argument PostgreSQL refuses. A switch that sets something only the postmaster
 * can (-B, -p, ...) is refused by the server, as on a direct connection.
 */
const ARGUMENT_SWITCHES = new Map<string, (arg: string, flag: string) => [string, string][] | undefined>([
  ['B', (arg) => [['shared_buffers', arg]]],
  ['c', longOption],
  ['-', longOption],
  ['d', debugOptions],
  ['f', (arg) => planDisabling(arg)],
  ['h', (arg) => [['listen_addresses', arg]]],
  ['k', (arg) => [['unix_socket_directories', arg]]],
  ['N', (arg) => [['max_connections', arg]]],
  ['p', (arg) => [['port', arg]]],
  ['S', (arg) => [['work_mem', arg]]],
  ['t', (arg) => statsOption(arg)],
  ['W', (arg) => [['post_auth_delay', arg]]],
  // Read only from the server's own command line (-C, -D, -r, -v): from a client they are ignored.
  ['C', () => []],
  ['D', () => []],
  ['r', () => []],
  ['v', () => []],
]);

/** Switches without an argument that set a setting. */
const FLAG_SWITCHES = new Map<string, [string, string]>([
  ['e', ['datestyle', 'euro']],
  ['F', ['fsync', 'false']],
  ['i', ['listen_addresses', '*']],
  ['l', ['ssl', 'true']],
  ['O', ['allow_system_table_mods', 'true']],
  ['P', ['ignore_system_indexes', 'true']],
  ['s', ['log_statement_stats', 'true']],
]);

/** Switches without an argument that PostgreSQL ignores in `options`. */
const IGNORED_FLAGS = new Set(['b', 'E', 'j', 'n', 'T']);

/** -f's letters: the plan type each turns off. */
const PLAN_DISABLING = new Map([
  ['s', 'enable_seqscan'],
  ['i', 'enable_indexscan'],
  ['o', 'enable_indexonlyscan'],
  ['b', 'enable_bitmapscan'],
  ['t', 'enable_tidscan'],
  ['n', 'enable_nestloop'],
  ['m', 'enable_mergejoin'],
  ['h', 'enable_hashjoin'],
]);

function planDisabling(arg: string): [string, string][] | undefined {
  const name = PLAN_DISABLING.get(arg.charAt(0));
  return name === undefined ? undefined : [[name, 'false']];
}

/** -t pa[rser] / pl[anner] / e[xecutor]: which statistics to log. */
function statsOption(arg: string): [string, string][] | undefined {
  if (arg.startsWith('pa')) return [['log_parser_stats', 'true']];
  if (arg.startsWith('pl')) return [['log_planner_stats', 'true']];
  if (arg.startsWith('e')) return [['log_executor_stats', 'true']];
  return undefined;
}

/** -c name=value, --name=value. */
function longOption(arg: string, flag: string): [string, string][] {
  const eq = arg.indexOf('=');
  if (eq < 0) throw new InvalidStartupOptionsError(flag === '-' ? `--${arg} requires a value` : `-c ${arg} requires a value`);
  return [[arg.slice(0, eq).replaceAll('-', '_'), arg.slice(eq + 1)]];
}

/** -d level: how much the server logs, as PostgreSQL's set_debug_options. */
function debugOptions(arg: string): [string, string][] {
  const level = Number.parseInt(arg, 10) || 0;
  const settings: [string, string][] = [['log_min_messages', level > 0 ? `debug${level}` : 'notice']];
  if (level >= 2) settings.push(['log_statement', 'all']);
  if (level >= 3) settings.push(['debug_print_parse', 'true']);
  if (level >= 4) settings.push(['debug_print_plan', 'true']);
  if (level >= 5) settings.push(['debug_print_rewritten', 'true']);
  return settings;
}

function invalidSwitch(word: string): InvalidStartupOptionsError {
  return new InvalidStartupOptionsError(`invalid command-line argument for server process: ${word}`, {
    hint: 'Try "postgres --help" for more information.',
  });
}

/** Splits `options` into words as PostgreSQL does: at spaces, where a backslash escapes the next character. */
function optionWords(options: string): string[] {
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
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v') { // isspace(), as pg_split_opts
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * Reads the `options` startup parameter as PostgreSQL reads it, as a server command line (getopt:
 * `-c name=value`, `--name=value`, `-S 2048`, `-fs`, grouped flags as `-Fs`), into the settings it
 * sets. Throws InvalidStartupOptionsError (42601) for what PostgreSQL refuses: a switch it does
 * not have, a word that is no switch, a missing argument.
 */
export function parseOptions(options: string): [string, string][] {
  const words = optionWords(options);
  const settings: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      // The end of the switches; PostgreSQL takes no other arguments from a client.
      if (i + 1 < words.length) throw invalidSwitch(words[i + 1]!);
      break;
    }
    if (word.length < 2 || word[0] !== '-') throw invalidSwitch(word);
    for (let j = 1; j < word.length; j++) {
      const flag = word[j]!;
      const withArgument = ARGUMENT_SWITCHES.get(flag);
      if (withArgument) {
        const arg = j + 1 < word.length ? word.slice(j + 1) : words[++i];
        const set = arg === undefined ? undefined : withArgument(arg, flag);
        if (set === undefined) throw invalidSwitch(word);
        settings.push(...set);
        break;
      }
      const fixed = FLAG_SWITCHES.get(flag);
      if (fixed) settings.push(fixed);
      else if (!IGNORED_FLAGS.has(flag)) throw invalidSwitch(word);
    }
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
    out.set(key, asReported(name, value));
  }
  return out;
}

/** Reported settings of type boolean, which PostgreSQL reports as on or off however they were set. */
const REPORTED_BOOLEANS: ReadonlySet<string> = new Set(['standard_conforming_strings', 'default_transaction_read_only']);

/**
 * A startup setting as the server would report it, where pgway knows how without asking it:
 * libpq compares standard_conforming_strings with "on" as it stands, and escapes strings and
 * bytea otherwise as if it were off. Others go as the client gave them (see README).
 */
function asReported(name: string, value: string): string {
  if (name === 'client_encoding' && /^utf-?8$|^unicode$/i.test(value)) return 'UTF8';
  if (REPORTED_BOOLEANS.has(name)) {
    const on = parseBool(value);
    if (on !== undefined) return on ? 'on' : 'off';
  }
  return value;
}
