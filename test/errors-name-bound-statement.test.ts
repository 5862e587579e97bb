// Found by review round 34 A, and fixed (the error names the statement of the client's last Bind):
// Round 34 A: errors about a Bind of a shared statement name it as the client did.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const testClients = clientsOfEachTest();
const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const TEXT = 'SELECT $1::int + $2::int AS sum';

async function run(c: pg.Client): Promise<string> {
  await c.query({ name: 'first_name', text: TEXT, values: [1, 2] });
  await c.query({ name: 'second_name', text: TEXT, values: [1, 2] });
  try {
    await c.query({ name: 'second_name', text: TEXT, values: [1] });
    return 'no error';
  } catch (err) {
    const e = err as { code?: string; message: string };
    return `${e.code} ${e.message}`;
  }
}

describe('one client, two names for one text', () => {
  it('the error names the statement the Bind named', async () => {
    const direct = await run(await testClients.connect(directUrl()));
    expect(direct).toBe('08P01 bind message supplies 1 parameters, but prepared statement "second_name" requires 2');
    expect(await run(await testClients.connect(gw.url()))).toBe(direct);
  });
});
