// Found by review round 32 C, and fixed: pgway_errors_total ("ErrorResponses by SQLSTATE and source") must count every
// ErrorResponse a client receives. The ones pgway writes itself in place of the server's answer to a
// protocol message (a Parse of a name the client already prepared, 42P05; a Bind of a statement it
// never prepared, 26000; the stale-plan 0A000 after DDL; ...) reach the client exactly as PostgreSQL's
// would, but the counter never moves for them: an operator alerting on error rates by SQLSTATE does
// not see them at all.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { cstring, rawTrustLogin, readCycle, typedMessage } from './helpers/raw-client.js';

const DB = 'review_errors_metric';
const { files } = fileGatewayTests(DB);

const parse = (name: string, sql: string): Buffer => typedMessage('P', Buffer.concat([cstring(name), cstring(sql), Buffer.from([0, 0])]));
const bind = (stmt: string): Buffer => typedMessage('B', Buffer.concat([cstring(''), cstring(stmt), Buffer.from([0, 0, 0, 0, 0, 0])]));
const sync = (): Buffer => typedMessage('S');

/** Sum of pgway_errors_total over sources for one SQLSTATE. */
function errorsOf(text: string, sqlstate: string): number {
  return text.split('\n')
    .filter((l) => l.startsWith('pgway_errors_total{') && l.includes(`sqlstate="${sqlstate}"`))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('pgway_errors_total counts the errors pgway answers itself', () => {
  it('a duplicate Parse (42P05) and a Bind of an unknown statement (26000) are counted', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2 }', http: true });
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustapp', database: DB });

    client.write(Buffer.concat([parse('s1', 'SELECT 1'), sync()]));
    expect((await readCycle(client)).errors).toEqual([]);
    const before = await scrape();

    client.write(Buffer.concat([parse('s1', 'SELECT 1'), sync()]));
    const dup = await readCycle(client);
    client.write(Buffer.concat([bind('nosuch'), sync()]));
    const unknown = await readCycle(client);
    const after = await scrape();

    expect({
      clientGot: [...dup.errors, ...unknown.errors],
      counted: { '42P05': errorsOf(after, '42P05') - errorsOf(before, '42P05'), '26000': errorsOf(after, '26000') - errorsOf(before, '26000') },
    }).toEqual({
      clientGot: ['42P05', '26000'],
      counted: { '42P05': 1, '26000': 1 },
    });
    client.destroy();
  });
});
