// A COPY FROM STDIN group pipelined with the COPY's data, its CopyDone and later groups: the COPY's
// start must not release frames held behind a later group for its answers, and once the client's
// CopyDone went out, a Sync it sends after the CopyInResponse is answered and counted, so the
// connection goes back to the pool.
//
// Determinism: the COPY's row waits on a row lock another session holds, so the CopyInResponse
// reaches pgway alone, and the client sees it ('G') before the lock is let go.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import type { RawClient } from './helpers/raw-client.js';
import { rawTargets, type Target, answers, upTo, cat, P, B, E, S, copyData, COPY_DONE } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS rd_crg');
  await adminQuery('CREATE TABLE rd_crg (a int PRIMARY KEY)');
  await adminQuery('GRANT ALL ON rd_crg TO app');
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS rd_crg');
});
const { raw, cleanups } = rawTargets();

/** Holds an uncommitted row `key` in rd_crg: a COPY of that key waits until release() (rollback). */
async function blocker(key: number): Promise<{ release: () => Promise<void> }> {
  const c = new pg.Client({ connectionString: pgUrl(lab().primary, 'app', 'app-secret', 'app') });
  await c.connect();
  await c.query('BEGIN');
  await c.query('INSERT INTO rd_crg (a) VALUES ($1)', [key]);
  let done = false;
  const release = async (): Promise<void> => {
    if (done) return;
    done = true;
    await c.query('ROLLBACK');
    await c.end();
  };
  cleanups.push(release);
  return { release };
}

/** Sends `pipeline` (a COPY of `key` first), waits for the COPY to begin, lets the row go, reads `n` answers. */
async function pipelined(r: RawClient, key: number, rest: Buffer, n: number): Promise<string[]> {
  const lock = await blocker(key);
  r.write(cat(P('', 'COPY rd_crg (a) FROM STDIN'), B(''), E(), S, copyData(`${key}\n`), COPY_DONE, S, rest));
  const out = await upTo(r, 'G');
  await lock.release();
  out.push(...await answers(r, n).catch((err: Error) => [`no answer: ${err.message}`]));
  await adminQuery('DELETE FROM rd_crg WHERE a = $1', [key]);
  return out;
}

describe('a pipelined COPY followed by a group whose named Parse the server skips', () => {
  it('a Bind of that name in the next group gets 26000, as on a direct connection', { timeout: 20_000 }, async () => {
    const run = async (t: Target): Promise<string[]> => {
      const r = await raw(t);
      // The statement text is prepared on the connection under another name first.
      r.write(cat(P('rd_crg_first', 'SELECT 5 AS v'), S));
      const out = await answers(r);
      out.push(...await pipelined(r, 11, cat(
        // The division fails: the server skips the named Parse behind it.
        P('', 'SELECT 1/0'), B(''), E(), P('rd_crg_skipped', 'SELECT 5 AS v'), S,
        B('rd_crg_skipped'), E(), S,
      ), 3));
      return out;
    };
    const direct = await run('direct');
    expect(direct).toEqual(['1', 'Z:I', '1', '2', 'G', 'C:COPY 1', 'Z:I', '1', 'E:22012', 'Z:I', 'E:26000', 'Z:I']);
    // pgway: ..., '2', 'D:5', 'C:SELECT 1', 'Z:I' -- the Bind ran the statement the server never prepared under that name.
    expect(await run(gw)).toEqual(direct);
  });
});

describe('a pipelined COPY followed by a group that waits for answers, then another group', () => {
  it('the connection goes back to the pool once everything is answered (the next client is served)', { timeout: 20_000 }, async () => {
    const a = await raw(gw);
    expect(await pipelined(a, 12, cat(
      // A named Parse after another statement of its group: pgway holds what follows for the answers.
      P('', 'SELECT 1'), B(''), E(), P('rd_crg_named', 'SELECT 6 AS v'), S,
      P('', 'SELECT 7'), B(''), E(), S,
    ), 3)).toEqual(['1', '2', 'G', 'C:COPY 1', 'Z:I', '1', '2', 'D:1', 'C:SELECT 1', '1', 'Z:I', '1', '2', 'D:7', 'C:SELECT 1', 'Z:I']);
    // Client a is idle, outside any transaction: in transaction mode its connection is free.
    const b = await raw(gw);
    b.write(cat(P('', 'SELECT 42'), B(''), E(), S));
    // pgway: b times out waiting for the connection (FATAL, closed) -- a's last Sync was never counted, the connection stays a's.
    expect(await answers(b, 1, 6000).catch((err: Error) => [`no answer: ${err.message}`])).toEqual(['1', '2', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
});

describe('a COPY whose data and CopyDone went out before the server said the COPY began, its Sync after', () => {
  it('the Sync is answered and the connection goes back to the pool', { timeout: 20_000 }, async () => {
    const a = await raw(gw);
    const lock = await blocker(13);
    a.write(cat(P('', 'COPY rd_crg (a) FROM STDIN'), B(''), E(), S, copyData('13\n'), COPY_DONE));
    const out = await upTo(a, 'G');
    a.write(S); // the COPY still runs (it waits on the row lock)
    await lock.release();
    out.push(...await answers(a, 1, 6000).catch((err: Error) => [`no answer: ${err.message}`]));
    expect(out).toEqual(['1', '2', 'G', 'C:COPY 1', 'Z:I']);
    const b = await raw(gw);
    b.write(cat(P('', 'SELECT 42'), B(''), E(), S));
    expect(await answers(b, 1, 6000).catch((err: Error) => [`no answer: ${err.message}`])).toEqual(['1', '2', 'D:42', 'C:SELECT 1', 'Z:I']);
    await adminQuery('DELETE FROM rd_crg WHERE a = 13');
  });
});
