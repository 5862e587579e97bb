// pgway_session_pins_total counts each client pinned to its server connection, by reason, once the
// pin holds: state that a rolled-back transaction takes with it (LISTEN, a temporary table) pins
// nobody, while a session advisory lock, which outlives the rollback, does. There is no
// direct-PostgreSQL half: PostgreSQL has no such endpoint.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { errorOf } from './helpers/pg-helpers.js';

const DB = 'metrics_pins';
const { files, connect } = fileGatewayTests(DB);

async function pins(gw: FileGateway, reason: string): Promise<number> {
  const series = `pgway_session_pins_total{pool="${DB}/app",reason="${reason}"}`;
  const line = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('pgway_session_pins_total', () => {
  it('counts pins that hold, not those a rollback or an error took back', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 3 }', http: true });
    const before = { listen: await pins(gw, 'listen'), temp: await pins(gw, 'temp-table'), lock: await pins(gw, 'advisory-lock') };
    const count = async (): Promise<typeof before> => ({
      listen: (await pins(gw, 'listen')) - before.listen,
      temp: (await pins(gw, 'temp-table')) - before.temp,
      lock: (await pins(gw, 'advisory-lock')) - before.lock,
    });

    const a = await connect(gw.url());
    await a.query('BEGIN');
    await a.query('LISTEN mp_rolled_back');
    await a.query('CREATE TEMP TABLE mp_rolled_back (x int)');
    expect(await count()).toEqual({ listen: 0, temp: 0, lock: 0 }); // the transaction is open
    await a.query('ROLLBACK');
    await a.query('LISTEN mp_failed; SELECT 1/0').catch(() => undefined);
    expect(await count()).toEqual({ listen: 0, temp: 0, lock: 0 });

    // A session advisory lock survives the rollback of the transaction that took it.
    const b = await connect(gw.url());
    await b.query('BEGIN');
    await b.query('SELECT pg_advisory_lock(4242)');
    await b.query('ROLLBACK');
    const c = await connect(gw.url());
    await c.query('LISTEN mp_kept');
    await c.query('CREATE TEMP TABLE mp_kept (x int)');
    await c.query('BEGIN');
    await c.query('LISTEN mp_kept_again'); // already pinned for LISTEN: not a new pin
    await c.query('COMMIT');
    expect(await count()).toEqual({ listen: 1, temp: 1, lock: 1 });
    // a, never pinned, still runs on the third connection.
    expect(await errorOf(a.query('SELECT 1/0'))).toMatchObject({ code: '22012' });
  });
});
