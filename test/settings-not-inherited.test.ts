// In transaction mode a client that never SET anything must find the server's defaults, not what the
// last client on its connection left there: pgway lays each client's settings on "only where they
// differ", and a client with none differs from one with some. A statement_timeout inherited this way
// would cancel another application's queries; a search_path would send its writes to another schema.
// The second client logs in with no startup parameter at all (pg always sends client_encoding, which
// counts as a setting of its own), as a minimal driver or a C client with defaults does.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';
import { queryMessage, rawTrustLogin, readCycle, type RawClient } from './helpers/raw-client.js';

let gw: TestGateway;
beforeAll(async () => {
  // One connection: the second client is served by the connection the first one's SETs ran on.
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const { connect } = clientsOfEachTest();
const raws: RawClient[] = [];
afterEach(() => { for (const c of raws.splice(0)) c.destroy(); });

const READ = "SELECT current_setting('work_mem'), current_setting('statement_timeout')";

describe('a client with no settings of its own', () => {
  it("gets the server's defaults on a connection another client changed settings on", async () => {
    // trustuser, both: one pool, so one connection serves the two.
    const setter = await connect(gw.url('trustuser', 'app', ''));
    const defaults = (await setter.query({ text: READ, rowMode: 'array' })).rows[0];
    await setter.query("SET work_mem = '7777kB'");
    await setter.query("SET statement_timeout = '4321s'");
    expect((await setter.query({ text: READ, rowMode: 'array' })).rows[0]).toEqual(['7777kB', '4321s']);

    const bare = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app' });
    raws.push(bare.client);
    bare.client.write(queryMessage(READ));
    expect(await readCycle(bare.client)).toEqual({ rows: [defaults], errors: [] });
    // And the first client still has its own, back on the same connection.
    expect((await setter.query({ text: READ, rowMode: 'array' })).rows[0]).toEqual(['7777kB', '4321s']);
  });
});
