// Vitest global setup: one PostgreSQL primary + replica and one Redis per test run, in a fresh temp dir.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startCluster, type RunningCluster, type SandboxUser } from '../../src/sandbox/postgres-cluster.js';
import { redisAvailability, startRedis, type RunningRedis } from '../../src/sandbox/redis-server.js';
import type { LabInfo } from './lab.js';

const DATABASE = 'app';
const USERS: SandboxUser[] = [
  { name: 'app', password: 'app-secret' },
  { name: 'md5user', password: 'md5-secret', hba: 'md5' },
  { name: 'plainuser', password: 'plain-secret', hba: 'password' },
  { name: 'repluser', password: 'repl-secret', replication: true },
];

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const availability = redisAvailability();
  if (availability.how === 'none') {
    const err = new Error(availability.message);
    err.stack = `Error: ${availability.message}`; // one clear line; a code frame of this file would only distract
    throw err;
  }

  const started = Date.now();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgway-lab-'));
  let cluster: RunningCluster | undefined;
  let redis: RunningRedis | undefined;
  const teardown = async (): Promise<void> => {
    await Promise.allSettled([cluster?.stop(), redis?.stop()]);
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  let info: LabInfo;
  try {
    // Settle both before acting, so a failure of one never leaves the other running unnoticed.
    const [pgResult, redisResult] = await Promise.allSettled([
      startCluster({ dataDir, users: USERS, databases: [{ name: DATABASE, owner: 'app' }] }),
      startRedis(),
    ]);
    if (pgResult.status === 'fulfilled') cluster = pgResult.value;
    if (redisResult.status === 'fulfilled') redis = redisResult.value;
    if (pgResult.status === 'rejected') throw pgResult.reason;
    if (redisResult.status === 'rejected') throw redisResult.reason;
    const pgLab = pgResult.value;
    if (!pgLab.replica) throw new Error('the lab cluster started without a replica');
    await grantAppAccess(pgLab);
    await pgLab.waitForReplica();
    info = {
      primary: pgLab.primary, replica: pgLab.replica,
      superuser: pgLab.superuser, superuserPassword: pgLab.superuserPassword,
      users: USERS, database: DATABASE, redisUrl: redisResult.value.url,
      pgVersion: pgLab.version, binDir: pgLab.binDir,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
  project.provide('lab', info);
  console.log(`lab: PostgreSQL ${info.pgVersion} primary ${info.primary.port}, replica ${info.replica.port}, ` +
    `${info.redisUrl} (${availability.how}), ready in ${Date.now() - started} ms`);
  return teardown;
}

/** md5user and plainuser get the same rights as app in the app database, so auth tests can run queries. */
async function grantAppAccess(cluster: RunningCluster): Promise<void> {
  const client = new pg.Client({ ...cluster.primary, user: cluster.superuser, password: cluster.superuserPassword, database: DATABASE });
  await client.connect();
  try {
    await client.query(`GRANT ALL PRIVILEGES ON DATABASE ${DATABASE} TO md5user, plainuser`);
    await client.query('GRANT ALL ON SCHEMA public TO md5user, plainuser');
  } finally {
    await client.end();
  }
}
