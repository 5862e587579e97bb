// A RELOAD that changes pool.max_prepared_statements leaves the named statements of the clients
// already logged in working: a client keeps the way its statements are handled (renamed and tracked,
// or passed through) from its login, so a statement prepared before the reload runs after it, and so
// does one prepared after it, also when the new bound is 0 (a tracking client then keeps one copy
// per connection). Clients that log in after the reload follow the new setting. The direct-PostgreSQL
// case shows what a client sees without pgway.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { lab } from './harness/lab.js';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';

const DB = 'prepared_statements_reload';
const { files, connect } = fileGatewayTests(DB);
const pool = (max: number): string => `{ mode: transaction, size: 1, query_wait_timeout_ms: 3000, max_prepared_statements: ${max} }`;

/** A named statement's rows, or the error's message. */
async function run(c: pg.Client, name: string, n: number): Promise<unknown> {
  try {
    return (await c.query({ name, text: `SELECT $1::int AS ${name}`, values: [n] })).rows;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Prepares s1, then `between`, then runs s1 again, prepares and runs s2, and runs s1 once more. */
async function steps(c: pg.Client, between: () => Promise<void>): Promise<unknown[]> {
  const before = await run(c, 's1', 1);
  await between();
  return [before, await run(c, 's1', 2), await run(c, 's2', 3), await run(c, 's1', 4), await run(c, 's2', 5)];
}

const expected = [[{ s1: 1 }], [{ s1: 2 }], [{ s2: 3 }], [{ s1: 4 }], [{ s2: 5 }]];

async function reloadTo(gw: FileGateway, max: number): Promise<void> {
  gw.write({ pool: pool(max) });
  await gw.gateway.reload();
}

/** Whether the server holds a statement under the client's own name (not tracked) after it prepares `s9`. */
async function passedThrough(c: pg.Client): Promise<boolean> {
  await c.query({ name: 's9', text: 'SELECT 1' });
  const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 's9'");
  return r.rows[0]!.n === 1;
}

describe('RELOAD of max_prepared_statements with named statements prepared', () => {
  it('direct PostgreSQL: both named statements run again', async () => {
    const l = lab();
    const c = await connect(`postgres://app:app-secret@${l.primary.host}:${l.primary.port}/${DB}`);
    expect(await steps(c, async () => undefined)).toEqual(expected);
  });

  it('200 -> 0: the statements of a client logged in before run, those prepared before the reload and after it', async () => {
    const gw = await files.start({ pool: pool(200) });
    const c = await connect(gw.url());
    expect(await steps(c, () => reloadTo(gw, 0))).toEqual(expected);
    expect(await passedThrough(await connect(gw.url())), 'a client logged in after the reload').toBe(true);
  });

  it('0 -> 200: the statements of a client logged in before run, those prepared before the reload and after it', async () => {
    const gw = await files.start({ pool: pool(0) });
    const c = await connect(gw.url());
    expect(await steps(c, () => reloadTo(gw, 200))).toEqual(expected);
    expect(await passedThrough(await connect(gw.url())), 'a client logged in after the reload').toBe(false);
  });
});
