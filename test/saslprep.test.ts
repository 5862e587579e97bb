// SCRAM passwords are prepared with SASLprep (RFC 4013) before key derivation, the way PostgreSQL,
// libpq and the pg driver prepare them: pgway derives the same keys as PostgreSQL from a password
// (also one SASLprep refuses, which is used unchanged), so a client whose password has characters
// SASLprep maps (a soft hyphen, a zero-width space) logs in to pgway, and pgway logs in to a
// PostgreSQL role whose password has them. md5 is not SASLprep's business: it takes the password as written.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScramVerifier, scramKeysFromPassword } from '../src/wire/scram.js';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';

async function login(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    const { rows } = await c.query('SELECT current_user AS u');
    return `ok ${rows[0].u}`;
  } catch (err) {
    return `error ${(err as { code?: string }).code ?? (err as Error).message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

const ROLE = 'saslprep_user';
// U+00AD SOFT HYPHEN is "mapped to nothing" by SASLprep; NFKC alone would keep it.
const SOFT = 'pa\u00adss-word';

beforeAll(async () => {
  await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`);
  await adminQuery(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${ROLE} LOGIN PASSWORD '${SOFT}'`);
  await adminQuery(`GRANT CONNECT ON DATABASE app TO ${ROLE}`);
});
afterAll(async () => {
  await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => {});
});

describe('SCRAM keys from a plaintext password', () => {
  // Each maps to what PostgreSQL's own verifier was computed from; a soft hyphen shows where the
  // password is used unchanged (SASLprep refused it) rather than prepared.
  const passwords: [string, string][] = [
    ['soft hyphen (mapped to nothing)', SOFT],
    ['word joiner, zero-width joiner (mapped to nothing)', 'word\u2060joined\u200d'],
    ['zero-width space (PostgreSQL\'s table of spaces has it too: a space)', 'zero\u200bwidth'],
    ['non-ASCII spaces (mapped to a space)', 'no\u00a0break\u3000space'],
    ['fullwidth letters, a ligature, a roman numeral (NFKC)', '\uff50\uff41\uff53\uff53\ufb01\u2168'],
    ['an ASCII control character among non-ASCII (prohibited: used unchanged)', 'bell\u0007\u00ad\u00f6'],
    ['a private-use character (prohibited: used unchanged)', 'private\u00ad\ue000'],
    ['a character unassigned in Unicode 3.2 (used unchanged)', 'newer\u00ad\u0221'],
    ['an emoji (unassigned in Unicode 3.2: used unchanged)', 'smile\u00ad\u{1f600}'],
    ['a character unassigned in Unicode 3.2 that NFKC makes "j" (checked before NFKC: used unchanged)', 'sub\u00ad\u2c7c'],
    ['right-to-left only (bidi rule holds)', '\u05d0\u00ad\u05d1\u05d2'],
    ['left-to-right and right-to-left mixed (bidi rule fails: used unchanged)', 'a\u00ad\u05d0'],
    ['right-to-left ending in a digit (bidi rule fails: used unchanged)', '\u05d0\u00ad1'],
    ['nothing left after mapping (used unchanged)', '\u00ad\u2060'],
    ['ASCII with a control character (ASCII is never changed)', 'tab\there'],
    ['Latin-1 letters (NFKC leaves them)', 'p\u00e4ssw\u00f6rd'],
  ];

  it.each(passwords)('equal PostgreSQL\'s own verifier: %s', async (_what, password) => {
    await adminQuery(`SET password_encryption = 'scram-sha-256'; ALTER ROLE ${ROLE} PASSWORD '${password}'`);
    const { rows } = await adminQuery<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [ROLE]);
    const theirs = parseScramVerifier(rows[0]!.v)!;
    const ours = scramKeysFromPassword(password, theirs.iterations, theirs.salt);
    expect(ours.storedKey.toString('base64')).toBe(theirs.storedKey.toString('base64'));
    expect(ours.serverKey.toString('base64')).toBe(theirs.serverKey.toString('base64'));
  });
});

describe('logins with a password SASLprep changes', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    await adminQuery(`SET password_encryption = 'scram-sha-256'; ALTER ROLE ${ROLE} PASSWORD '${SOFT}'`);
    gw = await startGateway({
      pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }',
      auth: `auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret }
    - { name: soft_client, password: "pa\\u00ADss-word", server_user: app, server_password: app-secret }
    - { name: soft_server, password: plain, server_user: ${ROLE}, server_password: "pa\\u00ADss-word" }
    - { name: "jöns-ß", password: "pässwörd", server_user: app, server_password: app-secret }
    - { name: "md5-jöns", password: "pa\\u00ADsswörd", method: md5, server_user: app, server_password: app-secret }
    - { name: admin, password: admin-secret, admin: true, server_user: postgres, server_password: ${lab().superuserPassword} }`,
    });
  });
  afterAll(() => gw?.stop());

  it('a client logs in to pgway with it, as it logs in to PostgreSQL', async () => {
    expect(await login(pgUrl(lab().primary, ROLE, SOFT, 'app'))).toBe(`ok ${ROLE}`);
    expect(await login(gw.url('soft_client', 'app', SOFT))).toBe('ok app');
    expect(await login(gw.url('soft_client', 'app', 'pass-word'))).toBe('ok app'); // its SASLprep form
    expect(await login(gw.url('soft_client', 'app', 'pa-ss-word'))).toBe('error 28P01');
  });

  it('non-ASCII names and passwords log in by SCRAM, and by md5, which takes the password as written', async () => {
    expect(await login(gw.url('jöns-ß', 'app', 'pässwörd'))).toBe('ok app');
    expect(await login(gw.url('md5-jöns', 'app', 'pa\u00adsswörd'))).toBe('ok app');
    expect(await login(gw.url('md5-jöns', 'app', 'passwörd'))).toBe('error 28P01');
  });

  it('pgway logs in to PostgreSQL with it as server_password', async () => {
    expect(await login(gw.url('soft_server', 'app', 'plain'))).toBe(`ok ${ROLE}`);
  });
});
