// Found by review round 32 C, and fixed: SHOW SERVERS' `user` is "User name pgbouncer uses to connect to server" (PgBouncer
// 1.18). pgway shows the client's login name instead. A user configured with `server_user: app`
// (trustapp here) logs its server connections in as `app` (pg_stat_activity.usename), yet SHOW SERVERS
// lists them under `trustapp`, a role that may not even exist in PostgreSQL: an operator matching
// SHOW SERVERS with pg_stat_activity (or looking for the connections of role app) is misled.
import { describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { queryMessage, rawTrustLogin, readCycle } from './helpers/raw-client.js';

const DB = 'review_show_servers_user';
const { files, connect } = fileGatewayTests(DB);

describe('SHOW SERVERS user', () => {
  it('is the role the server connection logged in as', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2 }' });
    const admin = await connect(gw.url('admin', 'pgway'));
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port }, { user: 'trustapp', database: DB });
    client.write(queryMessage('BEGIN'));
    await readCycle(client);
    const shown = (await admin.query<{ user: string; remote_pid: string }>('SHOW SERVERS')).rows.map((r) => ({ pid: Number(r.remote_pid), user: r.user }));
    const actual = (await adminQuery<{ pid: number; usename: string }>(`SELECT pid, usename FROM pg_stat_activity WHERE datname = '${DB}'`)).rows
      .map((r) => ({ pid: r.pid, user: r.usename }));
    client.destroy();
    expect(shown).toEqual(actual);
  });
});
