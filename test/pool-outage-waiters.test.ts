// Found by review round 30 B, and fixed: only the client whose request asked for the failed connection hears the error.
// PostgreSQL refusing (or unreachable) for longer than one server_login_retry_ms: README says "the client that
// asked hears the server's error and the clients still waiting get another attempt every
// server_login_retry_ms, until one opens or their query_wait_timeout ends" (and PgBouncer keeps logged-in
// clients waiting until query_wait_timeout). Observed: every retry that fails ends the next waiting client
// with the server's error, so a short outage ends all waiting clients long before their query_wait_timeout.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';
import { adminQuery } from './harness/lab.js';

const DB = 'review_login_retry_waiters';
const { files, connect } = fileGatewayTests(DB);

async function backends(): Promise<number> {
  const r = await adminQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, [DB]);
  return r.rows[0]!.n;
}

describe('clients waiting while the server refuses logins for a while', () => {
  it('the clients behind the first wait for the server (up to query_wait_timeout) instead of failing at each retry', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 10000, server_login_retry_ms: 200 }' });
    const warm = await connect(gw.url());
    await warm.query('SELECT 1'); // the pool learns the server's parameters
    try {
      await adminQuery(`ALTER DATABASE ${DB} CONNECTION LIMIT 0`);
      await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${DB}' AND pid <> pg_backend_pid()`);
      await waitFor('no server connection left', async () => (await backends()) === 0);
      const clients = [warm, await connect(gw.url()), await connect(gw.url()), await connect(gw.url())];
      const answers = clients.map((c, i) =>
        c.query<{ n: number }>(`SELECT ${i + 1} AS n`).then((r) => r.rows[0]!.n, (err: { code?: string }) => err.code));
      // The server refuses for a bit more than three retries (well inside query_wait_timeout_ms).
      await sleep(900);
      await adminQuery(`ALTER DATABASE ${DB} CONNECTION LIMIT -1`);
      const got = await Promise.all(answers);
      // README: the client that asked first hears the server's refusal; the others wait and are served.
      expect(got[0]).toBe('53300');
      expect(got.slice(1)).toEqual([2, 3, 4]);
    } finally {
      await adminQuery(`ALTER DATABASE ${DB} CONNECTION LIMIT -1`);
    }
  }, 20000);
});
