// Found by review round 32 C, and fixed: a server connection still logging in is counted by SHOW POOLS (sv_login), SHOW
// DATABASES (current_connections) and pgway_server_connections{state="login"}, but SHOW SERVERS does not
// list it at all, although pgway's own ServerInfo has a `login` state for it (PgBouncer 1.18 lists such a
// server, state `new`). An operator looking at SHOW SERVERS for the connection a waiting client is
// stuck behind (a server that accepts TCP but never answers the startup packet) sees nothing, while
// SHOW POOLS says one is there.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { errorOf, waitFor } from './helpers/pg-helpers.js';

const DB = 'review_show_servers_login';
const { files, connect } = fileGatewayTests(DB);

type Row = Record<string, string | null>;
const held: net.Socket[] = [];
let hole: net.Server | undefined;
afterEach(() => {
  for (const s of held.splice(0)) s.destroy();
  hole?.close();
});

describe('SHOW SERVERS lists a server connection logging in', () => {
  it('one row per connection SHOW POOLS counts in sv_login', async () => {
    // A "server" that accepts the connection and never answers: the login hangs until server_connect_timeout_ms.
    hole = net.createServer((s) => { held.push(s); s.on('error', () => undefined); });
    await new Promise<void>((resolve) => hole!.listen(0, '127.0.0.1', () => resolve()));
    const port = (hole.address() as net.AddressInfo).port;
    const gw = await files.start({ pool: '{ mode: transaction, size: 2, server_connect_timeout_ms: 3000 }', primaryPort: port });
    const admin = await connect(gw.url('admin', 'pgway'));
    const login = errorOf(connect(gw.url()));
    let pool: Row | undefined;
    await waitFor('a server logging in', async () => {
      pool = (await admin.query<Row>('SHOW POOLS')).rows.find((r) => r.database === DB);
      return pool?.sv_login === '1';
    }, 2000);
    const servers = (await admin.query<Row>('SHOW SERVERS')).rows;
    const databases = (await admin.query<Row>('SHOW DATABASES')).rows.find((r) => r.name === DB);
    expect({
      svLogin: pool?.sv_login,
      currentConnections: databases?.current_connections,
      serversListed: servers.map((s) => ({ database: s.database, state: s.state === 'new' ? 'login' : s.state })),
    }).toEqual({
      svLogin: '1',
      currentConnections: '1',
      serversListed: [{ database: DB, state: 'login' }],
    });
    await login;
  });
});
