// What `npm start` gives on a fresh machine: a config that names no databases runs pgway in front of
// the embedded sandbox PostgreSQL, whose databases the admin console shows and a RELOAD keeps.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';

let dir: string;
let gateway: Gateway;
let url: (user: string, password: string, database: string) => string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgway-quick-start-'));
  chmodSync(dir, 0o755); // the sandbox PostgreSQL runs as an unprivileged user when we are root
  const file = path.join(dir, 'pgway.yaml');
  writeFileSync(file, `
listen: { host: 127.0.0.1, port: 0 }
http: { enabled: false }
log: { level: silent }
auth:
  users:
    - { name: app, password: app }
    - { name: admin, password: admin, admin: true }
sandbox: { data_dir: ${JSON.stringify(path.join(dir, 'data'))} }
`);
  gateway = new Gateway(loadConfig(file), pino({ level: 'silent' }));
  const { host, port } = await gateway.start();
  url = (user, password, database) => `postgres://${user}:${password}@${host}:${port}/${database}`;
}, 120_000);

afterAll(async () => {
  await gateway?.shutdown(1000);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function query<R extends pg.QueryResultRow>(connectionString: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('pgway with no databases configured', () => {
  it('serves the sandbox, and SHOW DATABASES lists its databases', async () => {
    expect(await query(url('app', 'app', 'app'), 'SELECT current_database() AS db, current_user AS who')).toEqual([{ db: 'app', who: 'app' }]);
    const names = (await query<{ name: string }>(url('admin', 'admin', 'pgway'), 'SHOW DATABASES')).map((r) => r.name);
    expect(names.sort()).toEqual(['app', 'postgres']);
  });

  it('keeps the sandbox databases across a RELOAD of the same file (which names none)', async () => {
    const admin = new pg.Client({ connectionString: url('admin', 'admin', 'pgway') });
    await admin.connect();
    try {
      await admin.query('RELOAD');
      expect((await admin.query<{ name: string }>('SHOW DATABASES')).rows.map((r) => r.name).sort()).toEqual(['app', 'postgres']);
    } finally {
      await admin.end();
    }
    expect(await query(url('app', 'app', 'app'), 'SELECT 1 AS n')).toEqual([{ n: 1 }]);
  });
});
