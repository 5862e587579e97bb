// Found by review round 33 A, and fixed:
// A RELOAD that lands while a client is half-way through its password exchange. The client's user
// entry is read once, at its StartupMessage (ClientLogin.onStartupMessage), and used as it was then
// when the login completes (ClientSession.onAuthenticated -> ctx.primaryPool(db, staleUser)):
//
// 1. README "Operations": a RELOAD "that removes a database or user ends its clients with 57P01 at
//    their next request". A client of a user the RELOAD removed (the operator's way to revoke it)
//    that finishes its login just after the RELOAD is served, and its pool stays in SHOW POOLS.
// 2. README: "A RELOAD that moves a database hands ... new transactions go to the new pool"; a user's
//    new server_user applies to clients that log in after the RELOAD. When the user had no pool yet,
//    the late login makes its pool from the old entry, under the user's name: every later client of
//    that user reaches PostgreSQL as the old server_user until the next RELOAD.
// 3. A user whose admin right the RELOAD took away still opened the admin console.
// A database read at the same moment is read afresh (a removed one is refused 3D000); only the user was
// stale. The login now reads the user's entry again when the password exchange ends: a removed user
// is refused as an unknown one is (28P01), and a changed one logs in under its new entry. The race
// window is one password round trip; md5 makes it one message, so the test is exact.
import { afterAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { RawClient, errorFields, md5PasswordMessage, queryMessage, startupPacket } from './helpers/raw-client.js';

const DB = 'review_user_removed_mid_login';
const { files, connect } = fileGatewayTests(DB);

const POOL = '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }';
const md5User = (serverUser = 'app', serverPassword = 'app-secret'): string =>
  `{ name: rr33md5, password: md5-secret, method: md5, server_user: ${serverUser}, server_password: ${serverPassword} }`;

afterAll(async () => {
  await adminQuery('DROP ROLE IF EXISTS rr33srv').catch(() => undefined);
});

/** Message types of what arrives up to ReadyForQuery (errors as E:<sqlstate>), or how the connection closed. */
async function cycle(raw: RawClient): Promise<string[]> {
  return raw.readUntil('Z').then(
    ({ before, message }) => [...before.map((m) => (m.type === 'E' ? `E:${errorFields(m.body).get('C')}` : m.type)), message.type],
    (e: Error) => [`closed: ${e.message}`],
  );
}

/** Sends the StartupMessage, reads the md5 challenge, runs `between`, then answers it. */
async function loginAround(host: string, port: number, between: () => Promise<void>, database = DB): Promise<{ raw: RawClient; login: string[] }> {
  const raw = await RawClient.connect({ host, port });
  raw.write(startupPacket({ user: 'rr33md5', database }));
  const challenge = await raw.readMessage();
  expect(challenge?.type).toBe('R');
  expect(challenge!.body.readInt32BE(0)).toBe(5); // AuthenticationMD5Password
  await between();
  raw.write(md5PasswordMessage('rr33md5', 'md5-secret', challenge!.body.subarray(4, 8)));
  return { raw, login: await cycle(raw) };
}

describe('a RELOAD during a client\'s password exchange', () => {
  it('removing the user: the client that completes its login after the RELOAD is not served', async () => {
    const gw = await files.start({ pool: POOL, users: [md5User()] });
    const before = await connect(gw.url('rr33md5', DB, 'md5-secret'));
    expect((await before.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    await before.end();

    const { raw, login } = await loginAround(gw.host, gw.port, async () => {
      gw.write({ pool: POOL }); // rr33md5 is no longer in the file
      await gw.gateway.reload();
      expect(gw.gateway.user('rr33md5')).toBeUndefined();
    });
    let answer: string[] = [];
    if (login.at(-1) === 'Z' && !login.some((t) => t.startsWith('E:'))) {
      raw.write(queryMessage("SELECT 'served' AS s"));
      answer = await cycle(raw);
    }
    raw.destroy();
    expect(answer.includes('D'), `a client of the removed user ran a query (login ${login.join(',')}; query ${answer.join(',')})`).toBe(false);
    expect(gw.gateway.pools().some((p) => p.user === 'rr33md5'), 'SHOW POOLS keeps a pool of the removed user').toBe(false);
  });

  it("changing the user's server_user: clients that log in afterwards reach PostgreSQL as the new one", async () => {
    await adminQuery('DROP ROLE IF EXISTS rr33srv');
    await adminQuery("CREATE ROLE rr33srv LOGIN PASSWORD 'srv-secret'");
    const gw = await files.start({ pool: POOL, users: [md5User('app', 'app-secret')] });
    // Another pool has the server's parameters: the login itself needs no server connection.
    const other = await connect(gw.url());
    await other.query('SELECT 1');

    const { raw, login } = await loginAround(gw.host, gw.port, async () => {
      gw.write({ pool: POOL, users: [md5User('rr33srv', 'srv-secret')] });
      await gw.gateway.reload();
    });
    expect(login.at(-1)).toBe('Z');
    raw.write(queryMessage('SELECT 1'));
    await cycle(raw);
    raw.destroy();

    // Logged in well after the RELOAD, with the file saying server_user rr33srv.
    const later = await connect(gw.url('rr33md5', DB, 'md5-secret'));
    expect((await later.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe('rr33srv');
  });

  it("taking the user's admin right away: the client that completes its login to the console after the RELOAD is refused", async () => {
    const adminUser = (admin: boolean): string => `{ name: rr33md5, password: md5-secret, method: md5, admin: ${admin} }`;
    const gw = await files.start({ pool: POOL, users: [adminUser(true)] });
    const { raw, login } = await loginAround(gw.host, gw.port, async () => {
      gw.write({ pool: POOL, users: [adminUser(false)] });
      await gw.gateway.reload();
    }, 'pgway');
    let answer: string[] = [];
    if (login.at(-1) === 'Z' && !login.some((t) => t.startsWith('E:'))) {
      raw.write(queryMessage('SHOW VERSION'));
      answer = await cycle(raw);
    }
    raw.destroy();
    // A login to the console after the RELOAD is refused 28000 (may not use the admin console).
    expect(answer.includes('D'), `a user no longer admin used the console (login ${login.join(',')}; SHOW ${answer.join(',')})`).toBe(false);
  });
});
