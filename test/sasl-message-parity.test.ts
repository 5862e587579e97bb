// Found by review round 34 B, and fixed (SCRAM messages are read as PostgreSQL reads them):
// Review 34 B. SCRAM messages PostgreSQL refuses as malformed that pgway reads leniently. Each case
// is sent to PostgreSQL directly and to pgway; pgway must answer as PostgreSQL does.
// - a client-final-message with an attribute after the proof (`...,p=<proof>,x=1`): PostgreSQL FATAL 08P01
//   "malformed SCRAM message"; pgway logs the client in (Node's base64 decoder stops at the proof's
//   padding and skips characters outside the alphabet, so the proof still decodes to the right 32 bytes).
// - a client-final-message with its attributes out of order (r= before c=): PostgreSQL 08P01; pgway 28P01
//   (a wrong password), which PostgreSQL keeps for a well-formed message with a wrong proof.
// - a client-first-message without the n= attribute, with a mandatory extension (m=), or with a nonce
//   that is not printable: PostgreSQL refuses it at once (08P01, 0A000, 08P01); pgway answers with a challenge.
// Found by review round 35 A, and fixed: after r= pgway read nothing (an empty attribute, one whose
// name is not a letter, or one without '=' logged in; PostgreSQL's read_client_first_message refuses
// each with 08P01), and it refused an empty nonce, which PostgreSQL lets through.
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

const BARE = 'n=,r=abcdefghijklmnopqrstuv';

/** Runs the exchange with the right password and sends the client-final-message `shape` makes of it. */
async function finalAnswer(t: Target, shape: (withoutProof: string, proof: string, nonce: string) => string): Promise<string> {
  const c = await begin(t, `n,,${BARE}`);
  const cont = await c.readMessage();
  expect(cont?.type).toBe('R');
  expect(cont!.body.readInt32BE(0)).toBe(11);
  const serverFirst = cont!.body.toString('utf8', 4);
  const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)] as [string, string]));
  const salted = pbkdf2Sync('app-secret', Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs.get('r')}`;
  const signature = createHmac('sha256', storedKey).update(`${BARE},${serverFirst},${withoutProof}`).digest();
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
  c.write(typedMessage('p', Buffer.from(shape(withoutProof, proof.toString('base64'), attrs.get('r')!))));
  return firstAnswer(c);
}

describe('client-final-message', () => {
  it('with an attribute after the proof is refused with FATAL 08P01, as PostgreSQL refuses it (not logged in)', async () => {
    const shape = (wp: string, proof: string): string => `${wp},p=${proof},x=1`;
    expect(await finalAnswer('direct', shape)).toBe('FATAL 08P01');
    expect(await finalAnswer('pgway', shape)).toBe('FATAL 08P01');
  });

  it('with a proof that has characters outside base64 is refused with FATAL 08P01, as PostgreSQL refuses it', async () => {
    const shape = (wp: string, proof: string): string => `${wp},p=${proof.slice(0, 10)}!${proof.slice(10)}`;
    expect(await finalAnswer('direct', shape)).toBe('FATAL 08P01');
    expect(await finalAnswer('pgway', shape)).toBe('FATAL 08P01');
  });

  it('with r= before c= is a protocol violation (08P01), as in PostgreSQL, not a wrong password', async () => {
    const shape = (_wp: string, proof: string, nonce: string): string => `r=${nonce},c=biws,p=${proof}`;
    expect(await finalAnswer('direct', shape)).toBe('FATAL 08P01');
    expect(await finalAnswer('pgway', shape)).toBe('FATAL 08P01');
  });
});

describe('client-first-message', () => {
  it.each([
    ['without the n= attribute', 'n,,r=abcdefghijklmnop', 'FATAL 08P01'],
    ['with a mandatory extension (m=)', 'n,,m=ext,n=,r=abcdefghijklmnop', 'FATAL 0A000'],
    ['with a nonce that is not printable', 'n,,n=,r=abc\u0001def', 'FATAL 08P01'],
  ])('%s is refused as PostgreSQL refuses it', async (_what, clientFirst, expected) => {
    expect(await firstAnswer(await begin('direct', clientFirst))).toBe(expected);
    expect(await firstAnswer(await begin('pgway', clientFirst))).toBe(expected);
  });
});

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

describe('SCRAM variants: pgway logs in exactly when PostgreSQL does', () => {
  it.each([
    ['empty attribute after r=', 'n,,', `${BARE},,`],
    ['non-letter attribute after r=', 'n,,', `${BARE},1=x`],
    ['garbage after r=', 'n,,', `${BARE},garbage`],
    ['empty nonce', 'n,,', 'n=,r='],
  ])('client-first %s', async (_w, header, bare) => {
    const want = await login('direct', header, bare);
    expect(await login('pgway', header, bare)).toBe(want);
  });
});
