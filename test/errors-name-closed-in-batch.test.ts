// Found by review round 34 A, and fixed (the error names the statement of the client's last Bind):
// Round 34 A: a Bind error of a shared statement names it as the client did, also when the client's
// batch closes (or closes and parses again) the name behind the failing Bind: the Close is skipped after
// the error, as PostgreSQL skips it, but the error went out naming pgw_... (the unnamed statement: control).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';
import type pg from 'pg';
import { B, C, E, P, S, rawTargets, type Target } from './helpers/wire-script.js';
import { errorFields } from './helpers/raw-client.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const testClients = clientsOfEachTest();
const { raw } = rawTargets();
const directUrl = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

async function run(c: pg.Client): Promise<string[]> {
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
    const direct = await run(await testClients.connect(directUrl()));
    expect(await run(await testClients.connect(gw.url()))).toEqual(direct);
  });
  it('raw', async () => {
    const direct = await rawRun('direct');
    expect(await rawRun(gw)).toEqual(direct);
  });
});
