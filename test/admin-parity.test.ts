// The admin console as PgBouncer 1.18 answers it.
// - PAUSE refusals (admin.c admin_cmd_pause): under a global PAUSE every PAUSE is refused, "already
//   suspended/paused"; PAUSE db of a database already paused, by PAUSE db or KILL db, is taken and waits
//   for that database to drain.
// - SHOW POOLS has one row per (database, user), and /metrics one series: a `/` inside either name must
//   not make two pools one, as (database "d/u", user "app") and (database "d", user "u/app") would.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { errorOf, sleep } from './helpers/pg-helpers.js';

const DB = 'admin_parity';
const { files, connect } = fileGatewayTests(DB);
const console_ = (gw: FileGateway): Promise<pg.Client> => connect(gw.url('admin', 'pgway'));
const messageOf = async (p: Promise<unknown>): Promise<string | undefined> => ((await errorOf(p)) as Error | undefined)?.message;

describe('PAUSE db, as PgBouncer answers it', () => {
  it('a second PAUSE db is accepted (PgBouncer sets db_paused again)', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }' });
    const admin = await console_(gw);
    await admin.query(`PAUSE ${DB}`);
    expect(await messageOf(admin.query(`PAUSE ${DB}`))).toBeUndefined();
  });

  it('a second PAUSE db, from another console, also waits for the open transaction to end', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }' });
    const app = await connect(gw.url());
    await app.query('BEGIN');
    const done: string[] = [];
    const first = (await console_(gw)).query(`PAUSE ${DB}`).then(() => done.push('first'));
    await sleep(100);
    const second = (await console_(gw)).query(`PAUSE ${DB}`).then(() => done.push('second'));
    await sleep(200);
    expect(done).toEqual([]);
    await app.query('COMMIT');
    await Promise.all([first, second]);
    expect(done.sort()).toEqual(['first', 'second']);
  });

  it('PAUSE db after KILL db is accepted', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }' });
    const admin = await console_(gw);
    await admin.query(`KILL ${DB}`);
    expect(await messageOf(admin.query(`PAUSE ${DB}`))).toBeUndefined();
  });

  it('PAUSE db while a global PAUSE is in force is refused with "already suspended/paused"', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }' });
    const admin = await console_(gw);
    await admin.query('PAUSE');
    expect(await messageOf(admin.query(`PAUSE ${DB}`))).toMatch(/already suspended\/paused/);
  });
});

describe('a / in a database or user name', () => {
  it('leaves the pools (d/u, app) and (d, u/app) two rows in SHOW POOLS and two series in /metrics', async () => {
    const gw = await files.start({
      pool: '{ mode: transaction, size: 2 }',
      http: true,
      databases: { 'd/u': DB, d: DB },
      users: ['{ name: "u/app", method: trust, server_user: app, server_password: app-secret }'],
    });
    const one = await connect(gw.url('app', 'd/u'));
    const two = await connect(gw.url('u/app', 'd'));
    await one.query('BEGIN'); // one server connection busy in pool (d/u, app)
    await two.query('SELECT 1'); // one idle in pool (d, u/app)
    const admin = await connect(gw.url('admin', 'pgway'));
    const rows = (await admin.query<Record<string, string>>('SHOW POOLS')).rows.map((r) => ({
      database: r.database, user: r.user, cl_active: r.cl_active, sv_active: r.sv_active, sv_idle: r.sv_idle,
    }));
    const metrics = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    await one.query('COMMIT');
    const series = metrics.split('\n').filter((l) => l.startsWith('pgway_server_connections{'));
    expect(series).toEqual(expect.arrayContaining([
      'pgway_server_connections{pool="d%2Fu/app",state="active"} 1',
      'pgway_server_connections{pool="d/u%2Fapp",state="idle"} 1',
    ]));
    expect(rows).toEqual(expect.arrayContaining([
      { database: 'd/u', user: 'app', cl_active: '1', sv_active: '1', sv_idle: '0' },
      { database: 'd', user: 'u/app', cl_active: '1', sv_active: '0', sv_idle: '1' },
    ]));
    expect(rows).toHaveLength(2);
  });
});
