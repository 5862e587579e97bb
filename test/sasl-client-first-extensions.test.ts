// Found by review round 35 A, and fixed (client-first's extensions are read; an empty nonce passes, as in PostgreSQL):
// Review 35 A. 1b41273 reads client-first "as PostgreSQL reads it" but stops after r=: PostgreSQL
// (auth-scram.c read_client_first_message) then reads every remaining attribute with read_any_attr and
// refuses an empty one, one whose name is not a letter, or one without '=' (FATAL 08P01); pgway ignores
// whatever follows r= and logs the client in. The other way round, PostgreSQL takes an empty client nonce
// (r=) and logs in; pgway's PRINTABLE requires one character or more and answers FATAL 08P01.
// src/wire/scram.ts first(): no read of the extensions; PRINTABLE = /^[...]+$/.
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

type Target = 'direct' | 'pgway';
const address = (t: Target): { host: string; port: number } => (t === 'direct' ? lab().primary : { host: gw.host, port: gw.port });
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const saslInitial = (clientFirst: string): Buffer =>
  typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), int32(Buffer.byteLength(clientFirst)), Buffer.from(clientFirst)]));

/** Logs in as `app` up to AuthenticationSASL and sends `clientFirst`. */
async function begin(t: Target, clientFirst: string): Promise<RawClient> {
  const c = await RawClient.connect(address(t));
  c.write(startupPacket({ user: 'app', database: 'app' }));
  const m = await c.readMessage();
  expect(m?.type).toBe('R');
  expect(m!.body.readInt32BE(0)).toBe(10);
  c.write(saslInitial(clientFirst));
  return c;
}

/** The first answer: "FATAL <sqlstate>" for an error, "R<code>" for an authentication message. */
async function firstAnswer(c: RawClient): Promise<string> {
  try {
    const m = await c.readMessage(3000);
    if (!m) return '<closed>';
    if (m.type === 'E') return `${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}`;
    if (m.type === 'R') return `R${m.body.readInt32BE(0)}`;
    return m.type;
  } finally {
    c.destroy();
  }
}


/** Full exchange: first answer, and the final one if a challenge came. */
async function login(t: Target, header: string, bare: string, shape: (withoutProof: string, proof: string) => string = (wp, p) => `${wp},p=${p}`): Promise<string> {
  const c = await begin(t, header + bare);
  const cont = await c.readMessage(3000);
  if (cont?.type === 'E') { c.destroy(); return `first: ${errorFields(cont.body).get('S')} ${errorFields(cont.body).get('C')}`; }
  if (cont?.type !== 'R' || cont.body.readInt32BE(0) !== 11) { c.destroy(); return `first: ${cont?.type}`; }
  const serverFirst = cont.body.toString('utf8', 4);
  const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)] as [string, string]));
  const salted = pbkdf2Sync('app-secret', Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const dummy = shape(`c=${Buffer.from(header).toString('base64')},r=${attrs.get('r')}`, 'PROOF');
  const withoutProof = dummy.slice(0, dummy.indexOf(',p=PROOF'));
  const signature = createHmac('sha256', storedKey).update(`${bare},${serverFirst},${withoutProof}`).digest();
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
  c.write(typedMessage('p', Buffer.from(dummy.replace('PROOF', proof.toString('base64')))));
  return `final: ${await firstAnswer(c)}`;
}

const N = 'r=abcdefghijklmnopqrstuv';
describe('SCRAM variants: pgway logs in exactly when PostgreSQL does', () => {
  it.each([
    ['empty attribute after r=', 'n,,', `n=,${N},,`],
    ['non-letter attribute after r=', 'n,,', `n=,${N},1=x`],
    ['garbage after r=', 'n,,', `n=,${N},garbage`],
    ['empty nonce', 'n,,', 'n=,r='],
  ])('client-first %s', async (_w, header, bare) => {
    const want = await login('direct', header, bare);
    expect(await login('pgway', header, bare)).toBe(want);
  });
});
