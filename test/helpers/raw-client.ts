/**
 * Byte-level protocol helpers for tests that must send what no driver would: startup packets of any
 * version, frames with lying length fields, half frames. `RawClient` reads one whole backend message
 * at a time, with a deadline, and reports when the peer closed.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';

export const PROTOCOL_3_0 = 3 << 16;
export const CANCEL_REQUEST_CODE = 80877102;

/** An untyped startup-phase packet: int32 length (counting itself), int32 code, then `body`. */
export function untypedPacket(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(code, 4);
  return Buffer.concat([head, body]);
}

/** A StartupMessage for `version` (major << 16 | minor) with name/value pairs, NUL-terminated. */
export function startupPacket(params: Record<string, string>, version = PROTOCOL_3_0): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(params)) parts.push(cstring(name), cstring(value));
  parts.push(Buffer.from([0]));
  return untypedPacket(version, Buffer.concat(parts));
}

export function cancelRequestPacket(pid: number, secret: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32BE(pid, 0);
  body.writeUInt32BE(secret >>> 0, 4);
  return untypedPacket(CANCEL_REQUEST_CODE, body);
}

/** A typed frontend message: code byte, int32 length (counting itself), body. */
export function typedMessage(code: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

export function queryMessage(sql: string): Buffer {
  return typedMessage('Q', cstring(sql));
}

export function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

/** PostgreSQL's md5 answer: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordMessage(user: string, password: string, salt: Buffer): Buffer {
  const inner = createHash('md5').update(password + user).digest('hex');
  const outer = createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
  return typedMessage('p', cstring(`md5${outer}`));
}

export interface BackendMessage {
  /** The message type letter, e.g. 'E', 'R', 'Z'. */
  type: string;
  body: Buffer;
}

/** ErrorResponse / NoticeResponse fields by their one-letter code (C = SQLSTATE, M = message, S = severity). */
export function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const type = String.fromCharCode(body[pos]!);
    const nul = body.indexOf(0, pos + 1);
    if (nul < 0) throw new Error('malformed error field');
    fields.set(type, body.toString('utf8', pos + 1, nul));
    pos = nul + 1;
  }
  return fields;
}

export class RawClient {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      this.notify();
    });
    socket.on('error', () => this.notify());
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  static connect(options: { host: string; port: number } | { path: string }, timeoutMs = 5000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(options);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`raw connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(new RawClient(socket));
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Bytes received and not read yet. */
  get pending(): Buffer {
    return this.buffered;
  }

  /** The next raw byte, or undefined when the peer closed first (for SSLRequest answers). */
  async readByte(timeoutMs = 5000): Promise<number | undefined> {
    await this.waitFor(() => this.buffered.length >= 1, timeoutMs);
    if (this.buffered.length === 0) return undefined;
    const byte = this.buffered[0]!;
    this.buffered = this.buffered.subarray(1);
    return byte;
  }

  /** The next whole backend message, or undefined when the peer closed before one arrived. */
  async readMessage(timeoutMs = 5000): Promise<BackendMessage | undefined> {
    const complete = (): boolean => this.buffered.length >= 5 && this.buffered.length >= 1 + this.buffered.readInt32BE(1);
    await this.waitFor(complete, timeoutMs);
    if (!complete()) {
      if (this.buffered.length > 0) throw new Error(`peer closed inside a message (${this.buffered.length} bytes left)`);
      return undefined;
    }
    const len = this.buffered.readInt32BE(1);
    const message = { type: String.fromCharCode(this.buffered[0]!), body: Buffer.from(this.buffered.subarray(5, 1 + len)) };
    this.buffered = this.buffered.subarray(1 + len);
    return message;
  }

  /** Reads messages until one of type `type` (returned) or ReadyForQuery/close (an error). */
  async readUntil(type: string, timeoutMs = 5000): Promise<{ message: BackendMessage; before: BackendMessage[] }> {
    const before: BackendMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.readMessage(Math.max(1, deadline - Date.now()));
      if (!message) throw new Error(`connection closed before a '${type}' message; got ${before.map((m) => m.type).join('')}`);
      if (message.type === type) return { message, before };
      before.push(message);
    }
  }

  /** Every message until the peer closes the connection. */
  async readToClose(timeoutMs = 5000): Promise<BackendMessage[]> {
    const messages: BackendMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.readMessage(Math.max(1, deadline - Date.now()));
      if (!message) return messages;
      messages.push(message);
    }
  }

  /** Resolves once the peer has closed; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.waitFor(() => false, timeoutMs);
    if (!this.ended) throw new Error(`peer did not close within ${timeoutMs} ms`);
  }

  /** Waits until `ready()` or the peer closed; throws on timeout while neither happened. */
  private async waitFor(ready: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready() && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${timeoutMs} ms (${this.buffered.length} bytes buffered)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private notify(): void {
    this.wake?.();
  }
}

/**
 * Logs in as a trust user over a raw socket (no password exchange) and reads up to the first
 * ReadyForQuery; returns the client with the BackendKeyData it was given.
 */
export async function rawTrustLogin(
  address: { host: string; port: number },
  params: Record<string, string>,
): Promise<{ client: RawClient; pid: number; secret: number; messages: BackendMessage[] }> {
  const client = await RawClient.connect(address);
  client.write(startupPacket(params));
  const { before } = await client.readUntil('Z');
  const key = before.find((m) => m.type === 'K');
  const failure = before.find((m) => m.type === 'E');
  if (failure) throw new Error(`login failed: ${errorFields(failure.body).get('M')}`);
  if (!key) throw new Error('no BackendKeyData before ReadyForQuery');
  return { client, pid: key.body.readInt32BE(0), secret: key.body.readUInt32BE(4), messages: before };
}

/** The column values of a DataRow body; null for SQL NULL. */
export function dataRowValues(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const values: (string | null)[] = [];
  let pos = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      values.push(null);
      continue;
    }
    values.push(body.toString('utf8', pos, pos + len));
    pos += len;
  }
  return values;
}

/** Reads one simple-query cycle's answer: rows (text) and error codes, up to ReadyForQuery. */
export async function readCycle(client: RawClient): Promise<{ rows: (string | null)[][]; errors: string[] }> {
  const { before } = await client.readUntil('Z');
  return {
    rows: before.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)),
    errors: before.filter((m) => m.type === 'E').map((m) => errorFields(m.body).get('C') ?? '?'),
  };
}

/**
 * What arrives within `ms`, until the server closes: errors as "severity sqlstate", other messages by
 * type (NoticeResponse and ParameterStatus left out), and '<open>' last if the connection stayed open.
 */
export async function answersWithin(c: RawClient, ms = 1500): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      const m = await c.readMessage(Math.max(1, deadline - Date.now()));
      if (!m) return out;
      if (m.type === 'N' || m.type === 'S') continue;
      out.push(m.type === 'E' ? `${errorFields(m.body).get('S')} ${errorFields(m.body).get('C')}` : m.type);
    }
  } catch {
    out.push('<open>');
    return out;
  }
}
