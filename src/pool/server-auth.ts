/**
 * pgway logging in to a server: answers whatever the server asks (SCRAM-SHA-256, md5, cleartext)
 * with the credentials configured for the pool.
 */
import { ServerAuthError } from '../errors.js';
import { AuthCode } from '../wire/codes.js';
import { readCString } from '../wire/decode.js';
import * as msg from '../wire/messages.js';
import { md5Response, md5Stored, ScramClientExchange } from '../wire/scram.js';

export interface ServerCredentials {
  user: string;
  /** Plaintext, or PostgreSQL's stored "md5..." form (usable only for md5 challenges). */
  password?: string | undefined;
}

const isMd5Hash = (pw: string): boolean => pw.startsWith('md5') && pw.length === 35;

export class ServerAuthenticator {
  private scram: ScramClientExchange | undefined;

  constructor(
    private readonly credentials: ServerCredentials,
    private readonly describe: () => string,
  ) {}

  /** Handles one Authentication message: the answer to send, nothing (Ok), or why login cannot go on. */
  onAuthentication(buf: Buffer, start: number, end: number): Buffer | Error | undefined {
    const type = buf.readInt32BE(start + 5);
    const password = this.credentials.password;
    const missing = (): Error =>
      new ServerAuthError(
        `${this.describe()} asks for a password and pgway has none for user "${this.credentials.user}" ` +
          '(give the user a plaintext password or server_password in the config)',
      );
    switch (type) {
      case AuthCode.Ok:
        return undefined;
      case AuthCode.CleartextPassword:
        if (password === undefined) return missing();
        if (isMd5Hash(password)) return new ServerAuthError(`${this.describe()} asks for a cleartext password; pgway only has an md5 hash`);
        return msg.passwordMessage(password);
      case AuthCode.MD5Password: {
        if (password === undefined) return missing();
        const stored = isMd5Hash(password) ? password : md5Stored(password, this.credentials.user);
        return msg.passwordMessage(md5Response(stored, buf.subarray(start + 9, start + 13)));
      }
      case AuthCode.SASL: {
        const mechanisms: string[] = [];
        let pos = start + 9;
        while (pos < end && buf[pos] !== 0) {
          const [mech, next] = readCString(buf, pos, end);
          mechanisms.push(mech);
          pos = next;
        }
        if (!mechanisms.includes('SCRAM-SHA-256')) {
          return new ServerAuthError(`${this.describe()} offers no supported SASL mechanism (${mechanisms.join(', ')})`);
        }
        if (password === undefined) return missing();
        this.scram = new ScramClientExchange(password);
        return msg.saslInitialResponse('SCRAM-SHA-256', this.scram.first());
      }
      case AuthCode.SASLContinue:
        if (!this.scram) break;
        try {
          return msg.saslResponse(this.scram.final(buf.toString('utf8', start + 9, end)));
        } catch (err) {
          return new ServerAuthError(`${this.describe()}: ${(err as Error).message}`);
        }
      case AuthCode.SASLFinal:
        if (this.scram?.verify(buf.toString('utf8', start + 9, end))) return undefined;
        return new ServerAuthError(`${this.describe()}: the server's SCRAM signature is wrong`);
    }
    return new ServerAuthError(`${this.describe()} asks for unsupported authentication (code ${type})`);
  }
}
