/**
 * The benchmark's PostgreSQL: one primary (no replica) from src/sandbox/postgres-cluster.ts, with a
 * `bench` role owning a `bench` database, plus what the proxies need to know about it (the uid it
 * runs as, the role's SCRAM verifier, the postmaster's PID for CPU accounting).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startCluster, type RunningCluster } from '../../src/sandbox/postgres-cluster.js';
import { exited, spawnTracked, stopProcess } from './processes.js';

export const BENCH_USER = 'bench';
export const BENCH_PASSWORD = 'bench-secret';
export const BENCH_DATABASE = 'bench';

/** The unprivileged account PostgreSQL (and so PgBouncer) runs as; undefined when we are not root. */
export interface RunAs { name: string; uid: number; gid: number }

export interface BenchCluster {
  host: string;
  port: number;
  version: string;
  dataDir: string;
  runAs: RunAs | undefined;
  postmasterPid(): number;
  /** The bench role's password as PostgreSQL stores it (SCRAM-SHA-256$...). */
  scramVerifier(): Promise<string>;
  stop(): Promise<void>;
}

/** A fresh temp dir that the unprivileged PostgreSQL uid may traverse. */
export async function makeWorkDir(prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  await fsp.chmod(dir, 0o755);
  return dir;
}

export async function startBenchCluster(dataDir: string, settings: Record<string, string> = {}): Promise<BenchCluster> {
  const cluster: RunningCluster = await startCluster({
    dataDir,
    replica: false,
    users: [{ name: BENCH_USER, password: BENCH_PASSWORD }],
    databases: [{ name: BENCH_DATABASE, owner: BENCH_USER }],
    settings: { max_connections: '400', ...settings },
  });
  const primaryDir = path.join(cluster.dataDir, 'primary');
  const owner = fs.statSync(primaryDir).uid;
  const runAs = process.getuid?.() === 0 ? accountOf(owner) : undefined;
  return {
    host: cluster.primary.host,
    port: cluster.primary.port,
    version: cluster.version,
    dataDir: cluster.dataDir,
    runAs,
    postmasterPid: () => Number(fs.readFileSync(path.join(primaryDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]),
    scramVerifier: async () => {
      const client = new pg.Client({ host: cluster.primary.host, port: cluster.primary.port, user: cluster.superuser, password: cluster.superuserPassword, database: 'postgres' });
      await client.connect();
      try {
        const r = await client.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [BENCH_USER]);
        const verifier = r.rows[0]?.rolpassword;
        if (!verifier?.startsWith('SCRAM-SHA-256$')) throw new Error(`role ${BENCH_USER} has no SCRAM verifier`);
        return verifier;
      } finally {
        await client.end();
      }
    },
    stop: () => cluster.stop(),
  };
}

function accountOf(uid: number): RunAs {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (Number(f[2]) === uid && f[0]) return { name: f[0], uid, gid: Number(f[3]) };
  }
  return { name: String(uid), uid, gid: uid };
}

/** Environment for libpq tools (pgbench, psql): no PG* leaking in from the caller's shell. */
export function libpqEnv(password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  // No TLS or GSS negotiation round trips: none of the three targets offers them.
  return { ...env, PGPASSWORD: password, PGSSLMODE: 'disable', PGGSSENCMODE: 'disable' };
}

/** `pgbench -i -s scale`, unless the tables already hold that scale (a reused --data-dir). */
export async function initPgbench(cluster: BenchCluster, scale: number, timeoutMs = 600_000): Promise<'created' | 'reused'> {
  const client = new pg.Client({ host: cluster.host, port: cluster.port, user: BENCH_USER, password: BENCH_PASSWORD, database: BENCH_DATABASE });
  await client.connect();
  try {
    const exists = await client.query<{ t: string | null }>("SELECT to_regclass('pgbench_branches')::text AS t");
    if (exists.rows[0]?.t) {
      const r = await client.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_branches');
      if (Number(r.rows[0]?.n) === scale) return 'reused';
    }
  } finally {
    await client.end();
  }
  const child = spawnTracked('pgbench', ['-i', '-q', '-s', String(scale), '-h', cluster.host, '-p', String(cluster.port), '-U', BENCH_USER, BENCH_DATABASE], {
    env: libpqEnv(BENCH_PASSWORD),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const timer = setTimeout(() => void stopProcess(child, 'SIGINT'), timeoutMs);
  const exit = await exited(child);
  clearTimeout(timer);
  if (exit.code !== 0) throw new Error(`pgbench -i failed (${exit.error?.message ?? exit.signal ?? exit.code}):\n${output.trim()}`);
  return 'created';
}

/** `npm run build` (tsc), so the proxy under test is the code in the tree, not a stale dist/. */
export function buildPgway(repoDir: string): void {
  const started = Date.now();
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: repoDir, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    throw new Error(`npm run build failed (${r.error?.message ?? r.signal ?? r.status}); fix it or pass --no-build to use the existing dist/:\n${`${r.stdout}${r.stderr}`.trim()}`);
  }
  console.error(`built pgway in ${Date.now() - started} ms`);
}

export function toolVersion(cmd: string, args: string[] = ['--version']): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n', 1)[0] ?? '').trim() : 'not installed';
}
