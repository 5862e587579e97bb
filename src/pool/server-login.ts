/**
 * The frames of pgway's login to a server, up to the server's first ReadyForQuery: the password
 * exchange (ServerAuthenticator), then what the server says about itself (ParameterStatus,
 * BackendKeyData). A refusal keeps the server's own SQLSTATE, message, detail and hint.
 */
import { ServerConnectError, ServerRefusedError } from '../errors.js';
import { Backend, TxStatus } from '../wire/codes.js';
import { decodeErrorFields, decodeParameterStatus } from '../wire/decode.js';
import { ServerAuthenticator, type ServerCredentials } from './server-auth.js';

/** What a login frame asks for: bytes to send back, the end of the login, or nothing yet. */
export type LoginStep = Buffer | Error | 'ready' | undefined;

export class ServerLogin {
  pid = 0;
  secret = 0;
  txStatus: number = TxStatus.Idle;
  /** Why the server refused the login, with where it is: for the log, not for clients. */
  refusal: string | undefined;
  private readonly auth: ServerAuthenticator;

  constructor(
    credentials: ServerCredentials,
    /** Receives the server's ParameterStatus values. */
    private readonly params: Map<string, string>,
    private readonly describe: () => string,
  ) {
    this.auth = new ServerAuthenticator(credentials, describe);
  }

  onFrame(code: number, buf: Buffer, start: number, end: number): LoginStep {
    switch (code) {
      case Backend.Authentication:
        return this.auth.onAuthentication(buf, start, end);
      case Backend.ParameterStatus: {
        const [name, value] = decodeParameterStatus(buf, start, end);
        this.params.set(name, value);
        return undefined;
      }
      case Backend.BackendKeyData:
        this.pid = buf.readInt32BE(start + 5);
        this.secret = buf.readUInt32BE(start + 9);
        return undefined;
      case Backend.ReadyForQuery:
        this.txStatus = buf[start + 5]!;
        return 'ready';
      case Backend.ErrorResponse: {
        const fields = decodeErrorFields(buf, start, end);
        const message = fields.get('M') ?? 'login failed';
        this.refusal = `${this.describe()}: ${message}`;
        return new ServerRefusedError(fields.get('C') ?? '08006', message, { detail: fields.get('D'), hint: fields.get('H') });
      }
      case Backend.NoticeResponse:
      case Backend.NegotiateProtocolVersion:
        return undefined;
      default:
        return new ServerConnectError(`unexpected message '${String.fromCharCode(code)}' during login`);
    }
  }
}
