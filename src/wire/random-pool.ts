/**
 * Cryptographically secure random bytes, drawn from a refilled pool: one getrandom call serves
 * many logins (each needs a cancel secret and a SCRAM nonce) instead of one call per value.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 8192;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/** `n` fresh random bytes (n <= 256), as a copy the caller may keep. */
export function randomBytesPooled(n: number): Buffer {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  offset += n;
  return out;
}

export function randomUint32(): number {
  if (offset + 4 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const v = pool.readUInt32BE(offset);
  offset += 4;
  return v;
}
