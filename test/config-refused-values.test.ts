// Values a config must not hold are refused where they are read: at start (the file does not load,
// with the file, line and field named) and on RELOAD (the reason is returned and logged, and the
// running config stays). Durations: every `_ms` setting is at most 2147483647 ms, because Node's timers
// turn a longer delay into 1 ms and "practically never" would fire at once; PostgreSQL refuses its own
// timeouts above the same bound, which the direct-PostgreSQL case shows. Database names: `pgway` and
// `pgbouncer` log in to the admin console, so a database under either could never be reached.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/load.js';
import { lab } from './harness/lab.js';
import { fileGatewayTests, type FileGatewayOptions } from './helpers/file-gateway.js';
import { errorOf, sqlstate } from './helpers/pg-helpers.js';

const DB = 'config_refused_values';
const { files, connect } = fileGatewayTests(DB);
const pool = (extra = ''): string => `{ mode: transaction, size: 1${extra} }`;

/** Starting from `bad` fails with a ConfigError naming `field`; a RELOAD to it from a good config is refused and changes nothing. */
async function refused(bad: FileGatewayOptions, field: string, reason: RegExp): Promise<void> {
  const atStart = await errorOf(files.start(bad));
  expect(atStart, `${field} at start`).toBeInstanceOf(ConfigError);
  expect((atStart as ConfigError).format(), `${field} at start`).toMatch(new RegExp(`gateway-\\d+\\.yaml:\\d+:\\d+ ${field.replace(/\./g, '\\.')}: ${reason.source}`));

  const gw = await files.start({ pool: pool() });
  const before = gw.gateway.config();
  const app = await connect(gw.url());
  gw.write(bad);
  const onReload = await errorOf(gw.gateway.reload());
  expect((onReload as Error | undefined)?.message, `${field} on RELOAD`).toMatch(new RegExp(`${field.replace(/\./g, '\\.')}: ${reason.source}`));
  expect(gw.gateway.config(), `${field}: the running config stays`).toBe(before);
  expect((await app.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
}

describe('durations above 2147483647 ms', () => {
  const tooLong = /expected a number of milliseconds between \d+ and 2147483647 \(about 24\.8 days\), got 3000000000/;

  it('direct PostgreSQL: a timeout above INT_MAX ms is refused (22023)', async () => {
    const l = lab();
    const c = await connect(`postgres://app:app-secret@${l.primary.host}:${l.primary.port}/${DB}`);
    expect(sqlstate(await errorOf(c.query('SET statement_timeout = 3000000000')))).toBe('22023');
    expect(sqlstate(await errorOf(c.query('SET idle_in_transaction_session_timeout = 3000000000')))).toBe('22023');
  });

  it.each(['query_wait_timeout_ms', 'idle_transaction_timeout_ms', 'server_connect_timeout_ms', 'reserve_timeout_ms'])(
    'pool.%s: 3000000000 is refused at start and on RELOAD', async (key) => {
      await refused({ pool: pool(`, ${key}: 3000000000`) }, `pool.${key}`, tooLong);
    });

  it('limits.startup_timeout_ms: 3000000000 is refused at start and on RELOAD', async () => {
    await refused({ pool: pool(), extra: 'limits: { startup_timeout_ms: 3000000000 }' }, 'limits.startup_timeout_ms', tooLong);
  });

  it('stats_period_ms: 3000000000 is refused at start and on RELOAD', async () => {
    await refused({ pool: pool(), extra: 'stats_period_ms: 3000000000' }, 'stats_period_ms', tooLong);
  });
});

describe('database names the admin console takes', () => {
  it.each(['pgway', 'pgbouncer'])('a database named "%s" is refused at start and on RELOAD', async (name) => {
    await refused({ pool: pool(), databases: { [DB]: DB, [name]: DB } }, `databases.${name}`, /"\w+" is reserved for the admin console \(reserved: pgway, pgbouncer\)/);
  });
});
