// Session mode: a client whose login got a pooled server connection at once, but whose startup
// settings are still being laid on it (pgway's own RESET ALL; SET ... in flight), sends Terminate.
// PostgreSQL reads the Terminate after the login and closes the connection. pgway used to finish the
// login and never end the client (it only marked it "terminating", the server being busy with its own
// statement): the socket stayed open and the session-mode server connection stayed taken.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { RawClient, rawTrustLogin, startupPacket } from './helpers/raw-client.js';
import { cat, P, S, X } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  await gw?.stop();
});

async function poolRow(): Promise<Record<string, string>> {
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  await admin.connect();
  const r = await admin.query('SHOW POOLS');
  await admin.end();
  return r.rows.find((row) => row.database === 'app' && row.user === 'trustuser') as Record<string, string>;
}

describe('session mode: Terminate pipelined behind the StartupMessage', () => {
  it('the client is closed and its server connection given back, as PostgreSQL closes at once', async () => {
    // One idle server connection in the pool, so the next login is leased at once.
    const warm = new pg.Client({ connectionString: gw.url('trustuser', 'app', '') });
    await warm.connect();
    await warm.query('SELECT 1');
    await warm.end();
    await new Promise((r) => setTimeout(r, 100));

    const c = await RawClient.connect({ host: gw.host, port: gw.port });
    c.write(cat(startupPacket({ user: 'trustuser', database: 'app', application_name: 'review-e-bye' }), X));
    const got = await c.readToClose(3000).catch((e: Error) => e.message);
    // pgway: the login reply comes, then nothing: 'no answer within 3000 ms'; the socket stays open
    expect(c.closed).toBe(true);
    expect(typeof got).not.toBe('string');
    const row = await poolRow();
    // pgway: sv_active 1 held by a client that said goodbye
    expect(Number(row.sv_active)).toBe(0);
    c.destroy();
  });
});

describe('transaction mode: Parse + Sync + Terminate in one write, for a statement the pool has prepared', () => {
  it('the client is answered and then closed, as PostgreSQL closes after the Terminate', async () => {
    const tx = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' });
    // Another client prepares the statement, so the pool knows it (pgway then answers a Parse itself).
    const first = new pg.Client({ connectionString: tx.url('trustuser', 'app', '') });
    first.on('error', () => undefined);
    try {
      await first.connect();
      await first.query({ name: 'review_e_s1', text: 'SELECT 41 + 1' });
      const { client } = await rawTrustLogin({ host: tx.host, port: tx.port }, { user: 'trustuser', database: 'app' });
      client.write(cat(P('review_e_s1', 'SELECT 41 + 1'), S, X));
      const { before } = await client.readUntil('Z', 3000);
      expect(before.map((m) => m.type)).toEqual(['1']);
      // pgway: ParseComplete and ReadyForQuery come, then the socket stays open ('peer did not close')
      const closed = await client.waitClosed(3000).then(() => 'closed', (e: Error) => e.message);
      client.destroy();
      expect(closed).toBe('closed');
    } finally {
      await first.end().catch(() => undefined);
      await tx.stop();
    }
  });
});
