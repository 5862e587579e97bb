// The harness itself: what every integration test relies on.
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { adminQuery, lab, pgUrl, waitForReplica } from './harness/lab.js';

async function queryAs<R extends pg.QueryResultRow>(url: string, sql: string, params?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

function userPassword(name: string): string {
  const user = lab().users.find((u) => u.name === name);
  if (!user) throw new Error(`no lab user ${name}`);
  return user.password;
}

describe('postgres primary', () => {
  it.each([
    ['app', 'SCRAM-SHA-256$'],
    ['md5user', 'md5'],
    ['plainuser', 'SCRAM-SHA-256$'],
  ])('accepts %s with its password, stored as %s', async (name, storedPrefix) => {
    const { primary, database } = lab();
    const rows = await queryAs<{ who: string; db: string }>(pgUrl(primary, name, userPassword(name), database),
      'SELECT current_user AS who, current_database() AS db');
    expect(rows).toEqual([{ who: name, db: database }]);
    const stored = await adminQuery<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [name]);
    expect(stored.rows[0]?.rolpassword.startsWith(storedPrefix)).toBe(true);
  });

  it('rejects a wrong password with 28P01', async () => {
    const { primary, database } = lab();
    await expect(queryAs(pgUrl(primary, 'app', 'wrong', database), 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
  });

  it('lets md5user and plainuser create tables in the app database', async () => {
    const { primary, database } = lab();
    for (const name of ['md5user', 'plainuser']) {
      const url = pgUrl(primary, name, userPassword(name), database);
      await queryAs(url, `CREATE TABLE IF NOT EXISTS sandbox_${name} (id int)`);
      const rows = await queryAs<{ owner: string }>(url, 'SELECT tableowner AS owner FROM pg_tables WHERE tablename = $1', [`sandbox_${name}`]);
      expect(rows).toEqual([{ owner: name }]);
    }
  });
});

describe('postgres replica', () => {
  it('is in recovery and streams from the primary', async () => {
    const rows = await adminQuery<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby', [], 'replica');
    expect(rows.rows).toEqual([{ standby: true }]);
    const senders = await adminQuery<{ state: string }>("SELECT state FROM pg_stat_replication WHERE application_name = 'replica'");
    expect(senders.rows).toEqual([{ state: 'streaming' }]);
  });

  it('shows a row written on the primary after waitForReplica()', async () => {
    const { primary, replica, database } = lab();
    const url = pgUrl(primary, 'app', userPassword('app'), database);
    const marker = `row-${process.pid}-${Date.now()}`;
    await queryAs(url, 'CREATE TABLE IF NOT EXISTS sandbox_replication (marker text)');
    await queryAs(url, 'INSERT INTO sandbox_replication VALUES ($1)', [marker]);
    await waitForReplica();
    const rows = await queryAs<{ marker: string }>(pgUrl(replica, 'app', userPassword('app'), database),
      'SELECT marker FROM sandbox_replication WHERE marker = $1', [marker]);
    expect(rows).toEqual([{ marker }]);
  });

  it('refuses writes', async () => {
    const { replica, database } = lab();
    await expect(queryAs(pgUrl(replica, 'app', userPassword('app'), database), 'CREATE TABLE sandbox_nope (id int)'))
      .rejects.toMatchObject({ code: '25006' });
  });
});

describe('redis', () => {
  const redis = new Redis(lab().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  afterAll(() => redis.quit());

  it('answers PING', async () => {
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
  });
});
