/**
 * Memory and login cost of many idle clients: N bare client connections log in through the proxy
 * (SCRAM, pgway's own wire code) and then sit idle. Measures the proxy's RSS before and with the N
 * idle clients (KB per idle client), the time and proxy CPU to log them all in, and checks that a
 * few of the idle clients can still run a query. Same for PgBouncer. Meant for transaction mode,
 * where idle clients hold no server connection.
 *
 *   npm run bench:idle -- [--clients 10000] [--mode transaction|session] [--pool-size 20]
 *                         [--targets pgway,pgbouncer] [--workers N] [--concurrency 50]
 *                         [--login-timeout 60] [--timeout 600] [--pgway-dir DIR] [--no-build]
 */
import readline from 'node:readline';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { BENCH_DATABASE, BENCH_PASSWORD, BENCH_USER, buildPgway, makeWorkDir, startBenchCluster, toolVersion } from './lib/bench-cluster.js';
import type { WorkerConfig, WorkerCounts } from './lib/idle-client-worker.js';
import { findPgBouncer, startPgBouncer } from './lib/pgbouncer-process.js';
import { startPgway, type PoolModeFlag } from './lib/pgway-process.js';
import { choiceFlag, exited, installExitHandlers, onCleanup, raiseOpenFiles, runMain, spawnTracked, stopProcess, intFlag, listFlag } from './lib/processes.js';
import { memoryKb, procTimes, ticksToUs } from './lib/proc-stats.js';
import type { ProxyProcess } from './lib/proxy-process.js';
import { fileTimestamp, formatNumber, machineDescription, markdownTable, pgwayDescription, writeResult } from './lib/report.js';

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKER = path.join(REPO_DIR, 'bench', 'lib', 'idle-client-worker.ts');
const TARGETS = ['pgway', 'pgbouncer'] as const;
type TargetName = (typeof TARGETS)[number];
const LABEL: Record<TargetName, string> = { pgway: 'pgway', pgbouncer: 'PgBouncer' };
const CLIENTS_PER_WORKER = 2500;
const SETTLE_MS = 2000;
const QUERY_CHECKS = 20;
const WARMUP_CLIENTS = 500;

interface Options {
  clients: number; mode: PoolModeFlag; poolSize: number; targets: TargetName[]; workers: number; concurrency: number;
  loginTimeoutMs: number; timeoutMs: number; pgwayDir: string; build: boolean;
}

const USAGE = `usage: npm run bench:idle -- [--clients 10000] [--mode transaction|session] [--pool-size 20]
                             [--targets pgway,pgbouncer] [--workers N] [--concurrency 50]
                             [--login-timeout 60] [--timeout 600] [--pgway-dir DIR] [--no-build]`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string', default: '10000' },
      mode: { type: 'string', default: 'transaction' },
      'pool-size': { type: 'string', default: '20' },
      targets: { type: 'string', default: TARGETS.join(',') },
      workers: { type: 'string' },
      concurrency: { type: 'string', default: '50' },
      'login-timeout': { type: 'string', default: '60' },
      timeout: { type: 'string', default: '600' },
      'pgway-dir': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string, min: number): number => intFlag(name, v, min, USAGE);
  const clients = int('clients', values.clients, 1);
  return {
    clients, mode: choiceFlag<PoolModeFlag>('mode', values.mode, ['session', 'transaction']), poolSize: int('pool-size', values['pool-size'], 1),
    targets: listFlag('targets', values.targets, TARGETS),
    workers: values.workers ? int('workers', values.workers, 1) : Math.ceil(clients / CLIENTS_PER_WORKER),
    concurrency: int('concurrency', values.concurrency, 1),
    loginTimeoutMs: int('login-timeout', values['login-timeout'], 1) * 1000,
    timeoutMs: int('timeout', values.timeout, 10) * 1000,
    pgwayDir: path.resolve(values['pgway-dir'] ?? REPO_DIR),
    build: !values['no-build'],
  };
}

/** One worker process and its JSON-line reports. */
class WorkerHandle {
  private readonly inbox: Record<string, unknown>[] = [];
  private wake: (() => void) | undefined;

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.inbox.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        console.error(`worker ${child.pid}: ${line}`);
      }
      this.wake?.();
    });
    child.stderr?.on('data', (b: Buffer) => process.stderr.write(`worker ${child.pid}: ${b.toString()}`));
  }

  send(command: string): void {
    if (this.child.stdin?.writable) this.child.stdin.write(`${command}\n`);
  }

  /** The next report of `type`, or undefined after `timeoutMs` (or when the worker is gone). */
  async next<T>(type: string, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as T;
      const left = deadline - Date.now();
      if (left <= 0 || this.child.exitCode !== null || this.child.signalCode !== null) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

interface TargetResult {
  target: TargetName;
  counts: WorkerCounts;
  allLoggedIn: boolean;
  loginMs: number;
  rssBeforeKb: number;
  rssIdleKb: number;
  peakKb: number;
  rssAfterCloseKb: number;
  cpuUsPerLogin: number | undefined;
  /** No clock tick was spent: the figure is an upper bound. */
  cpuBelowResolution: boolean;
  queries: { asked: number; ok: number; errors: Record<string, number> };
}

/** Opens `clients` idle clients through `proxy`, measures, closes them again. */
async function measure(o: Options, target: TargetName, proxy: ProxyProcess, clients: number, loginTimeoutMs: number): Promise<TargetResult> {
  const rss = (): { rssKb: number; peakKb: number } => memoryKb(proxy.pid) ?? { rssKb: NaN, peakKb: NaN };
  await sleep(SETTLE_MS);
  const rssBeforeKb = rss().rssKb;
  const workerCount = Math.min(o.workers, clients);
  const perWorker = Math.ceil(clients / workerCount);
  const workers: WorkerHandle[] = [];
  for (let left = clients; left > 0; left -= perWorker) {
    const cfg: WorkerConfig = {
      host: proxy.host, port: proxy.port, user: BENCH_USER, password: BENCH_PASSWORD, database: BENCH_DATABASE,
      count: Math.min(perWorker, left), concurrency: o.concurrency, loginTimeoutMs,
    };
    const child = spawnTracked(process.execPath, [...process.execArgv, WORKER, JSON.stringify(cfg)], { cwd: REPO_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid !== undefined) raiseOpenFiles(child.pid, cfg.count + 256);
    workers.push(new WorkerHandle(child));
  }
  for (const w of workers) if (!(await w.next('ready', 30_000))) throw new Error(`idle-client worker ${w.child.pid} did not start`);

  const cpuBefore = procTimes(proxy.pid)?.ownTicks ?? 0;
  const goAt = Date.now();
  for (const w of workers) w.send('go');
  const done = await Promise.all(workers.map((w) => w.next<WorkerCounts>('done', loginTimeoutMs + 5000)));
  const allLoggedIn = done.every((d) => d !== undefined && d.failed === 0);
  const cpuTicks = (procTimes(proxy.pid)?.ownTicks ?? 0) - cpuBefore;
  const loginMs = Math.max(...done.map((d) => d?.elapsedMs ?? Date.now() - goAt));
  // Where a worker did not finish, ask where it stands.
  const counts = await Promise.all(workers.map(async (w, i) => {
    const d = done[i];
    if (d) return d;
    w.send('status');
    return (await w.next<WorkerCounts>('status', 5000)) ?? { ok: 0, failed: 0, waiting: 0, notStarted: 0, closedLater: 0, errors: { 'worker did not answer': 1 }, elapsedMs: 0 };
  }));
  const total = sumCounts(counts);
  await sleep(SETTLE_MS);
  const idle = rss();

  const perWorkerQueries = Math.ceil(QUERY_CHECKS / workers.length);
  for (const w of workers) w.send(`query ${perWorkerQueries}`);
  const answers = await Promise.all(workers.map((w) => w.next<{ asked: number; ok: number; errors: Record<string, number> }>('query', 20_000)));
  const queries = { asked: 0, ok: 0, errors: {} as Record<string, number> };
  for (const a of answers) {
    if (!a) {
      queries.errors['worker did not answer'] = (queries.errors['worker did not answer'] ?? 0) + 1;
      continue;
    }
    queries.asked += a.asked;
    queries.ok += a.ok;
    for (const [k, v] of Object.entries(a.errors)) queries.errors[k] = (queries.errors[k] ?? 0) + v;
  }

  for (const w of workers) w.send('close');
  await Promise.all(workers.map(async (w) => {
    const timer = setTimeout(() => void stopProcess(w.child, 'SIGKILL'), 10_000);
    await exited(w.child);
    clearTimeout(timer);
  }));
  await sleep(SETTLE_MS);
  return {
    target, counts: total, allLoggedIn, loginMs, rssBeforeKb, rssIdleKb: idle.rssKb, peakKb: idle.peakKb,
    rssAfterCloseKb: rss().rssKb,
    cpuUsPerLogin: allLoggedIn && total.ok > 0 ? ticksToUs(Math.max(cpuTicks, 1)) / total.ok : undefined,
    cpuBelowResolution: allLoggedIn && cpuTicks === 0,
    queries,
  };
}

function sumCounts(all: WorkerCounts[]): WorkerCounts {
  const sum: WorkerCounts = { ok: 0, failed: 0, waiting: 0, notStarted: 0, closedLater: 0, errors: {}, elapsedMs: 0 };
  for (const c of all) {
    sum.ok += c.ok;
    sum.failed += c.failed;
    sum.waiting += c.waiting;
    sum.notStarted += c.notStarted;
    sum.closedLater += c.closedLater;
    sum.elapsedMs = Math.max(sum.elapsedMs, c.elapsedMs);
    for (const [k, v] of Object.entries(c.errors)) sum.errors[k] = (sum.errors[k] ?? 0) + v;
  }
  return sum;
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  installExitHandlers(o.timeoutMs);
  const startedAt = new Date();
  const workDir = await makeWorkDir('pgway-idle-');
  onCleanup(() => fsp.rm(workDir, { recursive: true, force: true }));
  if (o.build && o.targets.includes('pgway')) buildPgway(o.pgwayDir);

  const cluster = await startBenchCluster(path.join(workDir, 'data'));
  onCleanup(() => cluster.stop());
  const login = { user: BENCH_USER, password: BENCH_PASSWORD, database: BENCH_DATABASE };
  const server = { host: cluster.host, port: cluster.port };
  const maxClientConn = Math.max(1000, o.clients + 100);

  const results: TargetResult[] = [];
  const skipped: string[] = [];
  for (const target of o.targets) {
    let proxy: ProxyProcess;
    if (target === 'pgbouncer') {
      const binary = findPgBouncer();
      if (!binary) {
        skipped.push('PgBouncer: not installed');
        continue;
      }
      proxy = await startPgBouncer(binary, { workDir, server, login, scramVerifier: await cluster.scramVerifier(), runAs: cluster.runAs, mode: o.mode, poolSize: o.poolSize, maxClientConn });
    } else {
      proxy = await startPgway({ repoDir: o.pgwayDir, workDir, server, login, mode: o.mode, poolSize: o.poolSize, maxClientConn });
    }
    onCleanup(() => proxy.stop());
    // A first, smaller pass grows heaps and warms the JIT, so the baseline RSS is not a cold process's.
    const warmup = Math.min(o.clients, WARMUP_CLIENTS);
    console.error(`${LABEL[target]}: warm-up with ${warmup} clients`);
    await measure(o, target, proxy, warmup, Math.min(o.loginTimeoutMs, 10_000));
    console.error(`${LABEL[target]}: opening ${o.clients} idle clients (${o.mode} mode, pool size ${o.poolSize}, ${o.workers} worker processes)`);
    const r = await measure(o, target, proxy, o.clients, o.loginTimeoutMs);
    results.push(r);
    console.error(explain(o, r));
    await proxy.stop();
  }

  const text = report(o, startedAt, cluster.version, results, skipped);
  console.log(`\n${text}`);
  const file = writeResult(REPO_DIR, `${fileTimestamp(startedAt)}-idle.md`, `${text}\n`);
  console.error(`\nwritten to ${path.relative(process.cwd(), file)}`);
  return results.every((r) => r.allLoggedIn) ? 0 : 1;
}

/** A sentence for the reader: did every client get in, and if not, why that matters. */
function explain(o: Options, r: TargetResult): string {
  const c = r.counts;
  const name = LABEL[r.target];
  if (r.allLoggedIn) {
    return `${name}: ${c.ok} clients logged in in ${(r.loginMs / 1000).toFixed(1)} s; ${r.queries.ok}/${r.queries.asked} idle clients could still run a query`;
  }
  const errors = Object.entries(c.errors).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([e, n]) => `${n}x "${e}"`).join(', ');
  const why = o.mode === 'session' && c.ok <= o.poolSize + 1
    ? ` In session mode every client needs its own server connection, so no more than the pool size (${o.poolSize}) can be logged in; use --mode transaction.`
    : o.mode === 'transaction' && c.ok <= o.poolSize + 1
      ? ` ${name} let no more clients in than its pool has server connections: in transaction mode an idle client must not hold one (transaction pooling not working?).`
      : '';
  return `${name}: only ${c.ok} of ${o.clients} clients logged in within ${o.loginTimeoutMs / 1000} s ` +
    `(${c.failed} failed, ${c.waiting} still waiting, ${c.notStarted} not tried).${why}${errors ? ` Errors: ${errors}` : ''}`;
}

function report(o: Options, startedAt: Date, pgVersion: string, results: TargetResult[], skipped: string[]): string {
  const mb = (kb: number): string => formatNumber(kb / 1024, 1);
  const rows = results.map((r) => {
    const c = r.counts;
    const perClient = c.ok > 0 ? (r.rssIdleKb - r.rssBeforeKb) / c.ok : undefined;
    return [
      LABEL[r.target],
      r.allLoggedIn ? String(c.ok) : `FAIL (${c.ok} of ${o.clients}; ${c.failed} failed, ${c.waiting} still waiting, ${c.notStarted} not tried)`,
      r.allLoggedIn ? (r.loginMs / 1000).toFixed(2) : '-',
      r.allLoggedIn && r.loginMs > 0 ? formatNumber((c.ok * 1000) / r.loginMs, 0) : '-',
      `${r.cpuBelowResolution ? '< ' : ''}${formatNumber(r.cpuUsPerLogin, 0)}`,
      mb(r.rssBeforeKb), mb(r.rssIdleKb), mb(r.peakKb),
      formatNumber(perClient, 2),
      mb(r.rssAfterCloseKb),
      `${r.queries.ok}/${r.queries.asked}`,
    ];
  });
  const header = ['proxy', 'clients logged in', 'time to log in all (s)', 'logins/s', 'proxy CPU us/login', 'RSS before (MB)',
    `RSS with idle clients (MB)`, 'peak RSS (MB)', 'KB per idle client', 'RSS after they left (MB)', 'idle clients that could run SELECT 1'];
  return [
    `## Idle clients: ${o.clients} through each proxy (${startedAt.toISOString()})`,
    '',
    `- pool mode **${o.mode}**, pool size ${o.poolSize}; clients log in with SCRAM-SHA-256 from ${o.workers} worker process(es), ` +
      `${o.concurrency} logins in flight per worker, then stay idle; RSS is VmRSS of the proxy process ${SETTLE_MS / 1000} s after the last login`,
    `- pgway ${pgwayDescription(o.pgwayDir, REPO_DIR)}; PostgreSQL ${pgVersion}; ` +
      `PgBouncer: ${findPgBouncer() ? toolVersion(findPgBouncer()!) : 'not installed'}; Node ${process.version}`,
    `- ${machineDescription()}`,
    '',
    markdownTable(header, rows),
    '',
    ...results.map((r) => `- ${explain(o, r)}`),
    ...skipped.map((s) => `- ${s}`),
  ].join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

runMain(main);
