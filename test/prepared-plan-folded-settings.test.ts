// Found by review round 30 C, and fixed.
// A shared named statement's cached plan carries constants PostgreSQL folded while planning it,
// under the settings of whichever client ran it first on that connection: output functions such as
// float8out (extra_float_digits) and byteaout (bytea_output) are immutable, so `(0.1 + 0.2)::text`
// is computed once, at plan time. On a direct connection each client's session plans its own copy
// under its own settings; through pgway a client must not get a value formatted under another
// client's settings (here: a client that set extra_float_digits = 0 gets the other client's format,
// while current_setting() in the same row says 0).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';

let gw: TestGateway;
const DIRECT = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
beforeAll(async () => { gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 8000 }' }); });
afterAll(async () => { await gw?.stop(); });

async function run(url: string, setA: string, text: string): Promise<unknown[]> {
  const a = new pg.Client(url);
  const b = new pg.Client(url);
  await a.connect();
  await b.connect();
  try {
    await a.query(setA);
    const out: unknown[] = [];
    out.push((await a.query({ name: 'f', text })).rows);
    out.push((await b.query({ name: 'f', text })).rows);
    out.push((await a.query({ name: 'f', text })).rows);
    return out;
  } finally {
    await a.end();
    await b.end();
  }
}

describe('a constant folded into a shared plan under another client\'s settings', () => {
  it('extra_float_digits: each client gets its own format', { timeout: 20_000 }, async () => {
    const text = "SELECT (0.1::float8 + 0.2::float8)::text AS v, current_setting('extra_float_digits') AS efd";
    const d = await run(DIRECT(), 'SET extra_float_digits = 0', text);
    expect(d).toEqual([[{ v: '0.3', efd: '0' }], [{ v: '0.30000000000000004', efd: '1' }], [{ v: '0.3', efd: '0' }]]);
    expect(await run(gw.url(), 'SET extra_float_digits = 0', text)).toEqual(d);
  });

  it('bytea_output: each client gets its own format', { timeout: 20_000 }, async () => {
    const text = "SELECT '\\x41ff'::bytea::text AS v, current_setting('bytea_output') AS bo";
    const d = await run(DIRECT(), "SET bytea_output = 'escape'", text);
    expect(d).toEqual([[{ v: 'A\\377', bo: 'escape' }], [{ v: '\\x41ff', bo: 'hex' }], [{ v: 'A\\377', bo: 'escape' }]]);
    expect(await run(gw.url(), "SET bytea_output = 'escape'", text)).toEqual(d);
  });

  it('a client that sets extra_float_digits after another client ran the statement gets its own format', { timeout: 20_000 }, async () => {
    const text = "SELECT (0.1::float8 + 0.2::float8)::text AS v, current_setting('extra_float_digits') AS efd";
    const scenario = async (url: string): Promise<unknown[]> => {
      const a = new pg.Client(url);
      const b = new pg.Client(url);
      await a.connect();
      await b.connect();
      try {
        const out: unknown[] = [];
        out.push((await b.query({ name: 'g', text })).rows);
        await a.query('SET extra_float_digits = 0');
        out.push((await a.query({ name: 'g', text })).rows);
        out.push((await b.query({ name: 'g', text })).rows);
        out.push((await a.query({ name: 'g', text })).rows);
        return out;
      } finally {
        await a.end();
        await b.end();
      }
    };
    const d = await scenario(DIRECT());
    expect(d).toEqual([[{ v: '0.30000000000000004', efd: '1' }], [{ v: '0.3', efd: '0' }], [{ v: '0.30000000000000004', efd: '1' }], [{ v: '0.3', efd: '0' }]]);
    const g = await scenario(gw.url());
    if (process.env.SHOW) console.log(JSON.stringify(g));
    expect(g).toEqual(d);
  });
});
