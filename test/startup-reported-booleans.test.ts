// Found by review round 31 B; fixed for the boolean settings, the rest documented (README).
// In transaction mode, once the pool has served a client, pgway answers a login from what it knows,
// without a server round trip, and reported each startup setting as the client typed it. libpq
// compares standard_conforming_strings with "on" as it stands (std_strings = strcmp(value, "on")
// == 0): with "ON" it would escape strings and bytea (PQescapeStringConn, PQescapeByteaConn) as if
// it were off while the server has it on. Boolean settings are now reported as on or off, as
// PostgreSQL reports them; other values (DateStyle, TimeZone spelled otherwise) are still reported
// as given, and corrected by the server's report at the first request where they differ.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScramClientExchange } from '../src/wire/scram.js';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab } from './harness/lab.js';
import { cstring, errorFields, queryMessage, RawClient, startupPacket, typedMessage } from './helpers/raw-client.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
  // Warm the pool: later logins are answered from what pgway already knows of the server.
  const c = new pg.Client({ connectionString: gw.url() });
  await c.connect();
  await c.query('SELECT 1');
  await c.end();
});
afterAll(async () => {
  await gw?.stop();
});

/**
 * Logs in as app over a raw socket (SCRAM by hand, so no driver adds startup parameters), runs
 * SELECT 1, and returns the value of `name` the login reported and the last one reported by then.
 */
async function reported(addr: { host: string; port: number }, params: Record<string, string>, name: string): Promise<{ atLogin?: string; last?: string }> {
  const c = await RawClient.connect(addr);
  try {
    c.write(startupPacket({ user: 'app', database: 'app', ...params }));
    expect((await c.readMessage())?.type).toBe('R');
    const scram = new ScramClientExchange('app-secret');
    const first = Buffer.from(scram.first());
    const len = Buffer.alloc(4);
    len.writeInt32BE(first.length);
    c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), len, first])));
    const cont = await c.readMessage();
    c.write(typedMessage('p', Buffer.from(scram.final(cont!.body.toString('utf8', 4)))));
    const out: { atLogin?: string; last?: string } = {};
    const readCycle = async (): Promise<void> => {
      for (;;) {
        const m = await c.readMessage();
        if (!m) throw new Error('closed');
        if (m.type === 'E') throw new Error(`error ${errorFields(m.body).get('C')}`);
        if (m.type === 'S') {
          const [k, v] = m.body.toString('utf8').split('\0');
          if (k === name) out.last = v;
        }
        if (m.type === 'Z') return;
      }
    };
    await readCycle();
    out.atLogin = out.last;
    c.write(queryMessage('SELECT 1'));
    await readCycle();
    return out;
  } finally {
    c.destroy();
  }
}

describe('startup settings reported in ParameterStatus (warm pool)', () => {
  const cases: [Record<string, string>, string][] = [
    [{ standard_conforming_strings: 'ON' }, 'standard_conforming_strings'],
    [{ options: '-c standard_conforming_strings=yes' }, 'standard_conforming_strings'],
    [{ options: '-c default_transaction_read_only=0' }, 'default_transaction_read_only'],
  ];
  it.each(cases)('%j: the login reports %s as PostgreSQL does', async (params, name) => {
    const want = await reported(lab().primary, params, name);
    const got = await reported({ host: gw.host, port: gw.port }, params, name);
    expect(got.atLogin).toBe(want.atLogin);
  });
  it.each(cases)('%j: after a query, the last %s reported is the one PostgreSQL reports', async (params, name) => {
    const want = await reported(lab().primary, params, name);
    const got = await reported({ host: gw.host, port: gw.port }, params, name);
    expect(got.last).toBe(want.last);
  });
});
