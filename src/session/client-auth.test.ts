import { describe, expect, it } from 'vitest';
import * as msg from '../wire/messages.js';
import { ClientAuth, prepareUserSecret, type AuthStep, type UserSecret } from './client-auth.js';

/**
 * What a login shows before any password is checked must not tell a user name pgway does not
 * know from a configured one: the unknown name is challenged with the configured method, offered
 * a SCRAM salt of its own (stable for the name, different from other names', as PostgreSQL's
 * scram_mock_salt), and refused with 28P01 as a wrong password is.
 */

/** The AuthenticationRequest code of a step that sends one. */
const authCode = (step: AuthStep): number => (step.kind === 'send' ? step.frame.readInt32BE(5) : -1);

/** The salt and iteration count offered to `user` (undefined: unknown) in the server-first-message. */
function offeredSalt(user: string, secret?: UserSecret): string {
  const auth = new ClientAuth(user, secret);
  expect(authCode(auth.begin())).toBe(10); // AuthenticationSASL
  const first = msg.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=clientnonce');
  const step = auth.onPassword(first, 0, first.length);
  expect(authCode(step)).toBe(11); // AuthenticationSASLContinue
  const serverFirst = (step as { frame: Buffer }).frame.toString('utf8', 9);
  return serverFirst.split(',').filter((a) => a.startsWith('s=') || a.startsWith('i=')).join(',');
}

describe('ClientAuth for a user name pgway does not know', () => {
  it('offers a SCRAM salt stable for the name and different between names, shaped as a configured user\'s', () => {
    const known = offeredSalt('app', prepareUserSecret('app', 'scram-sha-256', 'app-secret'));
    const a = offeredSalt('nobody_1');
    expect(offeredSalt('nobody_1')).toBe(a);
    expect(offeredSalt('nobody_2')).not.toBe(a);
    const shape = (s: string): string => s.replace(/^s=[A-Za-z0-9+/]{22}==,/, 's=<16 bytes>,');
    expect(shape(a)).toBe(shape(known));
    expect(shape(a)).toBe('s=<16 bytes>,i=4096');
  });

  it('is challenged with md5 under auth.method md5, as a configured md5 user, and refused with 28P01', () => {
    const known = new ClientAuth('app', prepareUserSecret('app', 'md5', 'app-secret'));
    const unknown = new ClientAuth('nobody', undefined, 'md5');
    expect(authCode(known.begin())).toBe(5); // AuthenticationMD5Password
    expect(authCode(unknown.begin())).toBe(5);
    const answer = msg.passwordMessage('md5' + '0'.repeat(32));
    const refused = unknown.onPassword(answer, 0, answer.length);
    expect(refused).toMatchObject({ kind: 'fail', error: { sqlstate: '28P01' } });
  });

  it('is challenged with SCRAM under auth.method scram-sha-256', () => {
    expect(authCode(new ClientAuth('nobody', undefined, 'scram-sha-256').begin())).toBe(10);
  });
});
