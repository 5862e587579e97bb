import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketWriter } from './socket-writer.js';

/** A loopback connection: `local` is the end written to, `remote` the peer that reads. */
async function connectedPair(): Promise<{ local: net.Socket; remote: net.Socket; close(): void }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const local = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => local.once('connect', resolve));
  const remote = await accepted;
  server.close();
  return {
    local,
    remote,
    close: () => {
      local.destroy();
      remote.destroy();
    },
  };
}

function received(remote: net.Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  return new Promise((resolve, reject) => {
    remote.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= bytes) resolve(Buffer.concat(chunks));
    });
    remote.once('close', () => reject(new Error(`closed after ${total} of ${bytes} bytes`)));
  });
}

const numbered = (i: number, size: number): Buffer => Buffer.alloc(size, `${i % 10}`);

describe('SocketWriter', () => {
  let close: (() => void) | undefined;
  afterEach(() => close?.());

  it('keeps the order of its writes and of writes through the socket, corked or not', async () => {
    const pair = await connectedPair();
    close = pair.close;
    const writer = new SocketWriter(pair.local);
    const expected: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const piece = numbered(i, 1 + ((i * 37) % 200));
      expected.push(piece);
      if (i % 7 === 3) {
        pair.local.cork();
        pair.local.write(piece);
        process.nextTick(() => pair.local.uncork());
      } else if (i % 5 === 0) {
        pair.local.write(piece);
      } else {
        writer.write(piece);
      }
    }
    const all = Buffer.concat(expected);
    expect((await received(pair.remote, all.length)).equals(all)).toBe(true);
  });

  it('says stop once a peer that does not read leaves its bytes queued, counts them, and calls back once they are written', async () => {
    const pair = await connectedPair();
    close = pair.close;
    pair.remote.pause();
    let drains = 0;
    const writer = new SocketWriter(pair.local, { onSocketDrained: () => drains++ });
    const piece = Buffer.alloc(64 * 1024, 'x');
    let writes = 0;
    while (writer.write(piece)) {
      writes++;
      if (writes > 10_000) throw new Error('the writer never said stop');
    }
    writes++;
    expect(writer.full).toBe(true);
    expect(writer.pending).toBeGreaterThan(0);
    // Bounded: it says stop as soon as the kernel's buffers are full, not after a long queue.
    expect(writer.pending).toBeLessThanOrEqual(piece.length + pair.local.writableHighWaterMark);

    const drained = new Promise<void>((resolve) => writer.whenDrained(resolve));
    const all = received(pair.remote, writes * piece.length);
    pair.remote.resume();
    await drained;
    expect(drains).toBe(1);
    expect(writer.pending).toBe(0);
    expect(writer.full).toBe(false);
    expect((await all).length).toBe(writes * piece.length);
  });

  it('calls back at once when nothing waits to be written', async () => {
    const pair = await connectedPair();
    close = pair.close;
    const writer = new SocketWriter(pair.local);
    expect(writer.write(Buffer.from('hello'))).toBe(true);
    let called = false;
    writer.whenDrained(() => (called = true));
    expect(called).toBe(true);
  });

  it('destroys the socket with a write error when the peer has gone, and throws nothing', async () => {
    const pair = await connectedPair();
    close = pair.close;
    const writer = new SocketWriter(pair.local);
    const error = new Promise<NodeJS.ErrnoException>((resolve) => pair.local.once('error', resolve));
    pair.remote.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const piece = Buffer.alloc(16 * 1024, 'y');
    for (let i = 0; i < 200 && !pair.local.destroyed; i++) writer.write(piece);
    expect(pair.local.destroyed).toBe(true);
    expect(['EPIPE', 'ECONNRESET']).toContain((await error).code);
  });
});
