// In a database whose encoding is not UTF8 (LATIN1), a client's setting with a value beyond ASCII is laid
// on again, after a move, as the client set it: pgway's settings statement is UTF-8 and is read as such
// whatever the connection's default client_encoding, and a client that never chose a client_encoding
// is left in the database's, as on a direct connection.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { FileGateways } from './helpers/file-gateway.js';
import { readCycle, rawTrustLogin, type RawClient } from './helpers/raw-client.js';
import { Q } from './helpers/wire-script.js';
import { clientsOfEachTest } from './helpers/pg-helpers.js';

const DB = 'rva_latin1';
const files = new FileGateways(DB);

beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER app`);
});
afterEach(() => files.stopAll()); // after the clients' afterEach below (hooks run last registered first)
afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  files.removeFiles();
});

const { connect } = clientsOfEachTest(); // pg logs in with client_encoding UTF8

async function run(url: string): Promise<string[]> {
  const a = await connect(url);
  const b = await connect(url);
  await a.query("SET myapp.label = 'café'");
  const out = [(await a.query<{ v: string }>("SELECT current_setting('myapp.label') AS v")).rows[0]!.v];
  await b.query('SELECT 1'); // the connection goes to b and back: a's settings are laid on again
  out.push((await a.query<{ v: string }>("SELECT current_setting('myapp.label') AS v")).rows[0]!.v);
  return out;
}

async function query(c: RawClient, sql: string): Promise<(string | null)[][]> {
  c.write(Q(sql));
  const { rows, errors } = await readCycle(c);
  return errors.length > 0 ? [errors] : rows;
}

describe('a value beyond ASCII laid on again in a LATIN1 database', () => {
  it('reads back as the client set it', async () => {
    const want = await run(pgUrl(lab().primary, 'app', 'app-secret', DB));
    expect(want).toEqual(['café', 'café']);
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
    expect(await run(gw.url())).toEqual(want);
  });

  it("leaves a client that sent no client_encoding in the database's encoding", async () => {
    // PostgreSQL's default client_encoding is the database's encoding.
    const { rows } = await adminQuery<{ e: string }>(`SELECT pg_catalog.pg_encoding_to_char(encoding) AS e FROM pg_database WHERE datname = '${DB}'`);
    expect(rows[0]!.e).toBe('LATIN1');
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
    const address = { host: gw.host, port: gw.port };
    const a = (await rawTrustLogin(address, { user: 'trustapp', database: DB })).client;
    const b = (await rawTrustLogin(address, { user: 'trustapp', database: DB, application_name: 'b' })).client;
    try {
      // The value is sent in UTF-8 while the client reads UTF-8, then the client goes back to its default.
      await query(a, "SET client_encoding = 'UTF8'");
      await query(a, "SET myapp.label = 'café'");
      await query(a, 'RESET client_encoding');
      await query(b, 'SELECT 1'); // the connection goes to b and back: a's settings are laid on again
      const read = "SELECT current_setting('client_encoding'), (current_setting('myapp.label') = U&'caf\\00E9')::text";
      expect(await query(a, read)).toEqual([['LATIN1', 'true']]);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
