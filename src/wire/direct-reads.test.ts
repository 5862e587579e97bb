import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { perfNow } from '../clock.js';
import { acceptDirect, connectDirect, directReads, socketFor } from './direct-reads.js';

/** Drives the onread option as net.Socket does: buffer() at the start and after every chunk. */
function reader(minBytes: number, maxBytes: number) {
  const chunks: string[] = [];
  const views: Buffer[] = [];
  let lend = false;
  const opts = directReads({ onChunk: (c) => { chunks.push(c.toString()); views.push(c); }, lent: () => lend }, { minBytes, maxBytes });
  const nextBuffer = opts.buffer as () => Buffer;
  let buf = nextBuffer();
  return {
    chunks,
    views,
    get buffer(): Buffer {
      return buf;
    },
    setLent(v: boolean): void {
      lend = v;
    },
    /** The kernel fills the buffer with `data` (as much as fits); returns how much went in. */
    read(data: string): number {
      const n = buf.write(data);
      opts.callback(n, buf);
      buf = nextBuffer();
      return n;
    },
  };
}

describe('directReads', () => {
  it('reuses one buffer while nothing holds on to its bytes, and hands out a fresh one when something does', () => {
    const r = reader(16, 64);
    const first = r.buffer;
    r.read('hello');
    expect(r.buffer).toBe(first);
    r.setLent(true);
    r.read('world');
    const second = r.buffer;
    expect(second).not.toBe(first);
    expect(first.toString('utf8', 0, 5)).toBe('world'); // what the holder refers to stays as read
    r.setLent(false);
    r.read('again');
    expect(r.buffer).toBe(second);
    expect(r.chunks).toEqual(['hello', 'world', 'again']);
  });

  it('hands out each chunk as what was read, also a read as long as an earlier one, and leaves a lent chunk alone', () => {
    const r = reader(16, 64);
    for (let i = 0; i < 10; i++) r.read(`warm${i}`); // views are kept once a connection is busy
    r.views.length = 0;
    r.chunks.length = 0;
    r.read('aaaaa');
    r.read('bbbbb');
    expect(r.views[1]).toBe(r.views[0]); // the same view, reused
    expect(r.views[1]!.toString()).toBe('bbbbb');
    r.read('cc');
    expect(r.views[2]!.toString()).toBe('cc');
    r.setLent(true);
    r.read('ddddd');
    r.setLent(false);
    r.read('eeeee');
    expect(r.views[3]!.toString()).toBe('ddddd'); // lent: the next read went into a new buffer
    expect(r.views[4]!.toString()).toBe('eeeee');
    expect(r.chunks).toEqual(['aaaaa', 'bbbbb', 'cc', 'ddddd', 'eeeee']);
  });

  it('grows fourfold when a read fills the buffer, up to the maximum, and shrinks after a run of small reads', () => {
    const r = reader(16, 128);
    expect(r.buffer.length).toBe(16);
    expect(r.read('x'.repeat(100))).toBe(16);
    expect(r.buffer.length).toBe(64);
    r.read('x'.repeat(100));
    expect(r.buffer.length).toBe(128);
    r.read('x'.repeat(300));
    expect(r.buffer.length).toBe(128);
    for (let i = 0; i < 15; i++) r.read('tiny');
    expect(r.buffer.length).toBe(128);
    r.read('y'.repeat(40)); // a read above half the minimum breaks the run
    for (let i = 0; i < 15; i++) r.read('tiny');
    expect(r.buffer.length).toBe(128);
    r.read('tiny');
    expect(r.buffer.length).toBe(16);
  });
});

describe('reads over real sockets', () => {
  const closing: (() => void)[] = [];
  afterEach(() => {
    for (const close of closing.splice(0)) close();
  });

  /**
   * A listener whose connections read through socketFor; resolves with the accepted socket and what it
   * received. `onChunk`, when given, is called for each chunk after it is recorded.
   */
  async function acceptedPair(minBytes = 16, maxBytes = 1024, onChunk?: () => void) {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closing.push(() => server.close());
    const received: Buffer[] = [];
    const accepted = new Promise<net.Socket>((resolve) => {
      acceptDirect(server, (conn) => {
        const record = (c: Buffer): void => {
          received.push(Buffer.from(c));
          onChunk?.();
        };
        const socket = socketFor(conn, { onChunk: record, lent: () => false }, { minBytes, maxBytes });
        closing.push(() => socket.destroy());
        resolve(socket);
      }, (err) => { throw err; });
    });
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    closing.push(() => client.destroy());
    await once(client, 'connect');
    return { client, socket: await accepted, received };
  }

  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  }

  it('delivers every byte in order, through buffer growth, and ends the socket on the peer\'s FIN', async () => {
    const { client, socket, received } = await acceptedPair();
    const sent = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    for (let at = 0; at < sent.length; at += 700) {
      client.write(sent.subarray(at, at + 700));
      await until(() => Buffer.concat(received).length >= Math.min(at + 700, sent.length));
    }
    const ended = once(socket, 'end');
    client.end();
    await ended;
    expect(Buffer.concat(received).equals(sent)).toBe(true);
    expect(socket.bytesRead).toBe(sent.length);
  });

  it('stops delivering while the socket is paused and goes on after resume', async () => {
    const { client, socket, received } = await acceptedPair();
    client.write('first');
    await until(() => received.length === 1);
    socket.pause();
    client.write('second');
    await new Promise((r) => setTimeout(r, 50));
    expect(received.map(String)).toEqual(['first']);
    socket.resume();
    await until(() => received.length === 2);
    expect(received.map(String)).toEqual(['first', 'second']);
  });

  it('reads a client socket from net.connect the same way, and reports a reset as an error', async () => {
    const server = net.createServer((peer) => {
      peer.write('hello from the server');
      setTimeout(() => peer.resetAndDestroy(), 20);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closing.push(() => server.close());
    const received: string[] = [];
    const reader = { onChunk: (c: Buffer) => received.push(c.toString()), lent: () => false };
    const socket = connectDirect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' }, reader, { minBytes: 64, maxBytes: 64 });
    closing.push(() => socket.destroy());
    const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(received.join('')).toBe('hello from the server');
    expect(err.code).toBe('ECONNRESET');
  });

  it('handles each chunk with the clock stopped at its arrival; between chunks it runs', async () => {
    const spin = (ms: number): void => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline);
    };
    const readings: [number, number][] = [];
    const { client } = await acceptedPair(64, 64, () => {
      const first = perfNow();
      spin(3);
      readings.push([first, perfNow()]);
    });
    client.write('one');
    await until(() => readings.length === 1);
    client.write('two');
    await until(() => readings.length === 2);
    expect(readings[0]![1]).toBe(readings[0]![0]);
    expect(readings[1]![1]).toBe(readings[1]![0]);
    expect(readings[1]![0]).toBeGreaterThanOrEqual(readings[0]![0] + 3);
    const outside = perfNow();
    spin(2);
    expect(perfNow()).toBeGreaterThan(outside);
  });
});
