// (Regression test; the failure below is fixed.) flow.onFrame's own limit: a client holding more than 4 x limits.max_message_bytes without completing
// a request is ended with 08P01 'too much data sent without completing a request'. Since 042c5bf that
// ProtocolViolationError, thrown from inside scanner.push, is caught in onData as if it were the
// scanner's and goes to endAfterAnswers (then named failAfterPending): a whole request held before it (the client waits for a
// pool slot) makes the client "terminating"; once a connection comes, the request AND the unsynced
// frames behind it are sent, the server then waits for a Sync, and the client is never answered or
// ended (its later Sync is not even read). Before 042c5bf it got the FATAL at once.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answersWithin } from './helpers/raw-client.js';
import { cat, P, Q, S, rawAfterLogin } from './helpers/wire-script.js';

let gw: TestGateway;
const ends: (() => void)[] = [];

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }', yaml: 'limits: { max_message_bytes: 4096 }' });
});
afterAll(async () => {
  for (const end of ends) end();
  await gw?.stop();
});

async function pools(): Promise<{ svActive: number; clWaiting: number }> {
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  await admin.connect();
  const r = await admin.query('SHOW POOLS');
  await admin.end();
  const row = r.rows.find((x) => x.database === 'app' && x.user === 'app');
  return { svActive: Number(row.sv_active), clWaiting: Number(row.cl_waiting) };
}

describe('a client waiting for a pool slot sends a request, then more than pgway holds without a Sync', () => {
  it('is ended with 08P01 (too much data), and its server connection is given back', async () => {
    const holder = new pg.Client({ connectionString: gw.url() });
    await holder.connect();
    await holder.query('BEGIN'); // the only server connection is taken
    const c = await rawAfterLogin(gw.url(), (end) => ends.push(end));
    // 24 Parse messages of ~1 KB: more than 4 x 4096 bytes held, no Sync.
    const parses = Array.from({ length: 24 }, (_, i) => P(`s${i}`, `SELECT '${'x'.repeat(1000)}'`));
    c.write(cat(Q('SELECT 1'), ...parses));
    // Wait until pgway sees the client waiting (deterministic: poll SHOW POOLS).
    for (let i = 0; i < 50 && (await pools()).clWaiting === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await holder.query('COMMIT');
    await holder.end();
    c.write(S); // a Sync at last
    const got = await answersWithin(c, 3000);
    // pgway: ['T', 'D', 'C', 'Z', '<open>']: neither the Parses' answers nor the FATAL ever come
    expect(got).not.toContain('<open>');
    expect(got.at(-1)).toBe('FATAL 08P01');
    expect((await pools()).svActive).toBe(0);
  });
});
