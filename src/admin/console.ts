/**
 * The SQL admin console: clients connect to the database `pgway` (or `pgbouncer`) as an admin
 * user and run SHOW / PAUSE / RESUME / RELOAD ... with the simple query protocol. Column names
 * follow PgBouncer's where the meaning is the same, so its users' scripts keep working.
 */
import { defaultConfig } from '../config/load.js';
import { isRestartOnly } from '../config/restart-only.js';
import { QueryCanceledError } from '../errors.js';
import { Backend } from '../wire/codes.js';
import { errorResponse, MessageWriter } from '../wire/messages.js';
import type { AdminView } from './admin-view.js';
import { totalsByDatabase, type StatsTotals } from './stats-period.js';

type Cell = string | number | boolean | null;
interface Table {
  columns: string[];
  rows: Cell[][];
}

/** SHOW STATS' columns after `total_` and `avg_`, in PgBouncer's order (1.23, with server assignments). */
const STATS_FIELDS = ['server_assignment_count', 'xact_count', 'query_count', 'received', 'sent', 'xact_time', 'query_time', 'wait_time'] as const;
type StatsField = (typeof STATS_FIELDS)[number];
/** PgBouncer names one of SHOW STATS' averages otherwise: avg_recv, not avg_received. */
const AVG_NAMES: Partial<Record<StatsField, string>> = { received: 'recv' };
/** SHOW STATS_TOTALS and STATS_AVERAGES name the bytes columns as PgBouncer does. */
const PER_FIELD_NAMES: Partial<Record<StatsField, string>> = { received: 'bytes_received', sent: 'bytes_sent' };
const TOTAL_COLUMNS = STATS_FIELDS.map((f) => `total_${f}`);
const AVG_COLUMNS = STATS_FIELDS.map((f) => `avg_${AVG_NAMES[f] ?? f}`);
const PER_FIELD_COLUMNS = STATS_FIELDS.map((f) => PER_FIELD_NAMES[f] ?? f);

/** The columns of every SHOW that hold integers (the rest are text). */
const INT_COLUMNS: ReadonlySet<string> = new Set([
  'cl_active', 'cl_waiting', 'sv_active', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login', 'maxwait', 'maxwait_us', 'paused', // POOLS
  'port', 'wait', 'wait_us', 'link', 'remote_pid', 'prepared_statements', 'id', // CLIENTS, SERVERS
  'pool_size', 'min_pool_size', 'reserve_pool', 'server_lifetime', 'max_connections', 'current_connections', 'disabled', // DATABASES
  // STATS, STATS_TOTALS, STATS_AVERAGES
  ...TOTAL_COLUMNS, ...AVG_COLUMNS, ...PER_FIELD_COLUMNS,
]);

const TEXT_OID = 25;
const INT8_OID = 20;

function rowDescription(columns: string[], types: number[]): Buffer {
  const w = new MessageWriter().int16(columns.length);
  columns.forEach((name, i) => w.cstring(name).int32(0).int16(0).int32(types[i]!).int16(-1).int32(-1).int16(0));
  return w.frame(Backend.RowDescription);
}

function dataRow(cells: Cell[]): Buffer {
  const w = new MessageWriter().int16(cells.length);
  for (const cell of cells) {
    if (cell === null) {
      w.int32(-1);
      continue;
    }
    const bytes = Buffer.from(typeof cell === 'boolean' ? (cell ? 't' : 'f') : String(cell));
    w.int32(bytes.length).bytes(bytes);
  }
  return w.frame(Backend.DataRow);
}

const commandComplete = (tag: string): Buffer => new MessageWriter().cstring(tag).frame(Backend.CommandComplete);

function tableFrames(t: Table): Buffer[] {
  // A column's type is its name's, whatever the rows hold: a null link, or no row at all, must not
  // make a column text in one SHOW and int8 in the next.
  const types = t.columns.map((c) => (INT_COLUMNS.has(c) ? INT8_OID : TEXT_OID));
  return [rowDescription(t.columns, types), ...t.rows.map(dataRow), commandComplete(`SHOW`)];
}

const adminError = (message: string, sqlstate = '42601'): Buffer[] => [
  errorResponse({ severity: 'ERROR', sqlstate, message }),
];

/** A wall-clock time as PgBouncer shows one (format_time_s): whole seconds, then the zone. */
const iso = (ms: number): string => (ms ? `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC` : '');

function show(view: AdminView, what: string): Table | undefined {
  switch (what) {
    case 'pools':
      return {
        columns: ['database', 'user', 'cl_active', 'cl_waiting', 'sv_active', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login', 'maxwait', 'maxwait_us', 'pool_mode', 'paused'],
        rows: view.pools().map((p) => [
          p.database, p.user, p.clientsActive, p.clientsWaiting, p.serversActive, p.serversIdle, p.serversUsed, p.serversTested, p.serversLogin,
          Math.floor(p.maxWaitMs / 1000), (p.maxWaitMs % 1000) * 1000, p.mode, p.paused ? 1 : 0,
        ]),
      };
    case 'clients':
      return {
        columns: ['type', 'user', 'database', 'state', 'addr', 'port', 'connect_time', 'request_time', 'wait', 'wait_us', 'link', 'remote_pid', 'tls', 'application_name', 'prepared_statements', 'id'],
        rows: view.clients().map((c) => [
          // PgBouncer's cl_active: logged in and not waiting, linked to a server or idle.
          'C', c.user, c.database, c.state === 'idle' ? 'active' : c.state, c.addr, c.port, iso(c.connectTime), iso(c.requestTime),
          // remote_pid is the client's own process id, which only a Unix socket could tell.
          Math.floor(c.waitMs / 1000), (c.waitMs % 1000) * 1000, c.serverId || null, 0, c.tls ? 'TLS' : '',
          c.applicationName, c.preparedStatements, c.id,
        ]),
      };
    case 'servers':
      return {
        columns: ['type', 'user', 'database', 'state', 'addr', 'port', 'connect_time', 'request_time', 'link', 'remote_pid', 'tls', 'prepared_statements', 'id'],
        rows: view.servers().map((s) => [
          // A connection logging in is `new` in PgBouncer's SHOW SERVERS.
          'S', s.user, s.database, s.state === 'login' ? 'new' : s.state, s.addr, s.port, iso(s.connectTime), iso(s.requestTime),
          s.clientId || null, s.pid, s.tls ? 'TLS' : '', s.preparedStatements, s.id,
        ]),
      };
    case 'stats': {
      const totals = [...totalsByDatabase(view.pools())];
      return {
        columns: ['database', ...TOTAL_COLUMNS, ...AVG_COLUMNS],
        rows: totals.map(([db, t]) => [db, ...statsRow(t), ...statsRow(view.statsAverages(db))]),
      };
    }
    case 'stats_totals':
      return {
        columns: ['database', ...PER_FIELD_COLUMNS],
        rows: [...totalsByDatabase(view.pools())].map(([db, t]) => [db, ...statsRow(t)]),
      };
    case 'stats_averages':
      return {
        columns: ['database', ...PER_FIELD_COLUMNS],
        rows: [...totalsByDatabase(view.pools()).keys()].map((db) => [db, ...statsRow(view.statsAverages(db))]),
      };
    case 'databases': {
      const pools = view.pools();
      return {
        columns: ['name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool', 'server_lifetime', 'pool_mode', 'max_connections', 'current_connections', 'paused', 'disabled'],
        rows: view.databasesServed().map((d) => {
          const mine = pools.filter((p) => p.database === d.name);
          const current = mine.reduce((n, p) => n + p.serversActive + p.serversTested + p.serversUsed + p.serversIdle + p.serversLogin, 0);
          return [
            d.name, d.primary.host, d.primary.port, d.primary.dbname, d.primary.user ?? null, d.pool.size, d.pool.minSize,
            d.pool.reserveSize, Math.round(d.pool.serverLifetimeMs / 1000), d.pool.mode, d.pool.maxDbConnections,
            current, view.isPaused(d.name) ? 1 : 0, 0,
          ];
        }),
      };
    }
    case 'config': {
      const defaults = new Map(flatten(defaultConfig()));
      return {
        columns: ['key', 'value', 'default', 'changeable'],
        rows: flatten(view.config()).map(([k, v]) => [fileKey(k), v, defaults.get(k) ?? '', isRestartOnly(k) || k === 'source' ? 'no' : 'yes']),
      };
    }
    case 'version':
      return { columns: ['version'], rows: [[`pgway ${view.version}`]] };
    default:
      return undefined;
  }
}

const statsRow = (t: StatsTotals): number[] =>
  [t.assignments, t.transactions, t.requests, t.bytesReceived, t.bytesSent, t.transactionTimeUs, t.requestTimeUs, t.waitTimeUs].map(Math.round);

/** A config key as the YAML file writes it (pool.query_wait_timeout_ms), as PgBouncer shows its ini names. */
const fileKey = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The password of a URL (`redis://:secret@host`), masked. */
const maskUrlPassword = (v: string): string => v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:****@');

/** Config as key/value lines for SHOW CONFIG, secrets left out. */
function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value === null || typeof value !== 'object') return [[prefix, typeof value === 'string' ? maskUrlPassword(value) : String(value)]];
  if (Array.isArray(value)) return value.flatMap((v, i) => flatten(v, `${prefix}[${i}]`));
  return Object.entries(value).flatMap(([k, v]) =>
    /password|secret|key$/i.test(k) ? [] : flatten(v, prefix ? `${prefix}.${k}` : k),
  );
}

/**
 * A command naming a database it cannot act on is refused as PgBouncer refuses it (its admin
 * errors are all SQLSTATE 08P01): a typo must not look like a PAUSE that worked.
 */
function refuseDatabase(view: AdminView, verb: string, name: string | undefined): Buffer[] | undefined {
  if (name === undefined) return undefined;
  if (view.isAdminDatabase(name)) return adminError(`cannot ${verb} admin db: ${name}`, '08P01');
  return view.database(name) ? undefined : adminError(`no such database: ${name}`, '08P01');
}

/** How many words each command takes after its verb, at most. */
const MAX_ARGS: Record<string, number> = { show: 1, reload: 0, pause: 1, resume: 1, reconnect: 1, kill: 1, shutdown: 0 };

/** A command's words; a double-quoted one is an identifier, as PgBouncer reads `PAUSE "my-db"`. */
function commandWords(sql: string): string[] {
  const words = sql.trim().replace(/;\s*$/, '').match(/"(?:[^"]|"")*"|[^\s"]+/g) ?? [];
  return words.map((w) => (w.length > 1 && w.startsWith('"') && w.endsWith('"') ? w.slice(1, -1).replaceAll('""', '"') : w));
}

/**
 * Runs one admin statement; resolves with the response frames (without ReadyForQuery). `signal`: a
 * CancelRequest for the console arrived while it runs (only a PAUSE waiting for its drain heeds it).
 */
export async function runAdminCommand(sql: string, view: AdminView, signal?: AbortSignal): Promise<Buffer[]> {
  if ((sql.match(/"/g)?.length ?? 0) % 2 === 1) return adminError('syntax error: unterminated quoted name');
  const words = commandWords(sql);
  const verb = words[0]?.toLowerCase() ?? '';
  const arg = words[1];
  const maxArgs = MAX_ARGS[verb];
  // A word too many must not be read as a command that worked: `SHUTDOWN now` shuts nothing down.
  if (maxArgs !== undefined && words.length - 1 > maxArgs) {
    return adminError(`syntax error: ${verb.toUpperCase()} takes ${maxArgs === 0 ? 'no argument' : 'one argument'}, got "${words.slice(1).join(' ')}"`);
  }
  switch (verb) {
    case '':
      return [new MessageWriter().frame(Backend.EmptyQueryResponse)];
    case 'show': {
      const table = show(view, arg?.toLowerCase() ?? '');
      return table ? tableFrames(table) : adminError(`unknown SHOW command: ${arg ?? ''} (try POOLS, CLIENTS, SERVERS, STATS, STATS_TOTALS, STATS_AVERAGES, DATABASES, CONFIG, VERSION)`);
    }
    case 'reload':
      try {
        await view.reload();
        return [commandComplete('RELOAD')];
      } catch (err) {
        return adminError(`config not reloaded: ${(err as Error).message}`, 'F0000');
      }
    case 'pause': {
      const refused = refuseDatabase(view, verb, arg);
      if (refused) return refused;
      // As PgBouncer (admin_cmd_pause): under a global PAUSE any PAUSE is refused; PAUSE db of a database
      // already paused (by PAUSE db or KILL db) is taken, and waits for its drain like the first.
      if (view.pausedBy()) return adminError('already suspended/paused', '08P01');
      const end = await view.pause(arg, signal);
      if (end === 'paused') return [commandComplete('PAUSE')];
      // A CancelRequest for the console: as PostgreSQL ends a cancelled statement that waits.
      if (end === 'canceled') return [new QueryCanceledError().toFrame()];
      if (end === 'removed') return adminError(`PAUSE ended: database "${arg}" was removed from the config`, '08P01');
      return adminError('PAUSE canceled: RESUME ran before every server connection was given back', '57014');
    }
    case 'resume': {
      const refused = refuseDatabase(view, verb, arg);
      if (refused) return refused;
      // RESUME lifts every pause; RESUME db only PAUSE db (or KILL db), as in PgBouncer.
      if (arg ? !view.pausedBy(arg) : !view.anyPaused) return adminError(arg ? `database ${arg} is not paused` : 'pooler is not paused', '08P01');
      view.resume(arg);
      return [commandComplete('RESUME')];
    }
    case 'reconnect': {
      const refused = refuseDatabase(view, verb, arg);
      if (refused) return refused;
      view.reconnect(arg);
      return [commandComplete('RECONNECT')];
    }
    case 'kill': {
      if (!arg) return adminError('KILL needs a database name');
      const refused = refuseDatabase(view, verb, arg);
      if (refused) return refused;
      view.kill(arg);
      return [commandComplete('KILL')];
    }
    case 'shutdown':
      // After this reply is written: the console hears its SHUTDOWN was taken, then closes with the rest.
      setImmediate(() => view.shutdown());
      return [commandComplete('SHUTDOWN')];
    default:
      return adminError(`unknown admin command: ${words[0]} (try SHOW POOLS)`);
  }
}
