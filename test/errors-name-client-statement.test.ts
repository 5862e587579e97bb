// An error the server raises about a prepared statement that pgway shares between clients under a
// server-side name (pgw_...) names it as the client did, as on a direct connection: a Bind with the
// wrong number of parameters is the common case (an application bug whose log line must say which
// statement).
// Found by review round 34 A, and fixed (the error names the statement of the client's last Bind):
// with two names for one text it named the first, and where the client's batch closed (or closed and
// parsed again) the name behind the failing Bind, pgw_... (the unnamed statement: a control).
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';
import { errorFields } from './helpers/raw-client.js';
import { B, C, E, P, S, rawTargets, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const testClients = clientsOfEachTest();
const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const { raw } = rawTargets();

async function bindError(c: pg.Client, name: string): Promise<string> {
  await c.query({ name, text: 'SELECT $1::int + $2::int AS sum', values: [1, 2] });
  try {
    await c.query({ name, text: 'SELECT $1::int + $2::int AS sum', values: [1] });
    return 'no error';
  } catch (err) {
    const e = err as { code?: string; message: string };
    return `${e.code} ${e.message}`;
  }
}

describe('errors about a shared prepared statement', () => {
  it('name the statement as the client named it, each client its own name', async () => {
    const direct = await bindError(await testClients.connect(directUrl()), 'add_two');
    expect(direct).toBe('08P01 bind message supplies 1 parameters, but prepared statement "add_two" requires 2');
    const a = await testClients.connect(gw.url());
    const b = await testClients.connect(gw.url());
    expect(await bindError(a, 'add_two')).toBe(direct);
    // The same text under another name shares the server-side statement.
    expect(await bindError(b, 'sum_of_two')).toBe('08P01 bind message supplies 1 parameters, but prepared statement "sum_of_two" requires 2');
    // Both go on, and the statement still runs.
    const [ra, rb] = await Promise.all([
      a.query({ name: 'add_two', text: 'SELECT $1::int + $2::int AS sum', values: [2, 3] }),
      b.query({ name: 'sum_of_two', text: 'SELECT $1::int + $2::int AS sum', values: [4, 5] }),
    ]);
    expect([ra.rows[0].sum, rb.rows[0].sum]).toEqual([5, 9]);
  });

  it('inside a transaction block, which the error fails as it would directly', async () => {
    const run = async (url: string): Promise<string[]> => {
      const c = await testClients.connect(url);
      await c.query('BEGIN');
      const out = [await bindError(c, 'in_block')];
      out.push(await c.query('SELECT 1').then(() => 'ran', (e: { code?: string }) => `${e.code}`));
      await c.query('ROLLBACK');
      out.push(String((await c.query({ name: 'in_block', text: 'SELECT $1::int + $2::int AS sum', values: [1, 1] })).rows[0].sum));
      return out;
    };
    const want = await run(directUrl());
    expect(want[1]).toBe('25P02');
    expect(await run(gw.url())).toEqual(want);
  });
});

const TEXT = 'SELECT $1::int + $2::int AS sum';

async function twoNames(c: pg.Client): Promise<string> {
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
    const direct = await twoNames(await testClients.connect(directUrl()));
    expect(direct).toBe('08P01 bind message supplies 1 parameters, but prepared statement "second_name" requires 2');
    expect(await twoNames(await testClients.connect(gw.url()))).toBe(direct);
  });
});

async function unnamedThrice(c: pg.Client): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 3; i++) {
    try {
      await c.query('SELECT $1::int + $2::int AS s', [1]);
      out.push('no error');
    } catch (err) {
      const e = err as { code?: string; message: string };
      out.push(`${e.code} ${e.message}`);
    }
  }
  return out;
}

async function rawRun(t: Target): Promise<string[]> {
  const c = await raw(t);
  const out: string[] = [];
  for (const bytes of [
    Buffer.concat([P('', 'SELECT $1::int + $2::int AS s'), B('', ['1']), E(), S]),
    Buffer.concat([P('', 'SELECT $1::int + $2::int AS s'), S]),
    Buffer.concat([B('', ['1']), E(), S]),
    Buffer.concat([P('named_x', 'SELECT $1::int + $2::int AS s'), S]),
    Buffer.concat([B('named_x', ['1']), E(), S]),
    Buffer.concat([B('named_x', []), E(), S]),
    Buffer.concat([B('named_x', ['1']), E(), C('S', 'named_x'), S]),
    Buffer.concat([B('named_x', ['1']), E(), C('S', 'named_x'), P('named_x', 'SELECT 1'), S]),
    Buffer.concat([B('named_x', ['1', '2']), E(), S]),
  ]) {
    c.write(bytes);
    const { before } = await c.readUntil('Z', 4000);
    const e = before.find((m) => m.type === 'E');
    out.push(e ? errorFields(e.body).get('M')! : 'ok');
  }
  return out;
}

describe('Bind errors', () => {
  it('unnamed statement through node-pg', async () => {
    const direct = await unnamedThrice(await testClients.connect(directUrl()));
    expect(await unnamedThrice(await testClients.connect(gw.url()))).toEqual(direct);
  });
  it('raw', async () => {
    const direct = await rawRun('direct');
    expect(await rawRun(gw)).toEqual(direct);
  });
});
