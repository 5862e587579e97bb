// pgbench through pgway: initialization (COPY, DDL, VACUUM) and short runs of each query mode.
// Only this file uses the pgbench_* tables.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { run, type RunResult } from './helpers/run.js';

let gw: TestGateway;

function pgbench(args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return run('pgbench', ['-h', gw.host, '-p', String(gw.port), '-U', 'app', ...args, 'app'], {
    env: { PGPASSWORD: PASSWORDS.app! },
    timeoutMs,
  });
}

interface Summary {
  processed: number;
  failed: number | undefined;
}

function summary(r: RunResult): Summary {
  const processed = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  return { processed: Number(processed?.[1] ?? -1), failed: failed ? Number(failed[1]) : undefined };
}

describe('pgbench through pgway', () => {
  beforeAll(async () => {
    gw = await startGateway();
    const init = await pgbench(['-i', '-s', '1', '-q'], 60_000);
    if (init.code !== 0) throw new Error(`pgbench -i failed (${init.code}):\n${init.stderr}`);
  });

  afterAll(async () => {
    await gw?.stop();
    await adminQuery('DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history');
  });

  it('initialized the tables at scale 1', async () => {
    const r = await adminQuery<{ accounts: string; branches: string; tellers: string }>(
      `SELECT (SELECT count(*) FROM pgbench_accounts) AS accounts, (SELECT count(*) FROM pgbench_branches) AS branches,
              (SELECT count(*) FROM pgbench_tellers) AS tellers`);
    expect(r.rows[0]).toEqual({ accounts: '100000', branches: '1', tellers: '10' });
  });

  async function runClean(mode: string[]): Promise<Summary> {
    const r = await pgbench([...mode, '-c', '4', '-j', '2', '-T', '3']);
    expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/aborted/i);
    expect(r.code).toBe(0);
    const s = summary(r);
    expect(s.failed).toBe(0);
    expect(s.processed).toBeGreaterThan(0);
    return s;
  }

  it.each([
    ['simple protocol', ['-S']],
    ['extended protocol', ['-S', '-M', 'extended']],
    ['prepared statements', ['-S', '-M', 'prepared']],
  ])('runs select-only with %s, 4 clients, no failures', async (_name, mode) => {
    await runClean(mode);
  });

  it('runs the TPC-B-like default script with 4 clients, no failures, and consistent balances', async () => {
    await adminQuery('TRUNCATE pgbench_history');
    const s = await runClean([]);
    // Every TPC-B transaction adds the same delta to one account, teller and branch and logs it once;
    // pgbench -i starts all balances at 0.
    const r = await adminQuery<{ history: string; accounts: string; branches: string; tellers: string; rows: string }>(
      `SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AS history,
              (SELECT sum(abalance) FROM pgbench_accounts) AS accounts,
              (SELECT sum(bbalance) FROM pgbench_branches) AS branches,
              (SELECT sum(tbalance) FROM pgbench_tellers) AS tellers,
              (SELECT count(*) FROM pgbench_history) AS rows`);
    const row = r.rows[0]!;
    expect(row.accounts).toBe(row.history);
    expect(row.branches).toBe(row.history);
    expect(row.tellers).toBe(row.history);
    expect(Number(row.rows)).toBe(s.processed);
  });
});
