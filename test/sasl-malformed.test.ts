// Malformed SASL messages during login. Each case is sent to PostgreSQL directly and to
// pgway; pgway must refuse it the way PostgreSQL does (FATAL 08P01, protocol violation) and close.
// And one PostgreSQL accepts: a SASLInitialResponse without an initial response (length -1), which
// gets an empty challenge, the client-first-message coming next.
// The channel-binding attribute of a client-final-message (c=) must repeat the GS2 header of the
// client-first-message (base64 of "n,," or "y,,"), or the login is refused with FATAL 08P01. A GS2
// header that names an authorization identity (n,a=someone,) is refused with FATAL 0A000.
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
const CLIENT_FIRST = 'n,,n=,r=abcdefghijklmnopqrstuv';

type Target = 'direct' | 'pgway';
const address = (t: Target): { host: string; port: number } => (t === 'direct' ? lab().primary : { host: gw.host, port: gw.port });

/** Logs in as `app` (SCRAM) up to the AuthenticationSASL request. */
async function saslStart(t: Target): Promise<RawClient> {
  const c = await RawClient.connect(address(t));
  c.write(startupPacket({ user: 'app', database: 'app' }));
  const m = await c.readMessage();
  expect(m?.type).toBe('R');
  expect(m!.body.readInt32BE(0)).toBe(10); // AuthenticationSASL
  return c;
}

/** What the server answers (errors as "severity sqlstate", others by type) and '<open>' if it did not close within 4 s. */
async function refusal(c: RawClient): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + 4000;
  try {
    for (;;) {
      const m = await c.readMessage(Math.max(1, deadline - Date.now()));
      if (!m) return out;
      out.push(m.type === 'E' ? `${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}` : m.type);
    }
  } catch {
    out.push('<open>');
    return out;
  } finally {
    c.destroy();
  }
}

describe('malformed SASL messages from a client logging in', () => {
  it('a SASLInitialResponse without its int32 length field is refused with FATAL 08P01', async () => {
    const out: Record<Target, string[]> = { direct: [], pgway: [] };
    for (const t of ['direct', 'pgway'] as const) {
      const c = await saslStart(t);
      c.write(typedMessage('p', cstring('SCRAM-SHA-256'))); // mechanism name, then nothing
      out[t] = await refusal(c);
    }
    expect(out.direct).toEqual(['FATAL 08P01']);
    // pgway answers 08006 "server connection lost; the current transaction is gone" (a RangeError inside)
    expect(out.pgway).toEqual(out.direct);
  });

  it('a SASLInitialResponse whose length field claims more bytes than the message holds is refused with FATAL 08P01', async () => {
    const out: Record<Target, string[]> = { direct: [], pgway: [] };
    for (const t of ['direct', 'pgway'] as const) {
      const c = await saslStart(t);
      c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), int32(1000), Buffer.from(CLIENT_FIRST)])));
      out[t] = await refusal(c);
    }
    expect(out.direct).toEqual(['FATAL 08P01']);
    // pgway reads what is there and goes on with the exchange: ['R' (SASLContinue), '<open>']
    expect(out.pgway).toEqual(out.direct);
  });

  it('a malformed SCRAM client-final-message is refused as a protocol violation (08P01), not as a wrong password', async () => {
    const out: Record<Target, string[]> = { direct: [], pgway: [] };
    for (const t of ['direct', 'pgway'] as const) {
      const c = await saslStart(t);
      c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), int32(CLIENT_FIRST.length), Buffer.from(CLIENT_FIRST)])));
      const cont = await c.readMessage();
      expect(cont?.type).toBe('R');
      expect(cont!.body.readInt32BE(0)).toBe(11); // AuthenticationSASLContinue
      c.write(typedMessage('p', Buffer.from('this is not a SCRAM message')));
      out[t] = await refusal(c);
    }
    expect(out.direct).toEqual(['FATAL 08P01']);
    expect(out.pgway).toEqual(out.direct); // pgway: FATAL 28P01 password authentication failed
  });
});

const hmac = (k: Buffer, s: string): Buffer => createHmac('sha256', k).update(s).digest();

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

describe('a password message for an md5 login that holds more than its password', () => {
  it('is refused as a protocol violation (08P01), as PostgreSQL does, not as a wrong password', async () => {
    const out: Record<Target, string[]> = { direct: [], pgway: [] };
    for (const t of ['direct', 'pgway'] as const) {
      const c = await RawClient.connect(address(t));
      c.write(startupPacket({ user: 'md5user', database: 'app' }));
      const m = await c.readMessage();
      expect(m!.body.readInt32BE(0)).toBe(5); // AuthenticationMD5Password
      // A client that speaks SCRAM regardless: a SASLInitialResponse, whose string ends before the message.
      c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), int32(CLIENT_FIRST.length), Buffer.from(CLIENT_FIRST)])));
      out[t] = await refusal(c);
    }
    expect(out.direct).toEqual(['FATAL 08P01']); // invalid password packet size
    // pgway: ['FATAL 28P01']
    expect(out.pgway).toEqual(out.direct);
  });
});

/**
 * A SCRAM login as `app` whose client-first-message begins with `gs2` and whose client-final-message
 * carries c=`cbind` (with a right proof). Returns the answer to the client-final-message: the
 * error as "severity sqlstate", or 'R' for the SASLFinal and AuthenticationOk up to 'Z'.
 */
async function finalAnswer(t: Target, gs2: string, cbind: string): Promise<string[]> {
  const c = await saslStart(t);
  try {
    const bare = 'n=,r=abcdefghijklmnopqrstuv';
    const clientFirst = `${gs2}${bare}`;
    c.write(typedMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), int32(clientFirst.length), Buffer.from(clientFirst)])));
    const first = (await c.readMessage(3000))!;
    if (first.type !== 'R') return [`${errorFields(first.body).get('S')} ${errorFields(first.body).get('C')}`];
    const serverFirst = first.body.toString('utf8', 4);
    const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)]));
    const salted = pbkdf2Sync('app-secret', Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=${cbind},r=${attrs.get('r')}`;
    const sig = hmac(createHash('sha256').update(clientKey).digest(), `${bare},${serverFirst},${withoutProof}`);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
    c.write(typedMessage('p', Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)));
    const out: string[] = [];
    for (;;) {
      const m = await c.readMessage(3000);
      if (!m) return out;
      if (m.type === 'E') return [...out, `${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}`];
      if (m.type === 'R' || m.type === 'Z') out.push(m.type);
      if (m.type === 'Z') return out;
    }
  } finally {
    c.destroy();
  }
}

describe('the channel-binding attribute of a SCRAM client-final-message', () => {
  it.each([
    ['n,,', 'biws', ['R', 'R', 'Z']],
    ['y,,', 'eSws', ['R', 'R', 'Z']],
    ['n,,', 'eSws', ['FATAL 08P01']],
    ['y,,', 'biws', ['FATAL 08P01']],
    ['n,,', 'Zm9vLCw=', ['FATAL 08P01']],
  ])('after gs2 header %j, c=%s is answered as PostgreSQL answers it', async (gs2, cbind, expected) => {
    const direct = await finalAnswer('direct', gs2, cbind);
    expect(direct).toEqual(expected);
    expect(await finalAnswer('pgway', gs2, cbind)).toEqual(direct);
  });
});

describe('a GS2 header with something between its commas', () => {
  it.each([
    ['n,a=postgres,', ['FATAL 0A000']], // an authorization identity: not supported
    ['y,a=app,', ['FATAL 0A000']],
    ['n,x=y,', ['FATAL 08P01']], // anything else: malformed
  ])('%j is refused as PostgreSQL refuses it', async (gs2, expected) => {
    const direct = await finalAnswer('direct', gs2, 'biws');
    expect(direct).toEqual(expected);
    expect(await finalAnswer('pgway', gs2, 'biws')).toEqual(direct);
  });
});
