// A client that changes settings through the pg_settings view keeps its connection: they never reach another client.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway; // transaction mode, one server connection: the next client gets the same one

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 10000 }' });
});

afterAll(async () => {
  await gw?.stop();
});

describe('statement_timeout set through the pg_settings view', () => {
  it("does not carry over to the next client's lease", { timeout: 30_000 }, async () => {
    const a = new pg.Client({ connectionString: gw.url() });
    await a.connect();
    // Same effect as SET statement_timeout = 50 (pg_settings' rule calls set_config(name, value, false)).
    await a.query("UPDATE pg_settings SET setting = '50' WHERE name = 'statement_timeout'");
    expect((await a.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]!.statement_timeout).toBe('50ms');
    await a.end();
    await sleep(100);

    const b = new pg.Client({ connectionString: gw.url() });
    await b.connect();
    try {
      expect((await b.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]!.statement_timeout).toBe('0');
      // What the user sees: a statement that must run 200 ms is cancelled by another client's setting.
      await expect(b.query('SELECT pg_sleep(0.2)')).resolves.toBeDefined();
    } finally {
      await b.end();
    }
  });
});
