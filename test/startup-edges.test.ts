// The startup phase. Compared with PostgreSQL where it answers differently.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab } from './harness/lab.js';
import { answersWithin, cstring, RawClient, startupPacket, typedMessage, untypedPacket } from './helpers/raw-client.js';

const SSL_REQUEST = 80877103;

describe('startup packets (transaction mode, pool of 2)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }', yaml: 'limits: { startup_timeout_ms: 10000 }' });
  });
  afterAll(() => gw?.stop());

  it('refuses a second SSLRequest after answering N to the first, as PostgreSQL does', async () => {
    const out: Record<string, string[]> = {};
    for (const [t, address] of [['direct', lab().primary], ['pgway', { host: gw.host, port: gw.port }]] as const) {
      const c = await RawClient.connect(address);
      c.write(untypedPacket(SSL_REQUEST));
      expect(await c.readByte()).toBe('N'.charCodeAt(0));
      c.write(untypedPacket(SSL_REQUEST));
      // PostgreSQL: FATAL 0A000 unsupported frontend protocol 1234.5679; pgway answers 'N' again (a raw byte) and waits
      const next = await c.readByte(3000).catch(() => undefined);
      out[t] = next === 'E'.charCodeAt(0) ? ['E'] : [`byte ${next}`];
      c.destroy();
    }
    expect(out.direct).toEqual(['E']);
    expect(out.pgway).toEqual(out.direct);
  });

  // A version that is neither 3.x nor a known request code (1234.5679 SSL, 1234.5680 GSSENC, 1234.5678
  // cancel): PostgreSQL answers FATAL 0A000 "unsupported frontend protocol 4.0: server supports 3.0 to 3.2".
  it.each([
    ['4.0', 4 << 16],
    ['1234.5681', (1234 << 16) | 5681],
  ])('refuses protocol %s with FATAL 0A000, as PostgreSQL does', async (_name, version) => {
    const out: Record<string, string[]> = {};
    for (const [t, address, user] of [['direct', lab().primary, 'app'], ['pgway', { host: gw.host, port: gw.port }, 'trustuser']] as const) {
      const c = await RawClient.connect(address);
      c.write(startupPacket({ user, database: 'app' }, version));
      out[t] = await answersWithin(c);
      c.destroy();
    }
    expect(out.direct).toEqual(['FATAL 0A000']);
    expect(out.pgway).toEqual(out.direct);
  });

  it('forgets clients that leave in the middle of SASL authentication', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.connect({ host: gw.host, port: gw.port });
      c.write(startupPacket({ user: 'app', database: 'app' }));
      await c.readMessage(2000); // AuthenticationSASL
      const first = Buffer.from('n,,n=,r=abcdefabcdef');
      const len = Buffer.alloc(4);
      len.writeInt32BE(first.length);
      c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), len, first])));
      await c.readMessage(2000); // AuthenticationSASLContinue
      c.destroy();
    }
    for (let i = 0; i < 100 && gw.gateway.clientCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(gw.gateway.clientCount).toBe(0);
  });

  // PostgreSQL reads the value as a boolean (any case, no spaces) or exactly "database".
  it.each(['bogus', ' on', 'on ', 'DATABASE', 'database '])('refuses replication=%j with FATAL 22023, as PostgreSQL does, rather than logging the client in', async (value) => {
    const out: Record<string, string[]> = {};
    for (const [t, address, user] of [['direct', lab().primary, 'app'], ['pgway', { host: gw.host, port: gw.port }, 'trustuser']] as const) {
      const c = await RawClient.connect(address);
      c.write(startupPacket({ user, database: 'app', replication: value }));
      out[t] = await answersWithin(c);
      c.destroy();
    }
    expect(out.direct).toEqual(['FATAL 22023']); // invalid value for parameter "replication": "bogus" (before auth)
    expect(out.pgway).toEqual(out.direct); // pgway: ['R', 'K', 'Z', '<open>']: logged in as an ordinary client
  });
});

describe('Terminate sent while the login waits for a server connection (session mode, pool of 2)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 5000 }' });
  });
  afterAll(() => gw?.stop());

  async function pool(): Promise<{ cl_active: string; cl_waiting: string; sv_active: string; sv_idle: string }> {
    const admin = new pg.Client(gw.url('admin', 'pgway'));
    await admin.connect();
    try {
      const rows = (await admin.query('SHOW POOLS')).rows as { user: string; cl_active: string; cl_waiting: string; sv_active: string; sv_idle: string }[];
      const row = rows.find((r) => r.user === 'trustuser')!;
      return { cl_active: row.cl_active, cl_waiting: row.cl_waiting, sv_active: row.sv_active, sv_idle: row.sv_idle };
    } finally {
      await admin.end();
    }
  }

  it('closes the client once it gets a connection, and gives the connection back', async () => {
    const holders = [new pg.Client(gw.url('trustuser', 'app', '')), new pg.Client(gw.url('trustuser', 'app', ''))];
    for (const h of holders) await h.connect();
    const c = await RawClient.connect({ host: gw.host, port: gw.port });
    try {
      c.write(startupPacket({ user: 'trustuser', database: 'app' }));
      for (let i = 0; i < 50 && (await pool()).cl_waiting !== '1'; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await pool()).cl_waiting).toBe('1');
      c.write(typedMessage('X')); // the client gives up; its socket stays open, as a client that waits for the close
      await holders.pop()!.end(); // a connection comes free: the waiting login takes it
      const got = await answersWithin(c, 3000);
      // PostgreSQL ends a session at Terminate; pgway logs the client in and keeps it (and its server connection):
      // got is ['R', 'K', 'Z', '<open>'] and SHOW POOLS shows 2 active server connections for 1 remaining client.
      expect(got[got.length - 1]).not.toBe('<open>');
      // The holder's connection is reset before it counts as idle: wait for the pool to settle.
      let settled = await pool();
      for (let i = 0; i < 50 && settled.sv_active !== '1'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        settled = await pool();
      }
      expect(settled).toMatchObject({ cl_active: '1', cl_waiting: '0', sv_active: '1' });
    } finally {
      c.destroy();
      for (const h of holders) await h.end();
    }
  });
});
