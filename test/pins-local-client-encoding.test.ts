// Found by review round 34 A, and fixed (SET LOCAL client_encoding of a client-only encoding pins):
// Round 34 A: a client-only client_encoding "set (also SET LOCAL)" pins the client (commit a9ad0b0,
// README: "set or at startup"). Under SJIS, E'ソ' (0x83 0x5C) ends where pgway, reading UTF-8, sees an
// escaped quote: the CREATE TEMP TABLE behind it goes unseen, and the next client finds the table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { typedMessage } from './helpers/raw-client.js';
import { answers, Q, rawTargets, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 2000 }' });
});
afterAll(async () => {
  await gw?.stop();
});
const { raw } = rawTargets();

const hidden = (k: string): Buffer => typedMessage('Q', Buffer.concat([
  Buffer.from("SELECT E'", 'latin1'), Buffer.from([0x83, 0x5c]),
  Buffer.from(`' AS a; CREATE TEMP TABLE rls_t${k} (x int); SELECT ' --' AS b`, 'latin1'), Buffer.from([0]),
]));
const TEMP = 'SELECT count(*) AS n FROM pg_class WHERE relnamespace = pg_my_temp_schema()';

async function run(t: Target, setLocal: string, k: string): Promise<string[][]> {
  const a = await raw(t);
  const b = await raw(t);
  const out: string[][] = [];
  a.write(Q('BEGIN'));
  out.push(await answers(a, 1, 3000));
  a.write(Q(setLocal));
  out.push(await answers(a, 1, 3000));
  a.write(hidden(k));
  out.push(await answers(a, 1, 3000));
  a.write(Q('COMMIT'));
  out.push(await answers(a, 1, 3000));
  // b: the other client, on a pool of one connection (waits while a is pinned: 08P01/57P05 timeout)
  b.write(Q(TEMP));
  out.push(await answers(b, 1, 3000).catch((e: Error) => [`timeout ${e.message}`]));
  return out;
}

describe('a client-only client_encoding set for the transaction only', () => {
  for (const [k, setLocal] of [['1', "SET LOCAL client_encoding = 'SJIS'"], ['2', "SELECT set_config('client_encoding', 'SJIS', true)"], ['3', "SET client_encoding = 'SJIS' /* control: session-level, pins */"], ['4', "SET NAMES 'WIN932' /* control */"]]) {
    it(`${setLocal}: the temp table made under it is not another client's`, async () => {
      const direct = await run('direct', setLocal!, k!);
      expect(direct[2]).toEqual(['T', 'D:\ufffd\\', 'C:SELECT 1', 'C:CREATE TABLE', 'T', 'D: --', 'C:SELECT 1', 'Z:T']);
      expect(direct[4]).toEqual(['T', 'D:0', 'C:SELECT 1', 'Z:I']);
      const through = await run(gw, setLocal!, k!);
      expect(through.slice(0, 4)).toEqual(direct.slice(0, 4));
      // The other client must not find a's temp table (it waits for the pool while a is pinned).
      expect(through[4]!.filter((s) => s.startsWith('D:') && s !== 'D:0')).toEqual([]);
    });
  }
});
