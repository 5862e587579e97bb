// Found by review round 32 C, and fixed: SHOW POOLS' sv_used and SHOW SERVERS' state `used` do not mean what they mean in
// PgBouncer, whose column names the console says it keeps "where the meaning is the same". In
// PgBouncer 1.18 (its docs, and a pgbouncer 1.18 run with this very setup: session mode,
// server_reset_query = SELECT pg_sleep(2), server_check_delay = 1):
//   - a server running server_reset_query (or the check query) is sv_tested, state `tested`;
//   - a server idle for longer than server_check_delay (it will be checked before reuse) is sv_used,
//     state `used`; sv_idle counts only connections "immediately usable".
// pgway has no sv_tested column, counts the server being reset in sv_used (state `used`), and keeps
// the connection idle past server_check_delay in sv_idle (state `idle`). A PgBouncer dashboard or
// exporter reading these columns (e.g. sv_idle + sv_used as the connections a client can get) reads
// pgway's numbers wrong. (test/pools-used-servers.test.ts, from round 23 B, asserts the current meaning
// on the premise that PgBouncer counts a resetting server in sv_used: PgBouncer 1.18 does not.)
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';

const DB = 'review_sv_used_meaning';
const { files, connect } = fileGatewayTests(DB);

type Row = Record<string, string | null>;

describe('sv_used / sv_tested as PgBouncer 1.18 defines them', () => {
  it('a server running server_reset_query is sv_tested (state tested); one idle past server_check_delay is sv_used (state used)', async () => {
    const gw = await files.start({ pool: '{ mode: session, size: 2, server_reset_query: "SELECT pg_sleep(2)", server_check_delay_ms: 1000 }' });
    const admin = await connect(gw.url('admin', 'pgway'));
    const look = async (): Promise<{ pool: Row; servers: (string | null)[] }> => {
      const pool = (await admin.query<Row>('SHOW POOLS')).rows.find((r) => r.database === DB)!;
      const servers = (await admin.query<Row>('SHOW SERVERS')).rows.map((r) => r.state ?? null);
      return { pool: { sv_idle: pool.sv_idle ?? null, sv_used: pool.sv_used ?? null, sv_tested: pool.sv_tested ?? null }, servers };
    };
    const client = await connect(gw.url());
    await client.query('SELECT 1');
    await client.end();
    await waitFor('the departed client\'s server unlinked', async () => (await admin.query<Row>('SHOW SERVERS')).rows.some((r) => r.link === null), 1500);
    const resetting = await look();
    await waitFor('reset over', async () => (await admin.query<Row>('SHOW SERVERS')).rows.every((r) => r.state !== 'used' && r.state !== 'tested'), 5000).catch(() => undefined);
    await sleep(1500); // idle for longer than server_check_delay_ms
    const idleLong = await look();
    expect({ resetting, idleLong }).toEqual({
      resetting: { pool: { sv_idle: '0', sv_used: '0', sv_tested: '1' }, servers: ['tested'] },
      idleLong: { pool: { sv_idle: '0', sv_used: '1', sv_tested: '0' }, servers: ['used'] },
    });
  });
});
