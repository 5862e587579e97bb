/**
 * For tests of clients that stop reading: what pgway queues towards its clients meanwhile, and a
 * reader for the flood of answers once they read again (too many for RawClient's message list).
 */
import type net from 'node:net';
import type { TestGateway } from '../harness/gateway.js';

/** Bytes pgway has queued towards its clients (the sessions' ClientLink.pending). */
export function queuedTowardsClients(gw: TestGateway): number {
  let n = 0;
  for (const s of (gw.gateway as unknown as { sessions: Set<{ pendingOut: number }> }).sessions) n += s.pendingOut;
  return n;
}

/**
 * Reads `socket` from now on, calling `visit` with each backend message's type and its last byte
 * (a ReadyForQuery's status); `visit` returns a value to end with. Rejects if the socket closes first.
 */
export function readEachMessage<T>(socket: net.Socket, visit: (type: string, lastByte: number) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let carry: Buffer = Buffer.alloc(0);
    let messages = 0;
    socket.on('close', () => reject(new Error(`closed after ${messages} messages`)));
    socket.on('data', (chunk: Buffer) => {
      const buf: Buffer = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      let at = 0;
      while (buf.length - at >= 5 && buf.length - at >= 1 + buf.readInt32BE(at + 1)) {
        const end = at + 1 + buf.readInt32BE(at + 1);
        messages++;
        const done = visit(String.fromCharCode(buf[at]!), buf[end - 1]!);
        if (done !== undefined) resolve(done);
        at = end;
      }
      carry = buf.subarray(at);
    });
    socket.resume();
  });
}
