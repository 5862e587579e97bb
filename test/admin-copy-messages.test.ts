// The admin console and CopyData / CopyDone / CopyFail outside a COPY. PostgreSQL accepts and
// ignores them ("per protocol spec": a client may still be sending data for a COPY that failed), so
// the next Query is answered. pgway's console answers them with an error and then skips every
// message until a Sync that a simple-query client never sends: the next Query is never answered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { cat, COPY_DONE, copyData, Q, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
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
