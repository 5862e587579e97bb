// PAUSE refusals as PgBouncer 1.18 makes them (admin.c admin_cmd_pause): under a global PAUSE every PAUSE
// is refused, "already suspended/paused"; PAUSE db of a database already paused, by PAUSE db or KILL db,
// is taken and waits for that database to drain.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { FileGateways, type FileGateway } from './helpers/file-gateway.js';
import { errorOf, sleep } from './helpers/pg-helpers.js';

const DB = 'pause_db_parity';
const files = new FileGateways(DB);
beforeAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${DB} OWNER app`);
});
afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  files.removeFiles();
});
const opened: pg.Client[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => Promise.race([c.end().catch(() => undefined), sleep(1000)])));
  await files.stopAll();
});
async function console_(gw: FileGateway): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  client.on('error', () => undefined);
  opened.push(client);
  await client.connect();
  return client;
}
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
    const app = new pg.Client({ connectionString: gw.url('app', DB, 'app-secret') });
    app.on('error', () => undefined);
    opened.push(app);
    await app.connect();
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
