/**
 * SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL speaks it, both ends, plus md5 password hashing.
 * The server side verifies client proofs from stored keys (StoredKey/ServerKey computed once per
 * user), so a login costs two HMACs and a hash, never a PBKDF2.
 */
import { createHash, createHmac, hash, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { randomBytesPooled } from './random-pool.js';
import { FeatureNotSupportedError, ProtocolViolationError } from '../errors.js';
import { saslprep } from './saslprep.js';

export interface ScramKeys {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => hash('sha256', data, 'buffer');

const BLOCK = 64;

/**
 * HMAC-SHA-256 under one key, with the key's inner and outer pads computed once (RFC 2104):
 * H(K^opad || H(K^ipad || m)) as two one-shot hashes. A login checks a proof with the user's
 * StoredKey and ServerKey, so their pads are kept per user instead of building Hmac objects.
 */
export class HmacSha256 {
  private readonly inner = Buffer.alloc(BLOCK, 0x36);
  private readonly outer = Buffer.alloc(BLOCK, 0x5c);

  constructor(key: Buffer) {
    const k = key.length > BLOCK ? sha256(key) : key;
    for (let i = 0; i < k.length; i++) {
      this.inner[i] = 0x36 ^ k[i]!;
      this.outer[i] = 0x5c ^ k[i]!;
    }
  }

  digest(data: string): Buffer {
    const length = Buffer.byteLength(data);
    const first = Buffer.allocUnsafe(BLOCK + length);
    this.inner.copy(first, 0);
    first.write(data, BLOCK, 'utf8');
    const second = Buffer.allocUnsafe(BLOCK + 32);
    this.outer.copy(second, 0);
    sha256(first).copy(second, BLOCK);
    return sha256(second);
  }
}

/** Per set of stored keys, their HMACs (keys live as long as the user's config entry). */
const keyMacs = new WeakMap<ScramKeys, { stored: HmacSha256; server: HmacSha256 }>();

function macsOf(keys: ScramKeys): { stored: HmacSha256; server: HmacSha256 } {
  let macs = keyMacs.get(keys);
  if (!macs) keyMacs.set(keys, (macs = { stored: new HmacSha256(keys.storedKey), server: new HmacSha256(keys.serverKey) }));
  return macs;
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** SaltedPassword of RFC 5802 from a plaintext password, prepared with SASLprep as PostgreSQL does. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(saslprep(password), salt, iterations, 32, 'sha256');
}

/** PostgreSQL's default scram_iterations, used for the keys pgway derives itself. */
export const SCRAM_ITERATIONS = 4096;

export function scramKeysFromPassword(password: string, iterations = SCRAM_ITERATIONS, salt: Buffer = randomBytes(16)): ScramKeys {
  const salted = saltedPassword(password, salt, iterations);
  return {
    iterations,
    salt,
    storedKey: sha256(hmac(salted, 'Client Key')),
    serverKey: hmac(salted, 'Server Key'),
  };
}

/** Parses PostgreSQL's stored form: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>. */
export function parseScramVerifier(verifier: string): ScramKeys | undefined {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!m) return undefined;
  return {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2]!, 'base64'),
    storedKey: Buffer.from(m[3]!, 'base64'),
    serverKey: Buffer.from(m[4]!, 'base64'),
  };
}

interface Attribute {
  name: string;
  value: string;
  /** Where the next attribute starts (past the comma), or the message's length. */
  next: number;
}

/** The attribute at `at` (a letter, '=', a value up to the next comma), as PostgreSQL reads one; undefined if there is none. */
function attributeAt(message: string, at: number): Attribute | undefined {
  const name = message[at];
  if (name === undefined || !/^[A-Za-z]$/.test(name) || message[at + 1] !== '=') return undefined;
  const comma = message.indexOf(',', at + 2);
  return comma < 0 ? { name, value: message.slice(at + 2), next: message.length } : { name, value: message.slice(at + 2, comma), next: comma + 1 };
}

/** A nonce is printable ASCII but the comma (RFC 5802; PostgreSQL lets an empty one through). */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]*$/;
/** Base64 as PostgreSQL decodes it: nothing outside the alphabet, padding only at the end. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const malformed = (): ProtocolViolationError => new ProtocolViolationError('malformed SCRAM message');

/** The attributes of a server's message, by name (pgway's own login to a server). */
function attributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (let at = 0, attr = attributeAt(message, 0); attr !== undefined; at = attr.next, attr = attributeAt(message, at)) {
    attrs.set(attr.name, attr.value);
  }
  return attrs;
}

/** Server side of one exchange: first() answers client-first, final() checks the proof. */
export class ScramServerExchange {
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  /** What c= of client-final must be: the gs2 header in base64, as no channel binding data follows it. */
  private channelBinding = '';

  constructor(private readonly keys: ScramKeys) {}

  /**
   * Returns server-first-message, or undefined when client-first is malformed, read as PostgreSQL
   * reads it: the gs2 header "n,," or "y,," (no channel binding; we do not offer -PLUS), then n=
   * and r= in that order, extensions after them ignored. Throws for an authorization identity or a
   * mandatory extension, which PostgreSQL does not support either.
   */
  first(clientFirst: string): string | undefined {
    const flag = clientFirst[0];
    if ((flag !== 'n' && flag !== 'y') || clientFirst[1] !== ',') return undefined;
    if (clientFirst[2] === 'a') throw new FeatureNotSupportedError('client uses authorization identity, but it is not supported');
    if (clientFirst[2] !== ',') return undefined;
    this.channelBinding = Buffer.from(clientFirst.slice(0, 3)).toString('base64');
    this.clientFirstBare = clientFirst.slice(3);
    if (this.clientFirstBare[0] === 'm') throw new FeatureNotSupportedError('client requires an unsupported SCRAM extension');
    const user = attributeAt(clientFirst, 3);
    const nonce = user?.name === 'n' ? attributeAt(clientFirst, user.next) : undefined;
    if (nonce?.name !== 'r' || !PRINTABLE.test(nonce.value)) return undefined;
    // Extensions after the nonce are read, and ignored, as PostgreSQL reads them: each must be one.
    for (let at = nonce.next; at < clientFirst.length; ) {
      const extension = attributeAt(clientFirst, at);
      if (extension === undefined) return undefined;
      at = extension.next;
    }
    const clientNonce = nonce.value;
    this.nonce = clientNonce + randomBytesPooled(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.keys.salt.toString('base64')},i=${this.keys.iterations}`;
    return this.serverFirst;
  }

  /**
   * Returns server-final-message when the proof is right, undefined when it is wrong. A message
   * that is not a client-final-message of this exchange is a protocol violation, as PostgreSQL
   * tells it apart from a wrong password.
   */
  final(clientFinal: string): string | undefined {
    // As PostgreSQL reads it: c=, r=, extensions, p= last.
    const binding = attributeAt(clientFinal, 0);
    if (binding?.name !== 'c') throw malformed();
    // A client that claims in one message what it denies in the other (n,, then c=eSws) may be the
    // target of a downgrade (RFC 5802 section 6): refused, as PostgreSQL refuses it.
    if (binding.value !== this.channelBinding) {
      throw new ProtocolViolationError('unexpected SCRAM channel-binding attribute in client-final-message');
    }
    const nonce = attributeAt(clientFinal, binding.next);
    if (nonce?.name !== 'r') throw malformed();
    let proofAt = nonce.next;
    let proofAttr = attributeAt(clientFinal, proofAt);
    while (proofAttr !== undefined && proofAttr.name !== 'p') {
      proofAt = proofAttr.next;
      proofAttr = attributeAt(clientFinal, proofAt);
    }
    // Nothing may follow the proof, and it must be base64 of a key's length.
    if (proofAttr === undefined || proofAttr.next < clientFinal.length || !BASE64.test(proofAttr.value)) throw malformed();
    const proof = Buffer.from(proofAttr.value, 'base64');
    if (proof.length !== 32) throw malformed();
    const withoutProof = clientFinal.slice(0, proofAt - 1);
    if (nonce.value !== this.nonce) throw new ProtocolViolationError('invalid SCRAM response: the nonce does not match');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const macs = macsOf(this.keys);
    const clientKey = xor(proof, macs.stored.digest(authMessage));
    if (!timingSafeEqual(sha256(clientKey), this.keys.storedKey)) return undefined;
    return `v=${macs.server.digest(authMessage).toString('base64')}`;
  }
}

/** PBKDF2 results for server logins, so opening many server connections costs one PBKDF2. */
const saltedCache = new Map<string, Buffer>();

/** Client side of one exchange, for pgway logging in to a server. */
export class ScramClientExchange {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature = '';

  constructor(private readonly password: string) {}

  first(): string {
    this.clientFirstBare = `n=*,r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  /** Returns client-final-message; throws when server-first is malformed or unsafe. */
  final(serverFirst: string): string {
    const attrs = attributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce?.startsWith(this.clientNonce) || !salt || !Number.isInteger(iterations) || iterations < 1) {
      throw new Error('malformed SCRAM server-first-message');
    }
    const cacheKey = `${iterations}:${salt}:${this.password}`;
    let salted = saltedCache.get(cacheKey);
    if (!salted) {
      salted = saltedPassword(this.password, Buffer.from(salt, 'base64'), iterations);
      if (saltedCache.size > 1000) saltedCache.clear();
      saltedCache.set(cacheKey, salted);
    }
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientKey = hmac(salted, 'Client Key');
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage).toString('base64');
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  verify(serverFinal: string): boolean {
    return attributes(serverFinal).get('v') === this.expectedServerSignature;
  }
}

// --- md5 ----------------------------------------------------------------------------------------

const md5hex = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

/** PostgreSQL's stored md5 form: "md5" + md5(password + user). */
export const md5Stored = (password: string, user: string): string => `md5${md5hex(password + user)}`;

/** What a client sends for an md5 challenge, computed from the stored form. */
export function md5Response(stored: string, salt: Buffer): string {
  return `md5${md5hex(Buffer.concat([Buffer.from(stored.slice(3)), salt]))}`;
}
