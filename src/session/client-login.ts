/**
 * A client's way in, up to its password check: the startup packets (SSLRequest, GSSENCRequest,
 * CancelRequest, StartupMessage), the switch to TLS, the checks PostgreSQL makes of a
 * StartupMessage, and the password exchange (ClientAuth). The session keeps the socket: it hands
 * this the bytes that come before the StartupMessage and the frames that follow it until
 * authentication ends, and hears what happened through LoginHost.
 */
import type tls from 'node:tls';
import type { UserConfig } from '../config/schema.js';
import { InvalidAuthorizationError, ProtocolViolationError, ShuttingDownError, TooManyClientsError } from '../errors.js';
import { Frontend } from '../wire/codes.js';
import { decodeStartupPacket, unsupportedProtocol, type StartupPacket } from '../wire/decode.js';
import * as msg from '../wire/messages.js';
import { ClientAuth, type AuthStep } from './client-auth.js';
import { checkReplicationParam } from './replication-pipe.js';
import type { SessionContext } from './session-context.js';

/** PostgreSQL's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH), counted after its length word. */
const MAX_STARTUP_PACKET = 10_000 + 4;

const NO_BYTES = Buffer.alloc(0);

/** The "versions" of SSLRequest and GSSENCRequest: 1234.5679 and 1234.5680. */
const NEGOTIATE_MAJOR = 1234;
const NEGOTIATE_SSL_MINOR = 5679;
const NEGOTIATE_GSS_MINOR = 5680;

/** What a login needs from its session. */
export interface LoginHost {
  /** Whether the client's socket is a TLS socket by now. */
  readonly tls: boolean;
  /** Writes to the client, on whichever socket it has now. */
  send(bytes: Buffer): void;
  /** Whether the client's connection can become a TLS one (see ClientLink). */
  readonly canStartTls: boolean;
  /** The client came in through the Unix-domain socket: TLS does not exist there. */
  readonly unixSocket: boolean;
  /**
   * The client asked for TLS and gets it: its socket becomes a TLS socket from here on. With
   * `requestCert` it is asked for a certificate too (see clientCertificateError).
   */
  startTls(secureContext: tls.SecureContext, requestCert: boolean): void;
  /** Why the certificate the client presented over TLS does not verify (ClientLink's). */
  readonly clientCertificateError: string | undefined;
  /**
   * The connection carried a CancelRequest, now passed on: close it without a word, once `sent`
   * (the cancel under way, if any) settles.
   */
  endAfterCancel(sent: Promise<void> | undefined): void;
  /** The StartupMessage names who logs in; the session records it (SHOW CLIENTS, logs). */
  identify(params: Map<string, string>): void;
  /** Counts the client against max_client_conn; false when the limit is reached, unless `always`. */
  admit(always?: boolean): boolean;
}

/** `packets` until a StartupMessage passes its checks, then `password`; `cancelled` after a CancelRequest. */
type LoginPhase = 'packets' | 'password' | 'cancelled';

export class ClientLogin {
  private phase: LoginPhase = 'packets';
  /** Bytes of a startup packet not yet whole. */
  private pending: Buffer = NO_BYTES;
  private auth: ClientAuth | undefined;
  private user: UserConfig | undefined;
  /** An SSLRequest, or a GSSENCRequest, was answered: another is refused. */
  private sslAnswered = false;
  private gssAnswered = false;

  constructor(
    private readonly ctx: SessionContext,
    private readonly host: LoginHost,
  ) {}

  /**
   * Bytes that came before the StartupMessage was accepted. Returns the bytes after it (perhaps
   * none) once a StartupMessage passed its checks, undefined while more startup packets may come.
   * Throws a GatewayError to refuse the client.
   */
  onBytes(chunk: Buffer): Buffer | undefined {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (data.length >= 4 && this.phase === 'packets') {
      const len = data.readInt32BE(0);
      if (len < 8 || len > MAX_STARTUP_PACKET) throw new ProtocolViolationError(`invalid length of startup packet: ${len}`);
      if (data.length < len) break;
      const packet = decodeStartupPacket(data.subarray(0, len));
      data = data.subarray(len);
      if (packet.kind === 'ssl' && data.length > 0) {
        // Bytes sent before the TLS handshake would be read as if they were protected.
        throw new ProtocolViolationError('received unencrypted data after SSL request');
      }
      this.onPacket(packet);
    }
    if (this.phase === 'password') {
      this.pending = NO_BYTES;
      return data;
    }
    // The read buffer is reused: keep a copy of a packet still incomplete.
    this.pending = data.length ? Buffer.from(data) : NO_BYTES;
    return undefined;
  }

  /** The first authentication message, once onBytes accepted a StartupMessage. */
  beginAuth(): AuthStep {
    return this.auth!.begin();
  }

  /** A frame sent during authentication, where only password messages belong. */
  onFrame(code: number, buf: Buffer, start: number, end: number): AuthStep {
    if (code !== Frontend.Password || this.phase !== 'password') {
      throw new ProtocolViolationError(`expected password response, got message type ${String.fromCharCode(code)}`);
    }
    return this.auth!.onPassword(buf, start, end);
  }

  private onPacket(packet: StartupPacket): void {
    const certificateError = this.host.tls ? this.host.clientCertificateError : undefined;
    if (certificateError !== undefined) {
      // PostgreSQL fails the handshake; Node cannot without refusing clients that sent no certificate.
      throw new InvalidAuthorizationError(`certificate verify failed: the client certificate is not trusted by listen.tls.ca (${certificateError})`);
    }
    switch (packet.kind) {
      case 'ssl': {
        // One SSLRequest per connection: PostgreSQL reads a second as a protocol it does not speak.
        if (this.sslAnswered) throw unsupportedProtocol(NEGOTIATE_MAJOR, NEGOTIATE_SSL_MINOR);
        this.sslAnswered = true;
        const secureContext = this.ctx.tlsContext();
        // A connection accepted while the listener offered no TLS stays plain (a RELOAD that turns TLS on applies to new ones).
        // PostgreSQL answers N on a Unix socket too.
        if (!secureContext || this.host.tls || !this.host.canStartTls || this.host.unixSocket) {
          this.host.send(msg.SSL_NO);
          return;
        }
        this.host.send(msg.SSL_YES);
        // listen.tls.ca, as PostgreSQL's ssl_ca_file: a client certificate is asked for and checked.
        this.host.startTls(secureContext, this.ctx.config().listen.tls?.ca !== undefined);
        this.gssAnswered = true; // inside TLS, a GSSENCRequest is out of place too
        return;
      }
      case 'gssenc':
        // A second GSSENCRequest, as a second SSLRequest, reads to PostgreSQL as a protocol it does not speak.
        if (this.gssAnswered) throw unsupportedProtocol(NEGOTIATE_MAJOR, NEGOTIATE_GSS_MINOR);
        this.gssAnswered = true;
        this.host.send(msg.SSL_NO);
        return;
      case 'cancel':
        this.phase = 'cancelled';
        this.host.endAfterCancel(this.ctx.cancel(packet.pid, packet.secret));
        return;
      case 'startup':
        this.onStartupMessage(packet.params, packet.minor, packet.protocolOptions);
    }
  }

  private onStartupMessage(params: Map<string, string>, minor: number, protocolOptions: string[]): void {
    const config = this.ctx.config();
    this.host.identify(params);
    const user = params.get('user') ?? '';
    if (this.ctx.shuttingDown) throw new ShuttingDownError();
    checkReplicationParam(params.get('replication'));
    if (!user) throw new InvalidAuthorizationError('no PostgreSQL user name specified in startup packet');
    // A Unix-socket client cannot use TLS (libpq never asks there), so the requirement is not its (as in PgBouncer).
    if (config.listen.tls?.mode === 'require' && !this.host.tls && !this.host.unixSocket) {
      throw new InvalidAuthorizationError('pgway requires TLS: connect with sslmode=require');
    }
    // The admin console counts, but is never refused, as PgBouncer does not limit its admin
    // database: an operator can still look in when the clients have used up every slot.
    if (!this.host.admit(this.ctx.isAdminDatabase(params.get('database') || user))) throw new TooManyClientsError(config.limits.maxClientConn);
    // We speak 3.0 and no protocol extensions; tell a client that asked for more, as PostgreSQL does.
    if (minor > 0 || protocolOptions.length > 0) this.host.send(msg.negotiateProtocolVersion(0, protocolOptions));
    this.user = this.ctx.user(user);
    // An unknown user is challenged as configured users are by default, so the challenge does not tell them apart.
    const unknownUserMethod = config.auth.method === 'md5' ? 'md5' : 'scram-sha-256';
    this.auth = new ClientAuth(user, this.user ? this.ctx.userSecret(user) : undefined, unknownUserMethod);
    this.phase = 'password';
  }
}
