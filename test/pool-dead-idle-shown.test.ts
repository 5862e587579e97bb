// Found by review round 30 B, and fixed: the pool drops such a connection as the server closes it.
// A server connection idle in the pool that PostgreSQL ends (pg_terminate_backend, a restart) is closed by
// the server at once, and pgway reads its FATAL and the close at once; but SHOW POOLS (sv_idle), SHOW SERVERS
// and /metrics keep counting it as an idle connection until the pool's next 1-second maintenance pass (or
// the next acquire). PgBouncer drops a server it sees close at once ("server conn crashed?").
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway | undefined;
afterEach(async () => { await gw?.stop(); gw = undefined; });

async function client(url: string, name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

describe('SHOW POOLS / SHOW SERVERS after idle server connections are terminated', () => {
  it('no longer count connections whose server has gone', async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000 }' });
    const a = await client(gw.url(), 'dead-idle-a');
    const b = await client(gw.url(), 'dead-idle-b');
    await Promise.all([a.query('SELECT pg_sleep(0.1)'), b.query('SELECT pg_sleep(0.1)')]);
    const admin = await client(gw.url('admin', 'pgway'), 'dead-idle-admin');
    const pids = (await admin.query<{ remote_pid: string; database: string }>('SHOW SERVERS')).rows
      .filter((r) => r.database === 'app').map((r) => Number(r.remote_pid));
    expect(pids).toHaveLength(2);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    await sleep(150);
    const gone = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
    expect(gone.rows[0]!.n).toBe(0);
    const pool = (await admin.query<Record<string, string>>('SHOW POOLS')).rows.find((r) => r.database === 'app')!;
    const servers = (await admin.query<Record<string, string>>('SHOW SERVERS')).rows.filter((r) => r.database === 'app');
    expect({ sv_idle: pool.sv_idle, servers: servers.map((s) => s.remote_pid) }).toEqual({ sv_idle: '0', servers: [] });
    await Promise.all([a.end(), b.end(), admin.end()]);
  });
});
