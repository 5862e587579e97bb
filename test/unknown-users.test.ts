// A client cannot tell a user name that does not exist from one that does by the SCRAM salt it is
// offered: each unknown name gets a salt of its own, the same at every login and different from
// other names', as PostgreSQL's mock authentication gives (and as real users' salts are). Where users
// log in with md5 by default, an unknown name is challenged with md5 as well.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab } from './harness/lab.js';
import { cstring, RawClient, startupPacket, typedMessage } from './helpers/raw-client.js';

type Address = { host: string; port: number };

/** The salt and iteration count a server offers `user` in its SCRAM server-first-message. */
async function scramSalt(address: Address, user: string): Promise<string> {
  const c = await RawClient.connect(address);
  try {
    c.write(startupPacket({ user, database: 'app' }));
    const sasl = await c.readMessage(3000);
    if (sasl?.type !== 'R' || sasl.body.readInt32BE(0) !== 10) return `no SASL (${sasl?.type} ${sasl?.body.readInt32BE(0)})`;
    const first = Buffer.from(`n,,n=,r=${randomBytes(18).toString('base64')}`);
    const len = Buffer.alloc(4);
    len.writeInt32BE(first.length);
    c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), len, first])));
    const cont = await c.readMessage(3000);
    const attrs = new Map(cont!.body.toString('utf8', 4).split(',').map((p) => [p[0]!, p.slice(2)] as [string, string]));
    return `s=${attrs.get('s')},i=${attrs.get('i')}`;
  } finally {
    c.destroy();
  }
}

describe('SCRAM salts offered to user names that do not exist', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
  });
  afterAll(() => gw?.stop());

  it('are stable per name and differ between names, as PostgreSQL offers them', async () => {
    const salts = async (address: Address): Promise<string[]> => [
      await scramSalt(address, 'unknown_user_1'),
      await scramSalt(address, 'unknown_user_1'),
      await scramSalt(address, 'unknown_user_2'),
    ];
    const [d1, d2, d3] = await salts(lab().primary);
    expect(d1, 'direct: same name, same salt').toBe(d2);
    expect(d3, 'direct: other name, other salt').not.toBe(d1);
    const [a1, a2, b] = await salts({ host: gw.host, port: gw.port });
    expect(a1, 'pgway: same name, same salt').toBe(a2);
    expect(b, 'pgway: other name, other salt').not.toBe(a1);
  });
});

describe('unknown user names where auth.method is md5', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({
      pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }',
      auth: 'auth:\n  method: md5\n  users:\n    - { name: app, password: app-secret }',
    });
  });
  afterAll(() => gw?.stop());

  it('are challenged with md5, as the configured users are', async () => {
    const challenge = async (user: string): Promise<number | undefined> => {
      const c = await RawClient.connect({ host: gw.host, port: gw.port });
      try {
        c.write(startupPacket({ user, database: 'app' }));
        const m = await c.readMessage(3000);
        return m?.type === 'R' ? m.body.readInt32BE(0) : undefined;
      } finally {
        c.destroy();
      }
    };
    // 5: AuthenticationMD5Password.
    expect([await challenge('app'), await challenge('no_such_user')]).toEqual([5, 5]);
  });
});
