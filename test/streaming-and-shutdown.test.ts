// Large results stream through pgway with bounded memory: a client that stops reading pauses its
// server connection instead of making pgway buffer the result. And a graceful shutdown tells
// connected clients (57P01) and closes their server connections.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { errorFields, queryMessage, rawTrustLogin } from './helpers/raw-client.js';
import { B, C, E, P, S } from './helpers/wire-script.js';

const ROWS = 150_000;
const ROW_BYTES = 1000;
const RESULT_SQL = `SELECT repeat('x', ${ROW_BYTES}) FROM generate_series(1, ${ROWS})`;

/** Counts DataRows and finds ReadyForQuery in a byte stream, without keeping the bytes. */
class FrameCounter {
  dataRows = 0;
  ready = false;
  private header = Buffer.alloc(0);
  private skip = 0;

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, chunk.length - pos);
        this.skip -= take;
        pos += take;
        continue;
      }
      const need = 5 - this.header.length;
      const part = chunk.subarray(pos, pos + need);
      this.header = Buffer.concat([this.header, part]);
      pos += part.length;
      if (this.header.length < 5) return;
      const code = String.fromCharCode(this.header[0]!);
      if (code === 'D') this.dataRows++;
      if (code === 'Z') this.ready = true;
      this.skip = this.header.readInt32BE(1) - 4;
      this.header = Buffer.alloc(0);
    }
  }
}

describe('streaming a large result to a slow client', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
  });
  afterAll(() => gw.stop());

  it.each([
    ['a simple Query', () => queryMessage(RESULT_SQL)],
    // pgway answers the Close itself: the result streams while an answer of its own waits behind it.
    ['an extended-protocol pipeline with a Close pgway answers', () => Buffer.concat([P('big', RESULT_SQL), B('big'), E(), C('S', 'big'), S])],
  ])(`keeps memory bounded while a client does not read a ${(ROWS * ROW_BYTES) / 1e6} MB result of %s, then delivers every row`, async (_what, request) => {
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    const counter = new FrameCounter();
    client.socket.removeAllListeners('data');
    client.socket.pause();
    global.gc?.();
    const before = process.memoryUsage();
    client.write(request());

    // The server can produce the whole result in well under this; only backpressure holds it back.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const during = process.memoryUsage();
    const grownMb = (during.rss + during.arrayBuffers - before.rss - before.arrayBuffers) / 1e6;
    expect(grownMb).toBeLessThan(64);

    const done = new Promise<void>((resolve, reject) => {
      client.socket.on('data', (chunk: Buffer) => {
        counter.push(chunk);
        if (counter.ready) resolve();
      });
      client.socket.on('close', () => reject(new Error(`closed after ${counter.dataRows} rows`)));
    });
    client.socket.resume();
    await done;
    expect(counter.dataRows).toBe(ROWS);
    client.destroy();

    // Other clients were served all along, and are served now.
    const other = new pg.Client(gw.url());
    await other.connect();
    expect((await other.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    await other.end();
  });
});

describe('graceful shutdown', () => {
  it('tells a connected client 57P01, closes its server connection and stops accepting', async () => {
    const gw = await startGateway({ pool: '{ mode: session, size: 2 }' });
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    client.write(queryMessage('BEGIN'));
    await client.readUntil('Z');

    await gw.gateway.shutdown(300);
    const { message } = await client.readUntil('E');
    expect(errorFields(message.body).get('C')).toBe('57P01');

    const refused = new pg.Client(gw.url());
    await expect(refused.connect()).rejects.toThrow();
    client.destroy();
  });
});
