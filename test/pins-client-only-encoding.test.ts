// Found by review round 33 C, and fixed (a client-only client_encoding pins the client):
// pgway reads a client's SQL as UTF-8. Under client_encoding SJIS (also BIG5, GBK, GB18030, JOHAB), a
// multibyte character's second byte may be 0x5C, a backslash: 'ソ' is 0x83 0x5C. In an E'' string
// PostgreSQL reads the character whole, while pgway reads a backslash that escapes the closing quote,
// so it misreads (or fails to parse) the rest of the query string and misses the state made behind
// it: a temporary table, a LISTEN or a session advisory lock pins nothing, and the next client of the
// pool gets the connection with that state. (README pins standard_conforming_strings=off for this very
// reason, "a backslash then escapes a quote, and pgway's reading of its SQL could miss ... a temporary
// table behind one", and a non-UTF-8 client's SET of a non-ASCII value, but not this.)
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';
import { typedMessage } from './helpers/raw-client.js';
import { answers, rawAfterLogin, Q } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1500 }' });
});
afterAll(async () => { await gw?.stop(); });
const { connect } = clientsOfEachTest({ endWithinMs: 2000 });
const closers: (() => void)[] = [];
afterEach(() => { for (const c of closers.splice(0)) c(); });

const SJIS_SO = Buffer.from([0x83, 0x5c]); // 'ソ' in Shift_JIS
/** A Query of: SELECT E'ソ' AS k; <sql>, in Shift_JIS bytes. */
const sjisQuery = (sql: string): Buffer =>
  typedMessage('Q', Buffer.concat([Buffer.from("SELECT E'"), SJIS_SO, Buffer.from(`' AS k; ${sql}`), Buffer.from([0])]));

const cases: [string, string, string][] = [
  ['a temporary table', 'CREATE TEMP TABLE rsj_t (a int)', "SELECT to_regclass('pg_temp.rsj_t') IS NOT NULL AS has"],
  ['a LISTEN', 'LISTEN rsj_ch', "SELECT 'rsj_ch' = ANY (ARRAY(SELECT pg_listening_channels())) AS has"],
  ['a session advisory lock', 'SELECT pg_advisory_lock_shared(95001)', "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 95001 AND pid = pg_backend_pid()) AS has"],
];

describe('client_encoding SJIS: state made behind an E\'\' string with a 0x5C trail byte', () => {
  for (const [name, make, has] of cases) {
    it(`${name}: made (as directly), and the next client of the pool does not find it`, async () => {
      const direct = await rawAfterLogin(pgUrl(lab().primary, 'app', 'app-secret', 'app'), (c) => closers.push(c));
      const a = await rawAfterLogin(gw.url(), (c) => closers.push(c));
      for (const r of [direct, a]) {
        r.write(Q("SET client_encoding = 'SJIS'"));
        expect(await answers(r)).toEqual(['C:SET', 'Z:I']);
        r.write(sjisQuery(make));
        expect((await answers(r)).filter((x) => x.startsWith('C:') || x.startsWith('E:'))).toEqual(['C:SELECT 1', make.startsWith('SELECT') ? 'C:SELECT 1' : make.startsWith('LISTEN') ? 'C:LISTEN' : 'C:CREATE TABLE']);
        r.write(Q(has));
        expect(await answers(r)).toContain('D:t');
      }
      const b = await connect(gw.url());
      const seen = await b.query(has).then((x) => x.rows[0].has as boolean, (e: { code: string }) => e.code);
      // The first client is pinned (the next one waits: 57P05), or the next one's session is clean.
      expect(['57P05', false]).toContain(seen);
    });
  }
});

describe('a client-only client_encoding given at startup', () => {
  it('pins the client from its login, as SET client_encoding does', async () => {
    const a = postgres(gw.url(), { max: 1, connection: { client_encoding: 'SJIS' }, onnotice: () => undefined });
    try {
      expect((await a`SHOW client_encoding`)[0]!.client_encoding).toBe('SJIS');
      const b = await connect(gw.url());
      // pool of 1: the next client waits for the connection a keeps (57P05).
      expect(await b.query('SELECT 1').then(() => 'served', (e: { code: string }) => e.code)).toBe('57P05');
      await a.end();
      expect((await (await connect(gw.url())).query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await a.end();
    }
  });
});
