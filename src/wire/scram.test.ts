import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256, ScramClientExchange, ScramServerExchange, scramKeysFromPassword } from './scram.js';

describe('HmacSha256', () => {
  it('equals crypto HMAC-SHA-256 for short, block-sized and long keys and any text', () => {
    for (const keyLength of [0, 1, 32, 64, 65, 200]) {
      const key = randomBytes(keyLength);
      for (const text of ['', 'Client Key', 'n=*,r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef', 'ünïcødé '.repeat(40)]) {
        expect(new HmacSha256(key).digest(text)).toEqual(createHmac('sha256', key).update(text).digest());
      }
    }
  });
});

describe('SCRAM-SHA-256 exchange', () => {
  it('accepts the right password from stored keys and refuses a wrong one', () => {
    const keys = scramKeysFromPassword('s3cret');
    for (const [password, ok] of [['s3cret', true], ['wrong', false]] as const) {
      const client = new ScramClientExchange(password);
      const server = new ScramServerExchange(keys);
      const serverFirst = server.first(client.first())!;
      const serverFinal = server.final(client.final(serverFirst));
      expect(serverFinal !== undefined).toBe(ok);
      if (ok) expect(client.verify(serverFinal!)).toBe(true);
    }
  });
});
