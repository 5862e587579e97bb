// Found by review round 32 C, and fixed: pgway_client_connections{state} drops a state's series once no client is in that
// state, instead of reporting 0 (pgway_server_connections{pool,state} reports every state, 0 included).
// After clients waited for the pool and were served, a scrape has no
// pgway_client_connections{state="waiting"} line at all: a dashboard shows "no data" rather than 0,
// and Prometheus marks the series stale, so `pgway_client_connections{state="waiting"} == 0` or
// `sum without(state)` over the states no longer holds what it says.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { waitFor } from './helpers/pg-helpers.js';

const DB = 'review_client_gauge_zero';
const { files, connect } = fileGatewayTests(DB);

const series = (text: string, name: string): Record<string, number> =>
  Object.fromEntries(text.split('\n').filter((l) => l.startsWith(`${name}{`)).map((l) => {
    const state = /state="([^"]+)"/.exec(l)![1]!;
    return [state, Number(l.slice(l.lastIndexOf(' ') + 1))];
  }));

describe('pgway_client_connections after clients stop waiting', () => {
  it('reports 0 for the states no client is in, as pgway_server_connections does', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2 }', http: true });
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    const a = await connect(gw.url());
    const b = await connect(gw.url());
    const c = await connect(gw.url());
    await a.query('BEGIN');
    await b.query('BEGIN');
    const waited = c.query('SELECT 1');
    await waitFor('c waits', async () => series(await scrape(), 'pgway_client_connections').waiting === 1, 3000);
    await a.query('COMMIT');
    await waited;
    await b.query('COMMIT');
    const text = await scrape();
    expect({
      clients: series(text, 'pgway_client_connections'),
      servers: series(text, 'pgway_server_connections'),
    }).toEqual({
      clients: { idle: 3, active: 0, waiting: 0, login: 0 },
      servers: { active: 0, tested: 0, used: 0, idle: 2, login: 0 },
    });
  });
});
