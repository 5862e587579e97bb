// Found by review round 19 (B), and fixed: a LISTEN, a WITH HOLD cursor or a SET SESSION
// AUTHORIZATION that a ROLLBACK TO SAVEPOINT took back, in a transaction that then commits, leaves
// nothing in the session; on a direct connection another client simply runs. Through pgway
// (transaction mode, pool of 1) the client stayed pinned for good, and every other client waited out
// 57P05. With both a ROLLBACK and a COMMIT reported, pgway now asks the server (Pins.settleTentativePins).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, Q, rawTargets, type Target } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 1000 }' });
});
afterAll(async () => {
  await gw.stop();
});
const { raw } = rawTargets();

const HELD = `SELECT (SELECT count(*) FROM pg_listening_channels()) || ',' || (SELECT count(*) FROM pg_cursors WHERE is_holdable)
  || ',' || (session_user = 'app') AS held`;

const cases: [string, string[]][] = [
  ['LISTEN rolled back to a savepoint, one query string', ['BEGIN; SAVEPOINT s; LISTEN rb_sp_ch; ROLLBACK TO s; COMMIT']],
  ['LISTEN rolled back to a savepoint, statement by statement', ['BEGIN', 'SAVEPOINT s', 'LISTEN rb_sp_ch', 'ROLLBACK TO s', 'COMMIT']],
  ['LISTEN in a savepoint that failed, rolled back to it', ['BEGIN; SAVEPOINT s; LISTEN rb_sp_ch; SELECT 1/0', 'ROLLBACK TO s; COMMIT']],
  ['WITH HOLD cursor rolled back to a savepoint', ['BEGIN; SAVEPOINT s; DECLARE rb_sp_c CURSOR WITH HOLD FOR SELECT 1; ROLLBACK TO s; COMMIT']],
  ['WITH HOLD cursor rolled back to a savepoint, statement by statement', ['BEGIN', 'SAVEPOINT s', 'DECLARE rb_sp_c CURSOR WITH HOLD FOR SELECT 1', 'ROLLBACK TO s', 'COMMIT']],
  ['SET SESSION AUTHORIZATION rolled back to a savepoint', ['BEGIN; SAVEPOINT s; SET SESSION AUTHORIZATION app; ROLLBACK TO s; COMMIT']],
];

async function run(t: Target, steps: string[]): Promise<{ held: string[]; other: string[] }> {
  const a = await raw(t);
  const b = await raw(t);
  for (const sql of steps) {
    a.write(Q(sql));
    await answers(a, 1, 3000);
  }
  a.write(Q(HELD));
  const held = await answers(a, 1, 3000);
  b.write(Q('SELECT 1 AS one'));
  const other = await answers(b, 1, 3000).catch((e: Error) => [`no answer: ${e.message}`]);
  a.destroy();
  b.destroy();
  return { held, other };
}

describe('state a ROLLBACK TO SAVEPOINT took back pins nothing', () => {
  for (const [name, steps] of cases) {
    it(`${name}: nothing is held, and another client gets the only server connection`, async () => {
      const d = await run('direct', steps);
      expect(d.held).toEqual(['T', 'D:0,0,true', 'C:SELECT 1', 'Z:I']);
      expect(d.other).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I']);
      const g = await run(gw, steps);
      expect(g.held).toEqual(d.held);
      // Pinned for nothing, the first client keeps the pool's only connection: the other waits out 57P05.
      expect(g.other, 'another client waited for a connection the first one no longer needs').toEqual(d.other);
    });
  }
});

describe('state made again after the ROLLBACK TO SAVEPOINT keeps its pin', () => {
  const again: [string, string[], string][] = [
    ['LISTEN', ['BEGIN; SAVEPOINT s; LISTEN rb_sp_a; ROLLBACK TO s; LISTEN rb_sp_b; COMMIT'], 'D:1,0,true'],
    ['WITH HOLD cursor', ['BEGIN', 'SAVEPOINT s', 'DECLARE rb_sp_c CURSOR WITH HOLD FOR SELECT 1', 'ROLLBACK TO s', 'DECLARE rb_sp_d CURSOR WITH HOLD FOR SELECT 1', 'COMMIT'], 'D:0,1,true'],
  ];
  for (const [name, steps, held] of again) {
    it(`${name}: the server is asked, the state is there, and the client keeps the only server connection`, async () => {
      const d = await run('direct', steps);
      expect(d.held).toEqual(['T', held, 'C:SELECT 1', 'Z:I']);
      const g = await run(gw, steps);
      expect(g.held).toEqual(d.held);
      // Still pinned: the other client waits out query_wait_timeout, as it does for any pinned client with a pool of 1.
      expect(g.other.join(' ')).toMatch(/E:57P05|no answer/);
    });
  }
});
