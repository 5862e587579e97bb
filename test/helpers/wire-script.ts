/**
 * Scripts of hand-made protocol messages, for tests that compare pgway with a direct connection
 * message for message: a pg login whose socket is then taken over, the frontend messages, and the
 * backend's answers as short strings (E:<sqlstate>, D:<values>, C:<tag>, Z:<status>...).
 */
import type net from 'node:net';
import pg from 'pg';
import { afterEach } from 'vitest';
import type { TestGateway } from '../harness/gateway.js';
import { lab, pgUrl } from '../harness/lab.js';
import { cstring, dataRowValues, errorFields, RawClient, typedMessage, type BackendMessage } from './raw-client.js';

/** Where a script runs: PostgreSQL directly (as app), or a gateway in front of it. */
export type Target = TestGateway | 'direct';

/**
 * Raw clients logged in as app at a Target, for the file that calls this: each is closed after its
 * test, with whatever else the test puts in `cleanups` (registers an afterEach).
 */
export function rawTargets(): {
  raw: (t: Target) => Promise<RawClient>;
  cleanups: (() => unknown)[];
  /** Runs [client, message] steps in order, each client its own connection; the answers, one list per step. */
  scenario: (t: Target, steps: [string, Buffer][]) => Promise<string[][]>;
  /** The same, all steps from one client. */
  script: (t: Target, steps: Buffer[]) => Promise<string[][]>;
} {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const raw = (t: Target): Promise<RawClient> =>
    rawAfterLogin(t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : t.url(), (end) => cleanups.push(end));
  const scenario = async (t: Target, steps: [string, Buffer][]): Promise<string[][]> => {
    const clients = new Map<string, RawClient>();
    const out: string[][] = [];
    for (const [who, bytes] of steps) {
      let c = clients.get(who);
      if (!c) {
        c = await raw(t);
        clients.set(who, c);
      }
      c.write(bytes);
      out.push(await answers(c).catch((e: Error) => [`timeout: ${e.message}`]));
    }
    return out;
  };
  const script = (t: Target, steps: Buffer[]): Promise<string[][]> => scenario(t, steps.map((bytes) => ['', bytes]));
  return { raw, cleanups, scenario, script };
}

/** Logs in with pg (SCRAM) at `url`, then takes its socket over; `onClose` gets what ends it. */
export async function rawAfterLogin(url: string, onClose: (end: () => void) => void): Promise<RawClient> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const socket = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
  socket.removeAllListeners('data');
  socket.setNoDelay(true);
  const Ctor = RawClient as unknown as new (s: net.Socket) => RawClient;
  onClose(() => socket.destroy());
  return new Ctor(socket);
}

// --- frontend messages ----------------------------------------------------------------------------

export const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
export const i16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
export const i32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

export const P = (name: string, sql: string): Buffer => typedMessage('P', cat(cstring(name), cstring(sql), i16(0)));
/**
 * An unnamed Parse whose text is not valid UTF-8 (`SELECT '` then 0xc3 0x28): PostgreSQL fails it as it
 * reads it (22021), before it drops the unnamed statement, which stays.
 */
export const INVALID_UTF8_PARSE = typedMessage('P', cat(cstring(''), Buffer.from([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0x27, 0xc3, 0x28, 0x27, 0x00]), i16(0)));
export function B(stmt: string, values: (string | Buffer)[] = [], portal = ''): Buffer {
  const params = values.map((v) => { const b = Buffer.isBuffer(v) ? v : Buffer.from(v); return cat(i32(b.length), b); });
  return typedMessage('B', cat(cstring(portal), cstring(stmt), i16(0), i16(values.length), ...params, i16(0)));
}
export const E = (portal = '', maxRows = 0): Buffer => typedMessage('E', cat(cstring(portal), i32(maxRows)));
export const D = (kind: 'S' | 'P', name: string): Buffer => typedMessage('D', cat(Buffer.from(kind), cstring(name)));
export const C = (kind: 'S' | 'P', name: string): Buffer => typedMessage('C', cat(Buffer.from(kind), cstring(name)));
export const S = typedMessage('S');
export const H = typedMessage('H');
export const X = typedMessage('X');
export const Q = (sql: string): Buffer => typedMessage('Q', cstring(sql));
export const copyData = (s: string): Buffer => typedMessage('d', Buffer.from(s));
export const COPY_DONE = typedMessage('c');
export const copyFail = (why: string): Buffer => typedMessage('f', cstring(why));
/** FunctionCall: text (0) or binary (1) arguments, result in `resultFormat`. */
export function F(oid: number, args: Buffer[], argFormat: 0 | 1, resultFormat: 0 | 1): Buffer {
  return typedMessage('F', cat(i32(oid), i16(1), i16(argFormat), i16(args.length), ...args.map((a) => cat(i32(a.length), a)), i16(resultFormat)));
}

// --- backend messages -------------------------------------------------------------------------------

/** One message as a short string: E:<sqlstate>, D:<values>, C:<tag>, d:<copy data>, V:<result>, Z:<status>, else its letter. */
export function summary(m: BackendMessage): string {
  switch (m.type) {
    case 'E': return `E:${errorFields(m.body).get('C')}`;
    case 'D': return `D:${dataRowValues(m.body).join(',')}`;
    case 'C': return `C:${m.body.toString('utf8', 0, m.body.length - 1)}`;
    case 'Z': return `Z:${String.fromCharCode(m.body[0]!)}`;
    case 'd': return `d:${m.body.toString('utf8')}`;
    case 'V': return `V:${m.body.toString('hex')}`;
    default: return m.type;
  }
}

/** Whether a script's output shows `m`: ParameterStatus, notices and BackendKeyData are left out. */
export const shown = (m: BackendMessage): boolean => m.type !== 'S' && m.type !== 'N' && m.type !== 'K';

/** Reads `n` ReadyForQuery-terminated answers. */
export async function answers(r: RawClient, n = 1, timeoutMs = 5000): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const { message, before } = await r.readUntil('Z', timeoutMs);
    out.push(...before.filter(shown).map(summary), summary(message));
  }
  return out;
}

/** Reads messages until one of `type` (included). */
export async function upTo(r: RawClient, type: string, timeoutMs = 5000): Promise<string[]> {
  const { message, before } = await r.readUntil(type, timeoutMs);
  return [...before.filter(shown).map(summary), summary(message)];
}
