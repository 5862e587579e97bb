// A malformed extended-protocol message met while pgway rewrites a request (a Bind whose
// statement name never ends) ends that client with 08P01; the gateway, its server connection and
// every other client carry on.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { cstring, errorFields, rawTrustLogin, typedMessage } from './helpers/raw-client.js';

describe('malformed extended-protocol messages in transaction mode', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
  });
  afterAll(() => gw.stop());

  it.each([
    ['a server connection is free', false],
    ['it waited for a server connection', true],
  ])('ends the client with 08P01 on a Bind whose statement name has no terminator when %s; others keep working', async (_case, mustWait) => {
    const holder = new pg.Client(gw.url());
    await holder.connect();
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    const params = Buffer.alloc(2);
    client.write(Buffer.concat([typedMessage('P', Buffer.concat([cstring('s1'), cstring('SELECT 1'), params])), typedMessage('S')]));
    const prepared = await client.readUntil('Z');
    expect(prepared.before.map((m) => m.type)).toEqual(['1']);

    // With the only server connection held, the request is dispatched later, from the pool's callback.
    if (mustWait) await holder.query('BEGIN');
    // Portal "" then "s1" running to the end of the frame, without its NUL.
    client.write(Buffer.concat([typedMessage('B', Buffer.concat([Buffer.from([0]), Buffer.from('s1')])), typedMessage('S')]));
    if (mustWait) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await holder.query('COMMIT');
    }
    const { message } = await client.readUntil('E');
    expect(errorFields(message.body).get('C')).toBe('08P01');
    await holder.end();

    const other = new pg.Client(gw.url());
    await other.connect();
    expect((await other.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    await other.end();
    client.destroy();
  });
});
