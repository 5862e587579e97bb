// A SASLInitialResponse whose initial-response length is -1 ("no initial response", RFC 4422 and
// PostgreSQL's protocol docs: "-1 if no Initial Response follows"). PostgreSQL answers with an
// empty AuthenticationSASLContinue and reads the client-first-message from the next SASLResponse.
// pgway refuses the login (FATAL 08P01 "invalid message format").
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab } from './harness/lab.js';
import { cstring, errorFields, RawClient, startupPacket, typedMessage } from './helpers/raw-client.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' });
});
afterAll(() => gw?.stop());

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const hmac = (k: Buffer, s: string): Buffer => createHmac('sha256', k).update(s).digest();

type Target = 'direct' | 'pgway';
const address = (t: Target): { host: string; port: number } => (t === 'direct' ? lab().primary : { host: gw.host, port: gw.port });

/** A whole SCRAM login as `app` that sends its client-first-message after an empty challenge. */
async function login(t: Target): Promise<string[]> {
  const c = await RawClient.connect(address(t));
  const seen: string[] = [];
  const show = (m: { type: string; body: Buffer }): string =>
    m.type === 'E' ? `E:${errorFields(m.body).get('C')}` : m.type === 'R' ? `R${m.body.readInt32BE(0)}` : m.type;
  try {
    c.write(startupPacket({ user: 'app', database: 'app' }));
    const sasl = (await c.readMessage())!;
    seen.push(show(sasl));
    c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), int32(-1)])));
    const cont = await c.readMessage(3000);
    if (!cont) return [...seen, '<closed>'];
    seen.push(show(cont));
    if (cont.type !== 'R') return seen;
    const bare = 'n=,r=abcdefghijklmnopqrstuv';
    c.write(typedMessage('p', Buffer.from(`n,,${bare}`)));
    const first = (await c.readMessage(3000))!;
    seen.push(show(first));
    if (first.type !== 'R') return seen;
    const serverFirst = first.body.toString('utf8', 4);
    const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)]));
    const salted = pbkdf2Sync('app-secret', Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=biws,r=${attrs.get('r')}`;
    const sig = hmac(createHash('sha256').update(clientKey).digest(), `${bare},${serverFirst},${withoutProof}`);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
    c.write(typedMessage('p', Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)));
    const { before, message } = await c.readUntil('Z', 3000);
    return [...seen, ...before.filter((m) => m.type === 'R' || m.type === 'E').map(show), message.type];
  } finally {
    c.destroy();
  }
}

describe('SASLInitialResponse without an initial response (length -1)', () => {
  it('gets an empty SASLContinue and the login goes on, as PostgreSQL does', async () => {
    const direct = await login('direct');
    expect(direct).toEqual(['R10', 'R11', 'R11', 'R12', 'R0', 'Z']);
    // pgway: ['R10', 'E:08P01']
    expect(await login('pgway')).toEqual(direct);
  });
});
