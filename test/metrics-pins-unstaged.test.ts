// Found by review round 33 C, and fixed (pins are now reported from the session's pins once each
// transaction is over, not from the statements that made them):
// README: pgway_session_pins_total{pool,reason} counted each pin "when the pinning statement is written",
// and each pin logs 'client pinned to its server connection' (debug). A client pinned by a search_path
// that lists pg_temp first (SET, or at startup), or by standard_conforming_strings=off at startup, is
// pinned (it keeps its server connection between transactions) but counted and logged nowhere, so an
// operator looking for what holds the pool's connections sees no pin at all.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { sleep } from './helpers/pg-helpers.js';

const DB = 'r33c_pin_metrics';
const { files, connect } = fileGatewayTests(DB);
const scrape = async (gw: FileGateway): Promise<string> => (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};
const portOf = (c: pg.Client): number => (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
async function pinned(gw: FileGateway, c: pg.Client): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if ((gw.gateway.clients().find((x) => x.port === portOf(c))?.serverId ?? 0) === 0) return false;
    await sleep(20);
  }
  return true;
}
const withOptions = (url: string, options: string): string => `${url}?options=${encodeURIComponent(options)}`;

describe('pins counted in pgway_session_pins_total and logged', () => {
  const cases: [string, (gw: FileGateway) => Promise<pg.Client>][] = [
    ['SET search_path = pg_temp, public', async (gw) => {
      const c = await connect(gw.url());
      await c.query('SET search_path = pg_temp, public');
      return c;
    }],
    ['search_path=pg_temp,public at startup', async (gw) => {
      const c = await connect(withOptions(gw.url(), '-c search_path=pg_temp,public'));
      await c.query('SELECT 1');
      return c;
    }],
    ['standard_conforming_strings=off at startup', async (gw) => {
      const c = await connect(withOptions(gw.url(), '-c standard_conforming_strings=off'));
      await c.query('SELECT 1');
      return c;
    }],
  ];
  for (const [name, pin] of cases) {
    it(`${name}: the client is pinned, and the pin is counted and logged`, async () => {
      const gw = await files.start({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }', http: true, logLevel: 'debug' });
      const total = (text: string): number => text.split('\n').filter((l) => l.startsWith(`pgway_session_pins_total{pool="${DB}/app"`))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      const before = total(await scrape(gw));
      const c = await pin(gw);
      const isPinned = await pinned(gw, c);
      const counted = total(await scrape(gw)) - before;
      const logged = gw.logs.filter((l) => l.includes('client pinned to its server connection')).length;
      expect({ isPinned, counted, logged }).toEqual({ isPinned: true, counted: 1, logged: 1 });
    });
  }
  it('control: LISTEN is counted and logged', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }', http: true, logLevel: 'debug' });
    const c = await connect(gw.url());
    await c.query('LISTEN rpm_ch');
    const m = await scrape(gw);
    expect({
      isPinned: await pinned(gw, c),
      counted: sample(m, `pgway_session_pins_total{pool="${DB}/app",reason="listen"}`),
      logged: gw.logs.filter((l) => l.includes('client pinned to its server connection')).length,
    }).toEqual({ isPinned: true, counted: 1, logged: 1 });
  });
});
