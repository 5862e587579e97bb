/**
 * Opens the socket to a PostgreSQL server: TCP or unix socket, then TLS as the target's sslmode
 * asks (SSLRequest first, as libpq does). Resolves with a socket ready for the StartupMessage.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { ServerTarget } from '../config/schema.js';
import { ServerConnectError } from '../errors.js';
import { connectDirect, type DirectReader, type ReadBufferSize } from '../wire/direct-reads.js';
import { sslRequest } from '../wire/messages.js';

export function socketPath(target: Pick<ServerTarget, 'host' | 'port'>): string | undefined {
  return target.host.startsWith('/') ? `${target.host}/.s.PGSQL.${target.port}` : undefined;
}

/** Server connections are few and carry whole result sets: one full-size read buffer each. */
const READ_BUFFER: ReadBufferSize = { minBytes: 64 * 1024, maxBytes: 64 * 1024 };

function connectPlain(target: ServerTarget, reader?: DirectReader): net.Socket {
  const path = socketPath(target);
  const where: net.NetConnectOpts = path ? { path } : { host: target.host, port: target.port, noDelay: true };
  return reader ? connectDirect(where, reader, READ_BUFFER) : net.connect(where);
}

function awaitConnect(socket: net.Socket, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ServerConnectError(`timed out after ${timeoutMs} ms connecting to ${what}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve();
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new ServerConnectError(`could not connect to ${what}: ${err.message}`, { cause: err }));
    };
    socket.once('error', onError);
  });
}

function readSslAnswer(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      cleanup();
      // Bytes after the single answer byte would be a man-in-the-middle injection (CVE-2021-23222).
      if (chunk.length !== 1) reject(new ServerConnectError('server sent unexpected data after its SSL answer'));
      else resolve(chunk[0]!);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new ServerConnectError(`connection lost during SSL negotiation: ${err.message}`, { cause: err }));
    };
    const onClose = (): void => onError(new Error('closed'));
    const cleanup = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

function upgrade(socket: net.Socket, target: ServerTarget, timeoutMs: number, signal?: AbortSignal): Promise<tls.TLSSocket> {
  const verify = target.sslmode === 'verify-ca' || target.sslmode === 'verify-full';
  const options: tls.ConnectionOptions = { socket, rejectUnauthorized: verify, servername: target.host };
  if (target.sslrootcert) options.ca = readFileSync(target.sslrootcert);
  if (target.sslmode === 'verify-ca') options.checkServerIdentity = () => undefined;
  return new Promise((resolve, reject) => {
    const secure = tls.connect(options);
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new ServerConnectError(`TLS handshake with ${target.host}:${target.port} timed out`));
    }, timeoutMs);
    const onAbort = (): void => {
      secure.destroy(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const settled = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    secure.once('secureConnect', () => {
      settled();
      secure.removeAllListeners('error');
      resolve(secure);
    });
    secure.once('error', (err) => {
      settled();
      reject(new ServerConnectError(`TLS handshake with ${target.host}:${target.port} failed: ${err.message}`, { cause: err }));
    });
  });
}

/**
 * `reader`, when given, receives the socket's bytes directly (see DirectReader) on a connection
 * that will not use TLS; the caller must then not listen for 'data'. Returns whether it is in use.
 * `signal`: the caller's deadline for the whole login; aborting it destroys the socket at any step
 * (a server that accepts and never answers the SSLRequest is otherwise waited for as long as it
 * answers keepalives).
 */
export async function openServerSocket(
  target: ServerTarget,
  timeoutMs: number,
  reader?: DirectReader,
  signal?: AbortSignal,
): Promise<{ socket: net.Socket; direct: boolean }> {
  const what = socketPath(target) ?? `${target.host}:${target.port}`;
  const wantsTls = !socketPath(target) && target.sslmode !== 'disable' && target.sslmode !== 'allow';
  const direct = reader !== undefined && !wantsTls;
  signal?.throwIfAborted();
  const socket = connectPlain(target, direct ? reader : undefined);
  const onAbort = (): void => {
    socket.destroy(signal!.reason as Error);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await awaitConnect(socket, timeoutMs, what);
    socket.setKeepAlive(true, 60_000);
    if (!wantsTls) return { socket, direct };
    socket.write(sslRequest());
    const answer = await readSslAnswer(socket);
    if (answer === 0x53 /* S */) return { socket: await upgrade(socket, target, timeoutMs, signal), direct: false };
    if (target.sslmode === 'prefer') return { socket, direct: false };
    socket.destroy();
    throw new ServerConnectError(`server ${what} does not support SSL, but sslmode is ${target.sslmode}`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
