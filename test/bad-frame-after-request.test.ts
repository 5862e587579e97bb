// A request sent in the same write as a frame of a type PostgreSQL does not accept: PostgreSQL
// reads messages one by one, runs the request, answers it, and only then meets the bad type byte
// (FATAL 08P01). pgway must too, though its frame scanner meets the bad code while it splits the
// chunk, when the request is held and not yet sent.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { errorFields, RawClient, typedMessage } from './helpers/raw-client.js';
import { cat, Q, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' });
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS review_e_badframe (who text)');
  await c.query('TRUNCATE review_e_badframe');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

async function rowsFor(who: string): Promise<number> {
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  const r = await c.query('SELECT count(*)::int AS n FROM review_e_badframe WHERE who = $1', [who]);
  await c.end();
  return r.rows[0].n as number;
}

/** Every message type until the peer closes (errors as "E severity sqlstate"). */
async function toClose(c: RawClient): Promise<string[]> {
  const out: string[] = [];
  for (const m of await c.readToClose(3000)) {
    if (m.type === 'S' || m.type === 'N') continue;
    out.push(m.type === 'E' ? `E ${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}` : m.type);
  }
  return out;
}

describe('a request pipelined before a frame of an unknown type', () => {
  for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
    it(`${target}: the INSERT runs and is answered before the FATAL 08P01`, async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(Q(`INSERT INTO review_e_badframe VALUES ('${target}')`), typedMessage('z', Buffer.from('abc'))));
      const out = await toClose(c);
      // PostgreSQL: ['C', 'Z', 'E FATAL 08P01']; pgway: ['E FATAL 08P01'] and the INSERT never ran
      expect(out).toEqual(['C', 'Z', 'E FATAL 08P01']);
      expect(await rowsFor(target)).toBe(1);
    });
  }

  it('pgway: a COMMIT pipelined before the bad frame commits, as on a direct connection', async () => {
    const c = await rawAfterLogin(gw.url(), (end) => ends.push(end));
    c.write(Q("BEGIN; INSERT INTO review_e_badframe VALUES ('pgway-tx')"));
    await c.readUntil('Z');
    c.write(cat(Q('COMMIT'), typedMessage('z', Buffer.from('abc'))));
    await toClose(c);
    // pgway never sends the COMMIT: the transaction is rolled back when the client is closed
    expect(await rowsFor('pgway-tx')).toBe(1);
  });
});
