// (Regression test; the failure below is fixed.) A frame PostgreSQL ends the session for (a type it does not accept, or one over
// limits.max_message_bytes) sent while the server waits for the client: an extended-protocol
// request answered up to a Flush with no Sync yet, or a COPY FROM STDIN. PostgreSQL ends the
// session at once (and pgway did before 042c5bf). Now endAfterAnswers (then named failAfterPending) sees the server connection
// "busy" (unsynced / in COPY), marks the client terminating and waits for an answer that can never
// come: the client hangs open and its server connection stays taken (sv_active) for ever.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { answersWithin, typedMessage } from './helpers/raw-client.js';
import { B, cat, copyData, E, H, P, Q, X, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
const direct = (): string => pgUrl(lab().primary, 'app', 'app-secret', 'app');
const BAD = typedMessage('z', Buffer.from('abc'));

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 10, query_wait_timeout_ms: 3000 }', yaml: 'limits: { max_message_bytes: 4096 }' });
  const c = new pg.Client({ connectionString: direct() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS review_f_copy (v text)');
  await c.end();
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

/**
 * The app pool's server connections in use (SHOW POOLS sv_active), polled for up to 3 s until none
 * is: the connection a client held when it was ended is rolled back before it is given back.
 */
async function svActive(): Promise<number> {
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  await admin.connect();
  try {
    let active = 0;
    for (const until = Date.now() + 3000; ; await new Promise((r) => setTimeout(r, 50))) {
      const r = await admin.query('SHOW POOLS');
      active = r.rows.filter((row) => row.database === 'app').reduce((n, row) => n + Number(row.sv_active), 0);
      if (active === 0 || Date.now() > until) return active;
    }
  } finally {
    await admin.end();
  }
}

for (const [target, url] of [['direct', direct], ['pgway', () => gw.url()]] as const) {
  describe(`${target}: a bad frame while the server waits for the client`, () => {
    it('after Parse/Bind/Execute/Flush were answered: FATAL 08P01 and the connection closes', async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(cat(P('', 'SELECT 1'), B(''), E(''), H));
      await c.readUntil('C');
      c.write(BAD);
      // pgway: ['<open>']: nothing comes, the client is never ended
      expect(await answersWithin(c, 3000)).toEqual(['FATAL 08P01']);
      if (target === 'pgway') expect(await svActive()).toBe(0);
    });

    it('during COPY FROM STDIN: ERROR then FATAL 08P01, and the connection closes', async () => {
      const c = await rawAfterLogin(url(), (end) => ends.push(end));
      c.write(Q('COPY review_f_copy FROM STDIN'));
      await c.readUntil('G');
      c.write(cat(copyData('a\n'), BAD));
      expect(await answersWithin(c, 3000)).toEqual(['ERROR 08P01', 'FATAL 08P01']);
      if (target === 'pgway') expect(await svActive()).toBe(0);
    });
  });
}

describe('pgway: a CopyData over limits.max_message_bytes during COPY FROM STDIN', () => {
  it('the client hears 08P01 (raise limits.max_message_bytes) and is closed, its server connection given back', async () => {
    const c = await rawAfterLogin(gw.url(), (end) => ends.push(end));
    c.write(Q('COPY review_f_copy FROM STDIN'));
    await c.readUntil('G');
    c.write(cat(copyData('small\n'), copyData(`${'x'.repeat(8000)}\n`)));
    // pgway: ['<open>']: a COPY of one long row hangs for ever instead of failing
    const got = await answersWithin(c, 3000);
    expect(got).not.toContain('<open>');
    expect(got.at(-1)).toBe('FATAL 08P01');
    expect(await svActive()).toBe(0);
  });
});

// (Regression test; the failure below is fixed.) A whole request, then extended-protocol messages without their Sync, then a frame PostgreSQL ends
// the session for, in one write. PostgreSQL runs the request, reads the Parse, then ends the
// session (FATAL 08P01). pgway (endAfterAnswers (then named failAfterPending)) marks the client terminating, sends the request
// and the Parse to the server, and after the request's ReadyForQuery waits for the server, which
// now waits for a Sync that will never come (serverReady returns while the connection is
// "busy"): the client hangs open, inside PostgreSQL's implicit transaction, holding its server
// connection. Before 042c5bf the client got the FATAL at once.
// The same hang with Terminate instead of the bad frame is older (not introduced by 042c5bf).
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
