import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { linkFor, type ClientLink, type LinkListener } from './client-link.js';
import { acceptDirect } from './direct-reads.js';

/**
 * ClientLink over real loopback connections: a net.Server whose accepting acceptDirect takes over,
 * each connection wrapped by linkFor, and a plain net.Socket as the client (the peer). Both kinds
 * of link are held to the same behaviour: HandleLink (a listener offering no TLS: the bare libuv
 * handle) and SocketLink (a listener offering TLS: a net.Socket).
 */

const KINDS = [
  { kind: 'HandleLink', offersTls: false },
  { kind: 'SocketLink', offersTls: true },
] as const;

/** What the link's listener heard, in order. */
interface Heard extends LinkListener {
  closed: number;
  drains: number;
  errors: Error[];
  /** 'drained' / 'error' / 'closed', in the order they came. */
  log: string[];
  /** link.pending as each onSocketDrained was called. */
  pendingAtDrain: number[];
  /** Set while a ClientLink call of the test runs: onLinkClosed must not come from inside one. */
  insideCall: boolean;
  closedInsideCall: number;
}

function heard(linkRef: () => ClientLink | undefined): Heard {
  const h: Heard = {
    closed: 0,
    drains: 0,
    errors: [],
    log: [],
    pendingAtDrain: [],
    insideCall: false,
    closedInsideCall: 0,
    onSocketDrained() {
      h.drains++;
      h.log.push('drained');
      h.pendingAtDrain.push(linkRef()?.pending ?? -1);
    },
    onLinkClosed() {
      h.closed++;
      h.log.push('closed');
      if (h.insideCall) h.closedInsideCall++;
    },
    onLinkError(err: Error) {
      h.errors.push(err);
      h.log.push('error');
    },
  };
  return h;
}

/** What the peer (the client end) received, and how its stream ended. */
interface PeerView {
  chunks: Buffer[];
  readonly bytes: number;
  all(): Buffer;
  ended: boolean;
  /** Bytes received when the peer saw end of stream. */
  bytesAtEnd: number;
  closed: boolean;
  errors: Error[];
}

function watchPeer(client: net.Socket): PeerView {
  const view: PeerView = {
    chunks: [],
    bytes: 0,
    all: () => Buffer.concat(view.chunks),
    ended: false,
    bytesAtEnd: -1,
    closed: false,
    errors: [],
  };
  let bytes = 0;
  Object.defineProperty(view, 'bytes', { get: () => bytes });
  client.on('data', (chunk: Buffer) => {
    view.chunks.push(chunk);
    bytes += chunk.length;
  });
  client.on('end', () => {
    view.ended = true;
    view.bytesAtEnd = bytes;
  });
  client.on('close', () => (view.closed = true));
  client.on('error', (err) => view.errors.push(err));
  return view;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds, for at most `ms`; the assertions after it say what did not happen. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(5);
}

/** `n` bytes whose content depends on `seed` and the offset, so that misordered pieces show. */
function piece(seed: number, n: number): Buffer {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = (seed * 31 + i) % 251;
  return buf;
}

/** Same bytes, with where they first differ when they do not (a 3 MB diff helps no one). */
function expectSameBytes(actual: Buffer, expected: Buffer): void {
  let firstDiff = -1;
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      firstDiff = i;
      break;
    }
  }
  if (firstDiff === -1 && actual.length !== expected.length) firstDiff = n;
  expect({ length: actual.length, firstDiff }).toEqual({ length: expected.length, firstDiff: -1 });
}

/** Most a fill may write before the link says stop: a few MB, whatever the kernel's buffers. */
const FILL_LIMIT = 8 * 1024 * 1024;
const FILL_PIECE = 64 * 1024;

/**
 * Writes pieces to `link` until write() returns false (the peer being paused, the kernel's buffers
 * fill and libuv holds the rest). Returns what was written, in order.
 */
function fill(link: ClientLink, seed = 0): Buffer[] {
  const written: Buffer[] = [];
  let total = 0;
  for (;;) {
    const p = piece(seed + written.length, FILL_PIECE);
    written.push(p);
    total += p.length;
    if (!link.write(p)) return written;
    if (total > FILL_LIMIT) throw new Error(`the link never said stop after ${total} bytes with the peer not reading`);
  }
}

interface Opened {
  link: ClientLink;
  client: net.Socket;
  peer: PeerView;
  heard: Heard;
  /** Copies of the chunks the reader got, in order. */
  chunks: Buffer[];
  readonly readBytes: number;
  read(): Buffer;
}

describe.each(KINDS)('ClientLink: $kind (offersTls=$offersTls)', ({ kind, offersTls }) => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /**
   * A listener whose connections acceptDirect takes, a client connected to it, and the accepted
   * connection wrapped by linkFor with a reader that copies each chunk (or, with `lend`, keeps
   * the chunk itself and says it is lent).
   */
  async function open(options: { minBytes?: number; maxBytes?: number; lend?: boolean; closeGraceMs?: number } = {}): Promise<Opened> {
    const { minBytes = 64, maxBytes = 16 * 1024, lend = false, closeGraceMs } = options;
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => server.close());
    let link: ClientLink | undefined;
    const h = heard(() => link);
    const chunks: Buffer[] = [];
    let readBytes = 0;
    const reader = {
      onChunk: (chunk: Buffer) => {
        chunks.push(lend ? chunk : Buffer.from(chunk));
        readBytes += chunk.length;
      },
      lent: () => lend,
    };
    const accepted = new Promise<ClientLink>((resolve, reject) => {
      acceptDirect(
        server,
        (conn) => resolve(linkFor(conn, reader, { minBytes, maxBytes }, h, offersTls, closeGraceMs)),
        reject,
      );
    });
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    cleanups.push(() => client.destroy());
    const peer = watchPeer(client);
    await once(client, 'connect');
    link = await accepted;
    const made = link;
    cleanups.push(() => made.destroy());
    // The kind asked for, not a fallback: only a SocketLink can start TLS.
    expect(link.canStartTls).toBe(offersTls);
    return {
      link,
      client,
      peer,
      heard: h,
      chunks,
      get readBytes() {
        return readBytes;
      },
      read: () => Buffer.concat(chunks),
    };
  }

  /** Calls `fn` on the link, noting that a ClientLink call is running (see Heard.insideCall). */
  function call<T>(o: Opened, fn: () => T): T {
    o.heard.insideCall = true;
    try {
      return fn();
    } finally {
      o.heard.insideCall = false;
    }
  }

  /** The peer gets every byte of `sent`, in order, then end of stream; the link closes once, without an error. */
  async function expectAllThenEnd(o: Opened, sent: Buffer[]): Promise<void> {
    const all = Buffer.concat(sent);
    await until(() => o.peer.ended);
    expect(o.peer.ended).toBe(true);
    expect(o.peer.bytesAtEnd).toBe(all.length);
    expectSameBytes(o.peer.all(), all);
    await expectClosedOnce(o);
    expect(o.heard.errors).toEqual([]);
  }

  /** Waits for onLinkClosed, then a little more, and checks it came exactly once, after any onLinkError. */
  async function expectClosedOnce(o: Opened): Promise<void> {
    await until(() => o.heard.closed > 0);
    await sleep(30);
    expect(o.heard.closed).toBe(1);
    expect(o.heard.closedInsideCall).toBe(0);
    expect(o.heard.log.slice(o.heard.log.indexOf('closed'))).not.toContain('error');
    expect(o.link.destroyed).toBe(true);
  }

  // --- reads ---------------------------------------------------------------------------------

  it('hands every byte the peer sends to the reader, in order, across many writes', async () => {
    const o = await open({ minBytes: 64, maxBytes: 16 * 1024 });
    const sent: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const p = piece(i, 1 + ((i * 997) % 6000));
      sent.push(p);
      o.client.write(p);
      if (i % 50 === 49) await until(() => o.readBytes >= sent.reduce((n, b) => n + b.length, 0));
    }
    const all = Buffer.concat(sent);
    await until(() => o.readBytes >= all.length);
    expectSameBytes(o.read(), all);
    expect(o.chunks.length).toBeGreaterThan(1);
  });

  it('leaves the bytes of a chunk the reader still holds (lent) as they were read', async () => {
    const o = await open({ minBytes: 64, maxBytes: 256, lend: true });
    const sent: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const p = piece(i + 7, 50 + i * 13);
      sent.push(p);
      o.client.write(p);
      const expected = sent.reduce((n, b) => n + b.length, 0);
      await until(() => o.readBytes >= expected); // one read at a time, so each may reuse the last one's buffer
    }
    expectSameBytes(o.read(), Buffer.concat(sent));
  });

  it('delivers no chunk while paused, and what came meanwhile after resume()', async () => {
    const o = await open();
    o.client.write('first');
    await until(() => o.readBytes >= 5);
    call(o, () => o.link.pause());
    o.client.write('second');
    o.client.write('third');
    await sleep(100);
    expect(o.read().toString()).toBe('first');
    call(o, () => o.link.resume());
    await until(() => o.readBytes >= 'firstsecondthird'.length);
    expect(o.read().toString()).toBe('firstsecondthird');
    // Paused again and resumed again: still reading.
    call(o, () => o.link.pause());
    o.client.write('fourth');
    await sleep(50);
    expect(o.read().toString()).toBe('firstsecondthird');
    call(o, () => o.link.resume());
    await until(() => o.readBytes >= 'firstsecondthirdfourth'.length);
    expect(o.read().toString()).toBe('firstsecondthirdfourth');
  });

  it('gives the peer\'s address and port as remoteAddress and remotePort', async () => {
    const o = await open();
    expect(o.link.remoteAddress).toBe(o.client.localAddress);
    expect(o.link.remotePort).toBe(o.client.localPort);
    // The peer's end, not the link's own (the listening port).
    expect(o.link.remotePort).not.toBe(o.client.remotePort);
    expect(typeof o.link.remotePort).toBe('number');
  });

  // --- writes --------------------------------------------------------------------------------

  it('writes reach the peer in order, and write() says go on while nothing is held', async () => {
    const o = await open();
    const sent: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const p = piece(i, 1 + ((i * 131) % 3000));
      sent.push(p);
      expect(call(o, () => o.link.write(p))).toBe(true); // the peer reads: the kernel takes it all
      if (i % 40 === 39) await until(() => o.peer.bytes >= sent.reduce((n, b) => n + b.length, 0));
    }
    const all = Buffer.concat(sent);
    await until(() => o.peer.bytes >= all.length);
    expectSameBytes(o.peer.all(), all);
    expect(o.link.pending).toBe(0);
    expect(o.heard.errors).toEqual([]);
  });

  it('holds writes between cork() and uncork(), counting them as pending, and sends them after the earlier ones', async () => {
    const o = await open();
    const before = Buffer.from('before|');
    o.link.write(before);
    await until(() => o.peer.bytes >= before.length);
    const corked = [Buffer.from('one|'), Buffer.from('two|'), Buffer.from('three|')];
    const corkedBytes = corked.reduce((n, b) => n + b.length, 0);
    call(o, () => o.link.cork());
    for (const b of corked) call(o, () => o.link.write(b));
    // Nested: the inner uncork() lets nothing go.
    call(o, () => o.link.cork());
    const inner = Buffer.from('inner|');
    call(o, () => o.link.write(inner));
    call(o, () => o.link.uncork());
    await sleep(80);
    expect(o.peer.all().toString()).toBe('before|');
    expect(o.link.pending).toBe(corkedBytes + inner.length);
    call(o, () => o.link.uncork());
    const after = Buffer.from('after');
    call(o, () => o.link.write(after));
    const expected = 'before|one|two|three|inner|after';
    await until(() => o.peer.bytes >= expected.length);
    expect(o.peer.all().toString()).toBe(expected);
    await until(() => o.link.pending === 0);
    expect(o.link.pending).toBe(0);
  });

  it('keeps the order of writes issued while libuv still holds earlier bytes, corked ones too', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 1);
    expect(o.link.pending).toBeGreaterThan(0);
    // More while the earlier bytes wait: plain writes, a corked group, then plain again.
    for (let i = 0; i < 20; i++) {
      const p = piece(1000 + i, 1 + i * 517);
      sent.push(p);
      expect(call(o, () => o.link.write(p))).toBe(false);
    }
    call(o, () => o.link.cork());
    for (let i = 0; i < 5; i++) {
      const p = piece(2000 + i, 300 + i);
      sent.push(p);
      call(o, () => o.link.write(p));
    }
    call(o, () => o.link.uncork());
    const last = piece(3000, 12345);
    sent.push(last);
    call(o, () => o.link.write(last));
    const all = Buffer.concat(sent);
    expect(all.length).toBeLessThanOrEqual(FILL_LIMIT + 1024 * 1024);
    o.client.resume();
    await until(() => o.peer.bytes >= all.length);
    expectSameBytes(o.peer.all(), all);
    await until(() => o.link.pending === 0);
    expect(o.link.pending).toBe(0);
    expect(o.heard.errors).toEqual([]);
    expect(o.heard.closed).toBe(0);
  });

  it('says stop when the peer does not read, counts what is held, and calls onSocketDrained once it is all written', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 5);
    // A few more held behind it: the listener hears when all of them are gone, not the first.
    for (let i = 0; i < 4; i++) {
      const p = piece(700 + i, FILL_PIECE / 4);
      sent.push(p);
      expect(call(o, () => o.link.write(p))).toBe(false);
    }
    expect(o.link.pending).toBeGreaterThan(0);
    // Bounded: it says stop once libuv holds about a high-water mark, not after a long queue.
    expect(o.link.pending).toBeLessThanOrEqual(2 * FILL_PIECE + 64 * 1024);
    await sleep(80);
    expect(o.heard.drains).toBe(0); // nothing has drained while the peer reads nothing
    expect(o.link.pending).toBeGreaterThan(0);
    o.client.resume();
    await until(() => o.heard.drains > 0);
    expect(o.heard.drains).toBe(1);
    expect(o.heard.pendingAtDrain).toEqual([0]);
    expect(o.link.pending).toBe(0);
    // Drained: write() says go on again.
    const more = piece(99, 100);
    sent.push(more);
    expect(call(o, () => o.link.write(more))).toBe(true);
    const all = Buffer.concat(sent);
    await until(() => o.peer.bytes >= all.length);
    expectSameBytes(o.peer.all(), all);
    await sleep(30);
    expect(o.heard.drains).toBe(1);
    expect(o.heard.errors).toEqual([]);
  });

  it('says stop for corked writes past the mark too, and calls onSocketDrained once they are all written', async () => {
    // A server's chunks are forwarded corked while pgway has an answer of its own queued behind
    // them: a client that does not read must stop that server as well.
    const o = await open();
    o.client.pause();
    const sent: Buffer[] = [];
    let stopped = false;
    for (let i = 0; i < 8 && !stopped; i++) {
      call(o, () => o.link.cork());
      for (let j = 0; j < 64 && !stopped; j++) {
        const p = piece(900 + i * 64 + j, FILL_PIECE / 4);
        sent.push(p);
        stopped = !call(o, () => o.link.write(p));
      }
      call(o, () => o.link.uncork());
    }
    expect(stopped).toBe(true);
    const all = Buffer.concat(sent);
    // Bounded: it said stop long before everything it could have been given was queued.
    expect(all.length).toBeLessThan(8 * 64 * (FILL_PIECE / 4));
    o.client.resume();
    await until(() => o.heard.drains > 0);
    expect(o.heard.pendingAtDrain).toEqual([0]);
    await until(() => o.peer.bytes >= all.length);
    expectSameBytes(o.peer.all(), all);
  });

  // --- closing from this side ----------------------------------------------------------------

  it('end(last) delivers everything written before and `last`, then the peer sees end of stream; onLinkClosed once', async () => {
    const o = await open();
    const sent: Buffer[] = [];
    for (let i = 0; i < 30; i++) {
      const p = piece(i, 100 + i * 50);
      sent.push(p);
      o.link.write(p);
    }
    const last = Buffer.from('the last frame');
    sent.push(last);
    call(o, () => o.link.end(last));
    expect(o.heard.closed).toBe(0);
    await expectAllThenEnd(o, sent);
    expect(o.peer.errors).toEqual([]);
  });

  it('end(last) while libuv holds earlier bytes and while corked, followed by close() as a session does, delivers it all before end of stream', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 11);
    expect(o.link.pending).toBeGreaterThan(0);
    call(o, () => o.link.cork());
    const corked = piece(77, 5000);
    sent.push(corked);
    call(o, () => o.link.write(corked));
    const last = Buffer.from('ErrorResponse: goodbye');
    sent.push(last);
    call(o, () => o.link.end(last));
    call(o, () => o.link.close());
    expect(o.heard.closed).toBe(0);
    await sleep(50);
    expect(o.peer.ended).toBe(false); // the peer has not read it all yet: no end of stream before the bytes
    o.client.resume();
    await expectAllThenEnd(o, sent);
  });

  it('close() with bytes still queued delivers them all before the peer sees end of stream; onLinkClosed once', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 21);
    for (let i = 0; i < 5; i++) {
      const p = piece(500 + i, 7000);
      sent.push(p);
      o.link.write(p);
    }
    expect(o.link.pending).toBeGreaterThan(0);
    call(o, () => o.link.close());
    expect(o.heard.closed).toBe(0);
    await sleep(50);
    expect(o.heard.closed).toBe(0); // still writing: not closed yet
    o.client.resume();
    await expectAllThenEnd(o, sent);
  });

  it('a closing link whose peer never reads again is dropped after the grace period, bytes and all', async () => {
    const o = await open({ closeGraceMs: 300 });
    o.client.pause();
    const sent = fill(o.link, 71);
    const total = Buffer.concat(sent).length;
    call(o, () => o.link.end(Buffer.from('ErrorResponse: goodbye')));
    await sleep(150);
    expect(o.heard.closed).toBe(0); // still within the grace period
    await until(() => o.heard.closed > 0);
    expect(o.heard.closed).toBe(1);
    expect(o.link.destroyed).toBe(true);
    // The peer never read: what the kernel holds for it is less than what was written.
    o.client.resume();
    await until(() => o.peer.closed);
    expect(o.peer.bytes).toBeLessThan(total);
  });

  it('close() with nothing queued closes: the peer sees end of stream; onLinkClosed once', async () => {
    const o = await open();
    o.link.write(Buffer.from('bye'));
    await until(() => o.peer.bytes >= 3);
    expect(o.link.pending).toBe(0);
    call(o, () => o.link.close());
    expect(o.heard.closed).toBe(0);
    await until(() => o.peer.ended && o.peer.closed);
    expect(o.peer.ended).toBe(true);
    expect(o.peer.all().toString()).toBe('bye');
    await expectClosedOnce(o);
    // Closing again, ending, destroying: nothing more is heard.
    call(o, () => o.link.close());
    call(o, () => o.link.end(Buffer.from('late')));
    call(o, () => o.link.destroy());
    await sleep(30);
    expect(o.heard.closed).toBe(1);
    expect(o.heard.errors).toEqual([]);
  });

  // A session can write after close(): fail() calls link.end(frame) and then close(), and a
  // server's bytes may still arrive to be forwarded.
  it('write() after close() returns false and leaves the bytes still queued to go out', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 31);
    expect(o.link.pending).toBeGreaterThan(0);
    call(o, () => o.link.close());
    let result: boolean | undefined;
    expect(() => (result = call(o, () => o.link.write(Buffer.from('too late'))))).not.toThrow();
    expect(result).toBe(false);
    o.client.resume();
    const all = Buffer.concat(sent);
    await until(() => o.peer.closed);
    expect(o.peer.ended).toBe(true);
    expect(o.peer.bytesAtEnd).toBe(all.length);
    expectSameBytes(o.peer.all(), all);
    await expectClosedOnce(o);
    expect(o.heard.errors.map((e) => e.message)).toEqual([]);
  });

  it('destroy() closes at once, losing what is queued; a later write() returns false and throws nothing; onLinkClosed once', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 41);
    for (let i = 0; i < 4; i++) {
      const p = piece(600 + i, FILL_PIECE);
      sent.push(p);
      o.link.write(p);
    }
    const queued = o.link.pending;
    // At least these four pieces wait in libuv (pending may count a piece the kernel took part of).
    expect(queued).toBeGreaterThanOrEqual(4 * FILL_PIECE);
    call(o, () => o.link.destroy());
    expect(o.link.destroyed).toBe(true);
    expect(o.heard.closed).toBe(0);
    let result: boolean | undefined;
    expect(() => (result = call(o, () => o.link.write(Buffer.from('after destroy'))))).not.toThrow();
    expect(result).toBe(false);
    o.client.resume();
    await until(() => o.peer.closed);
    expect(o.peer.closed).toBe(true);
    const all = Buffer.concat(sent);
    // What libuv still held was dropped, not sent: the peer got a part of what was written, as written.
    expect(o.peer.bytes).toBeLessThanOrEqual(all.length - queued + FILL_PIECE);
    expectSameBytes(o.peer.all(), all.subarray(0, o.peer.bytes));
    await expectClosedOnce(o);
    // And once closed, a write still returns false without throwing.
    expect(() => (result = o.link.write(Buffer.from('much later')))).not.toThrow();
    expect(result).toBe(false);
    await sleep(20);
    expect(o.heard.closed).toBe(1);
  });

  it('says nothing more after onLinkClosed, even when written to after it', async () => {
    const o = await open();
    o.client.pause();
    fill(o.link, 45);
    expect(o.link.pending).toBeGreaterThan(0);
    call(o, () => o.link.destroy());
    await until(() => o.heard.closed > 0);
    expect(o.link.write(Buffer.from('after close'))).toBe(false);
    o.client.resume();
    await sleep(50);
    expect(o.heard.log.slice(o.heard.log.indexOf('closed'))).toEqual(['closed']);
  });

  it('destroy() of an idle link: the peer sees its connection close; onLinkClosed once, not from inside destroy()', async () => {
    const o = await open();
    call(o, () => o.link.destroy());
    expect(o.link.destroyed).toBe(true);
    expect(call(o, () => o.link.write(Buffer.from('x')))).toBe(false);
    await until(() => o.peer.closed);
    expect(o.peer.closed).toBe(true);
    expect(o.peer.bytes).toBe(0);
    await expectClosedOnce(o);
    call(o, () => o.link.destroy());
    call(o, () => o.link.close());
    await sleep(30);
    expect(o.heard.closed).toBe(1);
  });

  // --- closing from the peer's side ----------------------------------------------------------

  it('the peer ending its side makes onLinkClosed fire once, with no error', async () => {
    const o = await open();
    o.client.write('hello');
    o.client.end();
    await until(() => o.heard.closed > 0);
    expect(o.read().toString()).toBe('hello');
    await expectClosedOnce(o);
    expect(o.heard.errors).toEqual([]);
    await until(() => o.peer.closed);
    expect(o.peer.closed).toBe(true);
    expect(o.peer.errors).toEqual([]);
  });

  it('the peer ending its side while bytes are still queued for it still receives them all, then end of stream', async () => {
    const o = await open();
    o.client.pause();
    const sent = fill(o.link, 51);
    expect(o.link.pending).toBeGreaterThan(0);
    o.client.end();
    await sleep(50); // the link reads the peer's end of stream meanwhile
    o.client.resume();
    await expectAllThenEnd(o, sent);
  });

  it('the peer destroying its socket mid-stream gives onLinkClosed once; writes after it return false and throw nothing', async () => {
    const o = await open();
    o.client.pause();
    fill(o.link, 61);
    expect(o.link.pending).toBeGreaterThan(0);
    o.client.destroy(); // unread bytes in its receive buffer: the kernel resets the connection
    await until(() => o.heard.closed > 0);
    let result: boolean | undefined;
    expect(() => (result = o.link.write(piece(1, 1000)))).not.toThrow();
    expect(result).toBe(false);
    await expectClosedOnce(o);
    expect(o.heard.errors.length).toBeLessThanOrEqual(1); // onLinkError may or may not come, before onLinkClosed
  });

  it('the peer resetting the connection gives onLinkClosed once, after any onLinkError', async () => {
    const o = await open();
    o.client.write('some bytes');
    await until(() => o.readBytes >= 10);
    o.client.resetAndDestroy();
    await expectClosedOnce(o);
    expect(o.heard.errors.length).toBeLessThanOrEqual(1);
    expect(o.read().toString()).toBe('some bytes');
  });

  if (!offersTls) {
    it('cannot start TLS: the listener offered none', async () => {
      const o = await open();
      expect(kind).toBe('HandleLink');
      expect(() => o.link.startTls({} as never, false)).toThrow(/cannot start TLS/);
      // The link still works after being asked.
      o.link.write(Buffer.from('still here'));
      await until(() => o.peer.bytes >= 10);
      expect(o.peer.all().toString()).toBe('still here');
    });
  }
});
