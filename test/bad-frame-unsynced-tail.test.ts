// (Regression test; the failure below is fixed.) A whole request, then extended-protocol messages without their Sync, then a frame PostgreSQL ends
// the session for, in one write. PostgreSQL runs the request, reads the Parse, then ends the
// session (FATAL 08P01). pgway (failAfterPending) marks the client terminating, sends the request
// and the Parse to the server, and after the request's ReadyForQuery waits for the server, which
// now waits for a Sync that will never come (serverReady returns while the connection is
// "busy"): the client hangs open, inside PostgreSQL's implicit transaction, holding its server
// connection. Before 042c5bf the client got the FATAL at once.
// The same hang with Terminate instead of the bad frame is older (not introduced by 042c5bf).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { answersWithin, typedMessage } from './helpers/raw-client.js';
import { cat, P, Q, X, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const BAD = typedMessage('z', Buffer.from('abc'));

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 10, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

async function svActive(): Promise<number> {
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  await admin.connect();
  const r = await admin.query('SHOW POOLS');
  await admin.end();
  return r.rows.filter((row) => row.database === 'app').reduce((n, row) => n + Number(row.sv_active), 0);
}

for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
  describe(`${target}: Query, Parse (no Sync), then a frame of an unknown type`, () => {
    it('outside a transaction: the query is answered, then FATAL 08P01 and the connection closes', async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(Q('SELECT 1'), P('', 'SELECT 2'), BAD));
      const got = (await answersWithin(c, 3000)).filter((t) => t !== '1'); // ParseComplete: PostgreSQL flushes it with the FATAL
      // pgway: ['T', 'D', 'C', 'Z', '<open>']
      expect(got).toEqual(['T', 'D', 'C', 'Z', 'FATAL 08P01']);
      if (target === 'pgway') expect(await svActive()).toBe(0);
    });

    it('inside a transaction: the same, and the transaction ends', async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(Q('BEGIN'));
      await c.readUntil('Z');
      c.write(cat(Q('SELECT 1'), P('', 'SELECT 2'), BAD));
      const got = (await answersWithin(c, 3000)).filter((t) => t !== '1');
      expect(got).toEqual(['T', 'D', 'C', 'Z', 'FATAL 08P01']);
      if (target === 'pgway') expect(await svActive()).toBe(0);
    });

    it('(older) with Terminate instead: the query is answered and the connection closes', async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(Q('SELECT 1'), P('', 'SELECT 2'), X));
      expect(await answersWithin(c, 3000)).toEqual(['T', 'D', 'C', 'Z']);
      if (target === 'pgway') expect(await svActive()).toBe(0);
    });
  });
}
