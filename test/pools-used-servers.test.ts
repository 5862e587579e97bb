// Found by review round 23 B, and fixed:
// SHOW POOLS must agree with SHOW SERVERS about a server connection no client is using. A session-mode
// client leaves; its server connection runs server_reset_query (slow here: 2 s) before going back idle.
// Meanwhile SHOW SERVERS lists it with no link (state `tested` since review round 32 C). SHOW POOLS, however, counted it in
// sv_active (which PgBouncer and pgway's README define as servers linked to a client) and leaves sv_used
// at 0 -- a monitoring script reading SHOW POOLS (or pgway_server_connections{state="active"}, fed from
// the same numbers) saw a busy server with cl_active 0. PgBouncer counts such a server apart (its
// SV_TESTED list, sv_tested), never in sv_active.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { waitFor } from './helpers/pg-helpers.js';

const DB = 'pools_used_servers';
const { files, connect } = fileGatewayTests(DB);

type Row = Record<string, string | null>;

describe('SHOW POOLS vs SHOW SERVERS while a server connection is being reset', () => {
  it('a server being reset (no client linked) is not counted in sv_active; SHOW POOLS agrees with SHOW SERVERS', async () => {
    const gw = await files.start({ pool: `{ mode: session, size: 2, server_reset_query: "SELECT pg_sleep(2)" }`, http: true });
    const admin = await connect(gw.url('admin', 'pgway'));
    const client = await connect(gw.url());
    await client.query('SELECT 1');
    await client.end();

    let servers: Row[] = [];
    await waitFor('the departed client\'s server connection listed without a link', async () => {
      servers = (await admin.query<Row>('SHOW SERVERS')).rows;
      return servers.length === 1 && servers[0]!.link === null;
    }, 1500);
    const pools = (await admin.query<Row>('SHOW POOLS')).rows.filter((r) => r.database === DB);
    const metrics = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    const activeGauge = /pgway_server_connections\{pool="pools_used_servers\/app",state="active"\} (\d+)/.exec(metrics)?.[1];

    const linked = servers.filter((s) => s.link !== null).length;
    const tested = servers.filter((s) => s.state === 'tested').length;
    expect({
      showServers: { rows: servers.length, linked, tested },
      showPools: { cl_active: pools[0]?.cl_active, sv_active: pools[0]?.sv_active, sv_tested: pools[0]?.sv_tested },
      metricActive: activeGauge,
    }).toEqual({
      showServers: { rows: 1, linked: 0, tested: 1 },
      // What SHOW SERVERS says, counted: no server is linked to a client; the one being reset is
      // `tested` (review round 32 C: PgBouncer 1.18 counts a server running its reset query in sv_tested).
      showPools: { cl_active: '0', sv_active: '0', sv_tested: '1' },
      metricActive: '0',
    });
  });
});
