// Drivers keep the ParameterStatus values they are sent (libpq's PQparameterStatus, JDBC's and
// postgres.js's date parsing read DateStyle and TimeZone from them) and never ask again. After a
// RESET of a setting the client gave at startup, pgway lays the startup value back on (a known
// difference: the server's default is reported first). Whatever comes first, the last value the
// client is told must be the one its statements now run under, or it parses dates under another style.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { dataRowValues, queryMessage, rawTrustLogin, type BackendMessage, type RawClient } from './helpers/raw-client.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const raws: RawClient[] = [];
afterEach(() => { for (const c of raws.splice(0)) c.destroy(); });

/** The last value each ParameterStatus among `messages` reported, by name. */
function reported(messages: BackendMessage[], into: Map<string, string>): void {
  for (const m of messages) {
    if (m.type !== 'S') continue;
    const [name, value] = m.body.toString('utf8').split('\0');
    into.set(name!, value!);
  }
}

describe('ParameterStatus after RESET of a startup setting (transaction mode)', () => {
  it.each(['DateStyle', 'TimeZone'])('the last %s reported is the one SHOW gives', async (name) => {
    const value = name === 'DateStyle' ? 'German, DMY' : 'Asia/Tokyo';
    const login = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustuser', database: 'app', [name]: value });
    raws.push(login.client);
    const c = login.client;
    const known = new Map<string, string>();
    reported(login.messages, known);
    expect(known.get(name)).toBe(value);

    c.write(queryMessage(`RESET ${name}`));
    reported((await c.readUntil('Z')).before, known);
    c.write(queryMessage(`SHOW ${name}`));
    const { before } = await c.readUntil('Z');
    reported(before, known);
    const shown = before.filter((m) => m.type === 'D').map((m) => dataRowValues(m.body)[0]);
    expect(shown).toEqual([value]);
    expect(known.get(name)).toBe(value);
  });
});
