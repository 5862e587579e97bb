// Frontend messages of a type PostgreSQL does not accept, sent by a logged-in client of a
// transaction pool (size 2) while it has no server connection. PostgreSQL checks the type byte
// before it reads the length, and answers at once with FATAL 08P01 "invalid frontend message type".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { answersWithin, cstring, startupPacket, typedMessage } from './helpers/raw-client.js';
import { cat, COPY_DONE, copyData, F, Q, S, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

type Target = 'direct' | 'pgway';
const url = (t: Target, user = 'app', db = 'app'): string =>
  t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : gw.url(user, db);

async function both(bytes: Buffer): Promise<Record<Target, string[]>> {
  const out: Record<Target, string[]> = { direct: [], pgway: [] };
  for (const t of ['direct', 'pgway'] as const) {
    const c = await rawAfterLogin(url(t), (end) => ends.push(end));
    c.write(bytes);
    out[t] = await answersWithin(c);
    c.destroy();
  }
  return out;
}

describe('messages of a type PostgreSQL does not accept (transaction mode, client idle)', () => {
  it("a message of unknown type 'z' is answered with FATAL 08P01 at once, not left unanswered", async () => {
    const out = await both(typedMessage('z', Buffer.from('abc')));
    expect(out.direct).toEqual(['FATAL 08P01']);
    expect(out.pgway).toEqual(out.direct); // pgway: ['<open>'], nothing is ever answered
  });

  it('a second StartupMessage after login is answered with FATAL 08P01 at once', async () => {
    const out = await both(startupPacket({ user: 'app', database: 'app' }));
    expect(out.direct).toEqual(['FATAL 08P01']);
    // pgway reads the packet as a frame of type 0 with a length of ~10 KB and waits for the rest
    expect(out.pgway).toEqual(out.direct);
  });

  it("a Describe with an invalid subtype ('X') is refused with 08P01 invalid DESCRIBE message subtype", async () => {
    const describeX = typedMessage('D', cat(Buffer.from('X'), cstring('')));
    const out = await both(cat(describeX, S));
    expect(out.direct).toEqual(['ERROR 08P01', 'Z', '<open>']);
    // pgway takes any subtype but 'P' for 'S': ['ERROR 26000' (unnamed prepared statement does not exist), 'Z', '<open>']
    expect(out.pgway).toEqual(out.direct);
  });
});

describe('the admin console and a FunctionCall', () => {
  it('answers a FunctionCall with an error and ReadyForQuery, as a FunctionCall ends its request', async () => {
    const c = await rawAfterLogin(gw.url('admin', 'pgway'), (end) => ends.push(end));
    c.write(F(1, [], 0, 0));
    const out = await answersWithin(c, 1500);
    // pgway: ['ERROR 0A000', '<open>']: it waits for a Sync that a FunctionCall never has
    expect(out).toEqual(['ERROR 0A000', 'Z', '<open>']);
    // and the console still answers the next query
    c.write(Q('SHOW VERSION'));
    const next = await answersWithin(c, 1500);
    expect(next.slice(-2)).toEqual(['Z', '<open>']);
    c.destroy();
  });
});

async function typesUpToReady(url: string, bytes: Buffer): Promise<string> {
  const c = await rawAfterLogin(url, (end) => ends.push(end));
  c.write(bytes);
  try {
    const { before, message } = await c.readUntil('Z', 2000);
    return [...before.map((m) => m.type), message.type].join('');
  } catch (e) {
    return `<${(e as Error).message}>`;
  } finally {
    c.destroy();
  }
}

describe('CopyData and CopyDone outside a COPY, then a Query', () => {
  it('the Query is answered (the copy messages are ignored), as PostgreSQL does', async () => {
    const bytes = cat(copyData('stray'), COPY_DONE, Q('SELECT 1'));
    const direct = await typesUpToReady(pgUrl(lab().primary, 'app', 'app-secret', 'app'), bytes);
    expect(direct).toBe('TDCZ');
    const admin = await typesUpToReady(gw.url('admin', 'pgway'), cat(copyData('stray'), COPY_DONE, Q('SHOW VERSION')));
    // pgway's console: 'E' and then nothing: the SHOW waits behind a Sync that never comes
    expect(admin).toBe('TDCZ');
  });
});
