import { describe, expect, it } from 'vitest';
import { directReads } from './direct-reads.js';

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
