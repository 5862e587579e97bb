/**
 * The server side of client authentication, one exchange per login: SCRAM-SHA-256 from stored
 * keys, md5 from a plaintext or stored md5 password, or trust. Unknown users go through a mock
 * exchange of the configured method, with a salt of their own, and fail the same way, so a client
 * cannot probe which user names exist.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthMethod } from '../config/schema.js';
import { InvalidAuthorizationError, InvalidPasswordError, ProtocolViolationError } from '../errors.js';
import { readCString } from '../wire/decode.js';
import * as msg from '../wire/messages.js';
import {
  md5Response,
  md5Stored,
  parseScramVerifier,
  SCRAM_ITERATIONS,
  ScramServerExchange,
  scramKeysFromPassword,
  type ScramKeys,
} from '../wire/scram.js';

/** What pgway knows about a user's secret, prepared once at config load. */
export interface UserSecret {
  name: string;
  method: AuthMethod;
  scram?: ScramKeys;
  /** PostgreSQL's "md5..." form, when a plaintext or md5 password is configured. */
  md5?: string;
}

export function prepareUserSecret(name: string, method: AuthMethod, password: string | undefined): UserSecret {
  const secret: UserSecret = { name, method };
  if (password === undefined) return secret;
  const verifier = parseScramVerifier(password);
  if (verifier) {
    secret.scram = verifier;
  } else if (/^md5[0-9a-f]{32}$/.test(password)) {
    secret.md5 = password;
  } else {
    secret.scram = scramKeysFromPassword(password);
    secret.md5 = md5Stored(password, name);
  }
  return secret;
}

/** The per-process secret unknown users' salts are derived from (PostgreSQL: scram_mock_salt). */
const mockSaltKey = randomBytes(32);
const mockKey = Buffer.alloc(32);

/**
 * SCRAM keys for a user name pgway does not know: the salt is stable per name and differs between
 * names, as real users' salts do, so the server-first-message does not tell the two apart. No
 * proof matches (the exchange fails without a secret anyway).
 */
function mockKeysFor(user: string): ScramKeys {
  const salt = createHmac('sha256', mockSaltKey).update(user).digest().subarray(0, 16);
  return { iterations: SCRAM_ITERATIONS, salt, storedKey: mockKey, serverKey: mockKey };
}

export type AuthStep =
  | { kind: 'send'; frame: Buffer }
  | { kind: 'ok'; frames: Buffer[] }
  | { kind: 'fail'; error: Error };

export class ClientAuth {
  private scram: ScramServerExchange | undefined;
  private md5Salt: Buffer | undefined;
  private stage: 'start' | 'sasl-initial' | 'sasl-first' | 'sasl-final' | 'md5' | 'done' = 'start';

  /** `unknownUserMethod` is auth.method: an unknown user is challenged as a configured user would be. */
  constructor(
    private readonly user: string,
    private readonly secret: UserSecret | undefined,
    private readonly unknownUserMethod: AuthMethod = 'scram-sha-256',
  ) {}

  /** The first message to the client: a challenge, or AuthenticationOk for trust. */
  begin(): AuthStep {
    const method = this.secret?.method ?? this.unknownUserMethod;
    if (method === 'trust' && this.secret) {
      this.stage = 'done';
      return { kind: 'ok', frames: [msg.AUTH_OK] };
    }
    if (method === 'md5' && (this.secret?.md5 || !this.secret)) {
      this.md5Salt = randomBytes(4);
      this.stage = 'md5';
      return { kind: 'send', frame: msg.authMD5(this.md5Salt) };
    }
    if (this.secret && !this.secret.scram) {
      return {
        kind: 'fail',
        error: new InvalidAuthorizationError(`user "${this.user}" has no password usable for ${method} authentication`),
      };
    }
    // Unknown users get a mock exchange and fail at the proof.
    this.scram = new ScramServerExchange(this.secret?.scram ?? mockKeysFor(this.user));
    this.stage = 'sasl-initial';
    return { kind: 'send', frame: msg.authSASL(['SCRAM-SHA-256']) };
  }

  /** Handles one PasswordMessage-family frame ('p'). */
  private onClientFirst(clientFirst: string): AuthStep {
    const serverFirst = this.scram!.first(clientFirst);
    if (!serverFirst) return { kind: 'fail', error: new ProtocolViolationError('malformed SCRAM client-first-message') };
    this.stage = 'sasl-final';
    return { kind: 'send', frame: msg.authSASLContinue(serverFirst) };
  }

  onPassword(frame: Buffer, start: number, end: number): AuthStep {
    switch (this.stage) {
      case 'sasl-initial': {
        const [mechanism, afterName] = readCString(frame, start + 5, end);
        if (mechanism !== 'SCRAM-SHA-256') {
          return { kind: 'fail', error: new ProtocolViolationError(`unsupported SASL mechanism "${mechanism}"`) };
        }
        // As PostgreSQL reads it: the length of the client-first-message (-1: none yet), which must be all there is.
        const len = afterName + 4 <= end ? frame.readInt32BE(afterName) : -2;
        const bodyEnd = afterName + 4 + Math.max(len, 0);
        if (len < -1 || bodyEnd > end) return { kind: 'fail', error: new ProtocolViolationError('insufficient data left in message') };
        if (bodyEnd !== end) return { kind: 'fail', error: new ProtocolViolationError('invalid message format') };
        if (len === -1) {
          // No initial response: an empty challenge, and the client-first-message comes next.
          this.stage = 'sasl-first';
          return { kind: 'send', frame: msg.authSASLContinue('') };
        }
        return this.onClientFirst(frame.toString('utf8', afterName + 4, end));
      }
      case 'sasl-first':
        return this.onClientFirst(frame.toString('utf8', start + 5, end));
      case 'sasl-final': {
        const serverFinal = this.scram!.final(frame.toString('utf8', start + 5, end));
        this.stage = 'done';
        if (!serverFinal || !this.secret) return { kind: 'fail', error: new InvalidPasswordError(this.user) };
        return { kind: 'ok', frames: [msg.authSASLFinal(serverFinal), msg.AUTH_OK] };
      }
      case 'md5': {
        const [answer, afterAnswer] = readCString(frame, start + 5, end);
        // As PostgreSQL checks it: the password is the whole message.
        if (afterAnswer !== end) return { kind: 'fail', error: new ProtocolViolationError('invalid password packet size') };
        this.stage = 'done';
        if (!this.secret) return { kind: 'fail', error: new InvalidPasswordError(this.user) };
        const expected = Buffer.from(md5Response(this.secret.md5!, this.md5Salt!));
        const given = Buffer.from(answer);
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          return { kind: 'fail', error: new InvalidPasswordError(this.user) };
        }
        return { kind: 'ok', frames: [msg.AUTH_OK] };
      }
      default:
        return { kind: 'fail', error: new ProtocolViolationError('unexpected password message') };
    }
  }
}
