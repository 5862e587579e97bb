/**
 * Builders for the messages pgway sends itself, to clients (backend messages) and to servers
 * (frontend messages). Fixed frames are built once at module load.
 */
import { Backend, Frontend, StartupCode } from './codes.js';
import { decodeErrorFields } from './decode.js';

/** Reserves the 5-byte header, grows by doubling, fills code + length last (pg-protocol's idea). */
export class MessageWriter {
  private buf: Buffer;
  private offset = 5;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.offset + n));
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.offset); // | 0: unsigned values (cancel secrets) keep their bits
    this.offset += 4;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.offset);
    this.offset += 2;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.offset++] = v;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.offset);
    this.offset += n;
    this.buf[this.offset++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.offset);
    this.offset += b.length;
    return this;
  }

  /** A typed message: code byte + int32 length (which counts itself, not the code). */
  frame(code: number): Buffer {
    this.buf[0] = code;
    this.buf.writeInt32BE(this.offset - 1, 1);
    return this.buf.subarray(0, this.offset);
  }

  /** An untyped startup-phase packet: int32 length (counting itself) + body. */
  packet(): Buffer {
    const out = this.buf.subarray(1, this.offset);
    out.writeInt32BE(out.length, 0);
    return out;
  }
}

const w = (): MessageWriter => new MessageWriter();

// --- backend messages (pgway -> client) ---------------------------------------------------------

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

export interface ErrorFields {
  severity: Severity;
  sqlstate: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
  /** PostgreSQL's source file and routine, for errors pgway answers in the server's place. */
  file?: string | undefined;
  routine?: string | undefined;
}

export function errorResponse(f: ErrorFields): Buffer {
  const m = w()
    .byte(0x53).cstring(f.severity) // S
    .byte(0x56).cstring(f.severity) // V (non-localized severity)
    .byte(0x43).cstring(f.sqlstate) // C
    .byte(0x4d).cstring(f.message); // M
  if (f.detail) m.byte(0x44).cstring(f.detail); // D
  if (f.hint) m.byte(0x48).cstring(f.hint); // H
  if (f.file) m.byte(0x46).cstring(f.file); // F
  if (f.routine) m.byte(0x52).cstring(f.routine); // R
  return m.byte(0).frame(Backend.ErrorResponse);
}

/** An ErrorResponse or NoticeResponse like the one in `frame`, with `"from"` written `"to"` in each field. */
export function renameInError(frame: Buffer, start: number, end: number, from: string, to: string): Buffer {
  const m = w();
  for (const [type, value] of decodeErrorFields(frame, start, end)) {
    m.byte(type.charCodeAt(0)).cstring(value.replaceAll(`"${from}"`, `"${to}"`));
  }
  return m.byte(0).frame(frame[start]!);
}

export const AUTH_OK = w().int32(0).frame(Backend.Authentication);
export const authMD5 = (salt: Buffer): Buffer => w().int32(5).bytes(salt).frame(Backend.Authentication);
export const authSASL = (mechanisms: string[]): Buffer => {
  const m = w().int32(10);
  for (const mech of mechanisms) m.cstring(mech);
  return m.byte(0).frame(Backend.Authentication);
};
export const authSASLContinue = (data: string): Buffer =>
  w().int32(11).bytes(Buffer.from(data)).frame(Backend.Authentication);
export const authSASLFinal = (data: string): Buffer =>
  w().int32(12).bytes(Buffer.from(data)).frame(Backend.Authentication);

export const parameterStatus = (name: string, value: string): Buffer =>
  w().cstring(name).cstring(value).frame(Backend.ParameterStatus);

export const backendKeyData = (pid: number, secret: number): Buffer =>
  w().int32(pid).int32(secret).frame(Backend.BackendKeyData);

export const negotiateProtocolVersion = (minor: number, unrecognized: string[]): Buffer => {
  const m = w().int32((3 << 16) | minor).int32(unrecognized.length);
  for (const opt of unrecognized) m.cstring(opt);
  return m.frame(Backend.NegotiateProtocolVersion);
};

export const PARSE_COMPLETE = w().frame(Backend.ParseComplete);
export const CLOSE_COMPLETE = w().frame(Backend.CloseComplete);

export const READY_IDLE = w().byte(0x49).frame(Backend.ReadyForQuery);
export const READY_IN_TX = w().byte(0x54).frame(Backend.ReadyForQuery);
export const READY_FAILED = w().byte(0x45).frame(Backend.ReadyForQuery);

/** Single-byte answers to SSLRequest / GSSENCRequest. */
export const SSL_YES = Buffer.from('S');
export const SSL_NO = Buffer.from('N');

// --- frontend messages (pgway -> server) --------------------------------------------------------

export function startupMessage(params: Iterable<[string, string]>): Buffer {
  const m = w().int32(StartupCode.Protocol30);
  for (const [k, v] of params) m.cstring(k).cstring(v);
  return m.byte(0).packet();
}

export const sslRequest = (): Buffer => w().int32(StartupCode.SSLRequest).packet();

export const cancelRequest = (pid: number, secret: number): Buffer =>
  w().int32(StartupCode.CancelRequest).int32(pid).int32(secret).packet();

export const passwordMessage = (password: string): Buffer => w().cstring(password).frame(Frontend.Password);

export const saslInitialResponse = (mechanism: string, data: string): Buffer => {
  const body = Buffer.from(data);
  return w().cstring(mechanism).int32(body.length).bytes(body).frame(Frontend.Password);
};

export const saslResponse = (data: string): Buffer => w().bytes(Buffer.from(data)).frame(Frontend.Password);

export const query = (sql: string): Buffer => w().cstring(sql).frame(Frontend.Query);
/** A Parse with no parameter types given. */
export const parse = (name: string, sql: string): Buffer => w().cstring(name).cstring(sql).int16(0).frame(Frontend.Parse);

/** Describe of a prepared statement ('S'), and Flush: the server answers what it has without a Sync. */
export const describeStatement = (name: string): Buffer => w().byte(0x53).cstring(name).frame(Frontend.Describe);
export const FLUSH = w().frame(Frontend.Flush);
export const SYNC = w().frame(Frontend.Sync);

export const copyFail = (reason: string): Buffer => w().cstring(reason).frame(Frontend.CopyFail);

export const TERMINATE = w().frame(Frontend.Terminate);
