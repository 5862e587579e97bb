// An extended-protocol request pipelined behind a DEALLOCATE ALL or DISCARD ALL (simple or extended
// protocol) whose statement has session effects (SET, set_config, SAVEPOINT) but names no SQL-level
// prepared statement runs as on a direct connection: pgway has nothing to lay on for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { errorFields, type RawClient } from './helpers/raw-client.js';
import { B, cat, E, P, Q, rawTargets, S, type Target } from './helpers/wire-script.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 3000 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const { raw } = rawTargets();
const ext = (sql: string): Buffer => cat(P('', sql), B(''), E(), S);

/** Answers to `n` requests: message types, errors as E:<sqlstate>, CommandComplete tags as C:<tag>; ParameterStatus and notices left out. */
async function answersOf(c: RawClient, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let z = 0; z < n;) {
    const m = await c.readMessage(3000);
    if (!m) return [...out, '<closed>'];
    if (m.type === 'S' || m.type === 'N') continue;
    if (m.type === 'E') out.push(`E:${errorFields(m.body).get('C')}`);
    else if (m.type === 'C') out.push(`C:${m.body.toString('utf8', 0, m.body.length - 1)}`);
    else out.push(m.type);
    if (m.type === 'Z') z++;
  }
  return out;
}

const cases: [string, Buffer, number][] = [
  ["Query DEALLOCATE ALL, then extended SET", cat(Q('DEALLOCATE ALL'), ext("SET work_mem = '2MB'")), 2],
  ["Query DISCARD ALL, then extended SET", cat(Q('DISCARD ALL'), ext("SET work_mem = '2MB'")), 2],
  ["extended DISCARD ALL, then extended SET", cat(ext('DISCARD ALL'), ext("SET work_mem = '2MB'")), 2],
  ["extended DEALLOCATE ALL, then extended SELECT set_config", cat(ext('DEALLOCATE ALL'), ext("SELECT set_config('work_mem', '3MB', false)")), 2],
  ["in a transaction block: extended DEALLOCATE ALL, SAVEPOINT, then COMMIT", cat(Q('BEGIN'), ext('DEALLOCATE ALL'), ext('SAVEPOINT s'), Q('COMMIT')), 4],
];

describe('review D: a request pipelined behind DEALLOCATE ALL / DISCARD ALL', () => {
  for (const [name, bytes, n] of cases) {
    it(`${name}: answered as on a direct connection`, async () => {
      const seen: Record<string, string[]> = {};
      for (const [key, t] of [['direct', 'direct'], ['pgway', gw]] as [string, Target][]) {
        const c = await raw(t);
        c.write(bytes);
        seen[key] = await answersOf(c, n);
      }
      expect(seen.direct!.some((m) => m.startsWith('E:'))).toBe(false);
      // pgway: E:0A000 where the pipelined request should run (and C:ROLLBACK for the COMMIT in the block)
      expect(seen.pgway).toEqual(seen.direct);
    });
  }
});
