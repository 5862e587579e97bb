// What a client hears when it ends its session, compared with PostgreSQL.
// 1. Its end (Terminate, or a frame of unknown type) in the same write as the start of a COPY FROM
//    STDIN (and maybe some of its data): the COPY begins, and the end is read inside it, which
//    PostgreSQL refuses: ERROR 08P01 "unexpected message type ... during COPY from stdin", then
//    FATAL 08P01, and the connection closes.
// 2. Bytes after a Terminate are never read: a bad frame there gets no error.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { answersWithin, typedMessage } from './helpers/raw-client.js';
import { B, cat, copyData, E, P, Q, S, X, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const BAD = typedMessage('z', Buffer.from('abc'));

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS terminate_parity (v text)');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

async function both(bytes: Buffer): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
    const c = await rawAfterLogin(url(), (end) => ends.push(end));
    c.write(bytes);
    out[target] = await answersWithin(c, 2000);
  }
  return out;
}

for (const [ender, name] of [[X, 'Terminate'], [BAD, 'a frame of unknown type']] as const) {
  describe(`${name} in the same write as the start of a COPY FROM STDIN`, () => {
    it(`simple Query COPY, CopyData, ${name}: ERROR 08P01 then FATAL 08P01`, async () => {
      const { direct: d, pgway } = await both(cat(Q('COPY terminate_parity FROM STDIN'), copyData('x\n'), ender));
      expect(d).toEqual(['G', 'ERROR 08P01', 'FATAL 08P01']);
      expect(pgway).toEqual(d);
    });

    it(`Parse/Bind/Execute/Sync of COPY, ${name}: ERROR 08P01 then FATAL 08P01`, async () => {
      const { direct: d, pgway } = await both(cat(P('', 'COPY terminate_parity FROM STDIN'), B(''), E(''), S, ender));
      expect(d).toEqual(['1', '2', 'G', 'ERROR 08P01', 'FATAL 08P01']);
      expect(pgway).toEqual(d);
    });
  });
}

describe('Terminate while a COPY FROM STDIN begun by Parse/Bind/Execute/Sync is under way', () => {
  it('ERROR 08P01 then FATAL 08P01, and the next client is served', async () => {
    const out: Record<string, string[]> = {};
    for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(P('', 'COPY terminate_parity FROM STDIN'), B(''), E(''), S));
      await c.readUntil('G');
      c.write(X);
      out[target] = await answersWithin(c, 2000);
      const next = await rawAfterLogin(url(), (end) => ends.push(end));
      next.write(Q('SELECT 1'));
      out[`${target} next`] = await answersWithin(next, 2000);
    }
    expect(out.direct).toEqual(['ERROR 08P01', 'FATAL 08P01']);
    expect(out['direct next']).toEqual(['T', 'D', 'C', 'Z', '<open>']);
    expect(out.pgway).toEqual(out.direct);
    expect(out['pgway next']).toEqual(out['direct next']);
  });
});

describe('a frame of unknown type after a Terminate, in the same write', () => {
  it('the query before the Terminate is answered and the connection closes, with no error', async () => {
    const { direct: d, pgway } = await both(cat(Q('SELECT 1'), X, BAD));
    expect(d).toEqual(['T', 'D', 'C', 'Z']);
    expect(pgway).toEqual(d);
  });
});
