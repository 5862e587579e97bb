/**
 * pgbench against PostgreSQL directly, through PgBouncer and through pgway, interleaved
 * (round -> workload -> target, the target order rotating), on one freshly started cluster.
 * Prints a markdown table (median of the rounds) and writes it to bench/results/<timestamp>.md.
 *
 *   npm run bench -- [--seconds 15] [--rounds 3] [--workloads W1,W4] [--targets direct,pgbouncer,pgway,pipe]
 *                    [--mode session|transaction] [--pool-size 20] [--jobs 2] [--warmup 5] [--scale 10]
 *                    [--data-dir DIR] [--pgway-dir DIR] [--pgway-node-args=ARGS] [--no-build]
 *                    [--proxy-session own|shared]
 *
 * See bench/README.md for what the columns mean and the traps.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BENCH_DATABASE, BENCH_PASSWORD, BENCH_USER, buildPgway, initPgbench, makeWorkDir, startBenchCluster, toolVersion,
  type BenchCluster,
} from './lib/bench-cluster.js';
import { findPgBouncer, startPgBouncer } from './lib/pgbouncer-process.js';
import { judgePgbench, readLatencies, runPgbench, type Latency, type PgbenchOutcome } from './lib/pgbench.js';
import { startNodePipe, startPgway, type PoolModeFlag } from './lib/pgway-process.js';
import { choiceFlag, installExitHandlers, onCleanup, runMain, intFlag, listFlag, type ProxySession } from './lib/processes.js';
import {
  CLOCK_TICKS_PER_SECOND, machineBusyTicks, postgresChildren, postgresTreeTicks, procTimes, settlePostgres, ticksToUs,
} from './lib/proc-stats.js';
import type { ProxyProcess } from './lib/proxy-process.js';
import {
  fileTimestamp, formatCount, formatNumber, machineDescription, markdownTable, median, pgwayDescription, writeResult,
} from './lib/report.js';

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * `warmups`: how many `--warmup` periods a workload warms up for. W6 does a few hundred logins a second,
 * and pgway's login path settles only after thousands (see the JIT warm-up trap in bench/README.md).
 */
const WORKLOADS = {
  W1: { args: ['-S', '-c', '16'], label: 'W1 `-S -c 16`', warmups: 1 },
  W2: { args: ['-S', '-c', '64'], label: 'W2 `-S -c 64`', warmups: 1 },
  W3: { args: ['-S', '-M', 'extended', '-c', '16'], label: 'W3 `-S -M extended -c 16`', warmups: 1 },
  W4: { args: ['-S', '-M', 'prepared', '-c', '16'], label: 'W4 `-S -M prepared -c 16`', warmups: 1 },
  W5: { args: ['-c', '16'], label: 'W5 TPC-B `-c 16`', warmups: 1 },
  W6: { args: ['-S', '-C', '-c', '16'], label: 'W6 `-S -C -c 16`', warmups: 4 },
} as const;
type WorkloadName = keyof typeof WORKLOADS;

/**
 * `pipe` (bench/lib/node-pipe.ts) is a Node.js byte pipe with pgway's socket I/O and nothing else,
 * one server connection per client: the floor under pgway's forwarding path. It runs when asked for.
 */
const TARGETS = ['direct', 'pgbouncer', 'pgway', 'pipe'] as const;
const DEFAULT_TARGETS = ['direct', 'pgbouncer', 'pgway'] as const;
type TargetName = (typeof TARGETS)[number];
const TARGET_LABEL: Record<TargetName, string> = { direct: 'direct', pgbouncer: 'PgBouncer', pgway: 'pgway', pipe: 'Node pipe' };
/** Targets that open a server connection per client, as pgbench does directly: their backends exit after a run. */
const UNPOOLED: ReadonlySet<TargetName> = new Set(['direct', 'pipe']);

/** pgbench is killed when it runs this much longer than -T (a proxy that never answers). */
const RUN_TIMEOUT_SLACK_MS = 30_000;
/** At most this many seconds' worth of transactions go to the per-transaction log. */
const MAX_LOGGED_SECONDS = 60;
const PAUSE_BETWEEN_RUNS_MS = 1000;
/** Build, initdb, pgbench -i and proxy start-up, for the overall time limit. */
const SETUP_BUDGET_MS = 15 * 60_000;
/** PgBouncer's WARNING/ERROR lines, pgway's pino lines at warn (40) and above, stack traces. */
const PROBLEM_LOG_LINE = /\b(WARNING|ERROR|FATAL)\b|"level":[456]0|^\s+at |Error:/;

interface Options {
  seconds: number; rounds: number; workloads: WorkloadName[]; targets: TargetName[]; mode: PoolModeFlag;
  poolSize: number; jobs: number; warmup: number; scale: number; dataDir: string | undefined; build: boolean;
  /** The pgway checkout to build and run (default: this one), e.g. another version for an A/B run. */
  pgwayDir: string;
  /** Extra Node options for pgway, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
  pgwayNodeArgs: string[];
  /** Proxies in the benchmark's session, with pgbench (`shared`), or each in its own, as a daemon (`own`). */
  proxySession: ProxySession;
}

/** Whether the kernel schedules sessions as groups, which makes --proxy-session matter. */
function autogroupScheduling(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1' ? 'on' : 'off';
  } catch {
    return 'unknown';
  }
}

interface RunRecord {
  round: number;
  outcome: PgbenchOutcome;
  latency: Latency | undefined;
  /** CPU of the proxy under test (not for direct), PostgreSQL and pgbench, per transaction. */
  proxyUsPerTx?: number;
  postgresUsPerTx?: number;
  /** Share of the machine's CPU used by processes that are not part of the benchmark. */
  foreignShare: number;
}

const USAGE = `usage: npm run bench -- [--seconds 15] [--rounds 3] [--workloads ${Object.keys(WORKLOADS).join(',')}]
                        [--targets ${TARGETS.join(',')}] [--mode session|transaction] [--pool-size 20]
                        [--jobs 2] [--warmup 5] [--scale 10] [--data-dir DIR] [--pgway-dir DIR]
                        [--pgway-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--no-build] [--proxy-session own|shared]`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', short: 'T', default: '15' },
      rounds: { type: 'string', default: '3' },
      workloads: { type: 'string', default: Object.keys(WORKLOADS).join(',') },
      targets: { type: 'string', default: DEFAULT_TARGETS.join(',') },
      mode: { type: 'string', default: 'transaction' },
      'pool-size': { type: 'string', default: '20' },
      jobs: { type: 'string', short: 'j', default: '2' },
      warmup: { type: 'string', default: '5' },
      scale: { type: 'string', default: '10' },
      'data-dir': { type: 'string' },
      'pgway-dir': { type: 'string' },
      'pgway-node-args': { type: 'string', default: '' },
      'no-build': { type: 'boolean', default: false },
      'proxy-session': { type: 'string', default: 'shared' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string, min: number): number => intFlag(name, v, min, USAGE);
  return {
    seconds: int('seconds', values.seconds, 1),
    rounds: int('rounds', values.rounds, 1),
    workloads: listFlag('workloads', values.workloads, Object.keys(WORKLOADS) as WorkloadName[]),
    targets: listFlag('targets', values.targets, TARGETS),
    mode: choiceFlag<PoolModeFlag>('mode', values.mode, ['session', 'transaction']),
    poolSize: int('pool-size', values['pool-size'], 1),
    jobs: int('jobs', values.jobs, 1),
    warmup: int('warmup', values.warmup, 0),
    scale: int('scale', values.scale, 1),
    dataDir: values['data-dir'],
    build: !values['no-build'],
    pgwayDir: path.resolve(values['pgway-dir'] ?? REPO_DIR),
    pgwayNodeArgs: values['pgway-node-args'].split(/\s+/).filter(Boolean),
    proxySession: choiceFlag<ProxySession>('proxy-session', values['proxy-session'], ['own', 'shared']),
  };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  // Every run is bounded on its own; this bounds set-up and anything unforeseen on top.
  const runs = o.rounds * o.workloads.length * o.targets.length;
  const warmupMs = o.workloads.reduce((sum, w) => sum + WORKLOADS[w].warmups * o.warmup * 1000 + RUN_TIMEOUT_SLACK_MS, 0) * o.targets.length;
  installExitHandlers(runs * (o.seconds * 1000 + RUN_TIMEOUT_SLACK_MS + 5000) + warmupMs + SETUP_BUDGET_MS);
  const startedAt = new Date();
  const workDir = await makeWorkDir('pgway-bench-');
  onCleanup(() => fsp.rm(workDir, { recursive: true, force: true }));
  const txlogDir = path.join(workDir, 'txlogs');
  await fsp.mkdir(txlogDir);

  if (o.build && (o.targets.includes('pgway') || o.targets.includes('pipe'))) buildPgway(o.pgwayDir);

  console.error(`starting PostgreSQL in ${o.dataDir ?? path.join(workDir, 'data')}`);
  const cluster = await startBenchCluster(o.dataDir ?? path.join(workDir, 'data'));
  onCleanup(() => cluster.stop());
  const init = await initPgbench(cluster, o.scale);
  console.error(`pgbench tables at scale ${o.scale}: ${init}`);

  const login = { user: BENCH_USER, password: BENCH_PASSWORD, database: BENCH_DATABASE };
  const server = { host: cluster.host, port: cluster.port };
  const proxies = new Map<TargetName, ProxyProcess>();
  const missing = new Map<TargetName, string>();
  const maxClients = Math.max(...o.workloads.map((w) => clientsOf(w)));

  if (o.targets.includes('pgbouncer')) {
    const binary = findPgBouncer();
    if (!binary) missing.set('pgbouncer', 'not installed');
    else {
      const bouncer = await startPgBouncer(binary, {
        workDir, server, login, scramVerifier: await cluster.scramVerifier(), runAs: cluster.runAs,
        mode: o.mode, poolSize: o.poolSize, maxClientConn: 20_000, session: o.proxySession,
      });
      onCleanup(() => bouncer.stop());
      proxies.set('pgbouncer', bouncer);
    }
  }
  if (o.targets.includes('pgway')) {
    const pgway = await startPgway({
      repoDir: o.pgwayDir, workDir, server, login, mode: o.mode, poolSize: o.poolSize, maxClientConn: Math.max(1000, maxClients * 4),
      nodeArgs: o.pgwayNodeArgs, session: o.proxySession,
    });
    onCleanup(() => pgway.stop());
    proxies.set('pgway', pgway);
  }
  if (o.targets.includes('pipe')) {
    const pipe = await startNodePipe({ repoDir: o.pgwayDir, workDir, server, login, session: o.proxySession, maxClientConn: Math.max(1000, maxClients * 4) });
    onCleanup(() => pipe.stop());
    proxies.set('pipe', pipe);
  }
  const runnable = o.targets.filter((t) => !missing.has(t));
  const address = (t: TargetName): { host: string; port: number } => proxies.get(t) ?? server;

  // Each workload's own path warms up (pgway's JIT compiles what a workload runs), so no first round runs cold.
  if (o.warmup > 0) {
    for (const w of o.workloads) {
      const seconds = WORKLOADS[w].warmups * o.warmup;
      for (const t of runnable) {
        const exit = await runPgbench({ ...address(t), ...login, args: WORKLOADS[w].args, seconds, jobs: o.jobs, timeoutMs: seconds * 1000 + RUN_TIMEOUT_SLACK_MS });
        const outcome = judgePgbench(exit, seconds * 1000 + RUN_TIMEOUT_SLACK_MS);
        console.error(`warm-up ${w} ${TARGET_LABEL[t]}: ${outcome.ok ? `${formatCount(outcome.tps)} tps` : `FAIL (${outcome.failure}) ${outcome.firstError ?? ''}`}`);
      }
    }
  }

  const records = new Map<string, RunRecord[]>();
  const key = (w: WorkloadName, t: TargetName): string => `${w}/${t}`;
  const timeoutMs = o.seconds * 1000 + RUN_TIMEOUT_SLACK_MS;
  const samplingRate = Math.min(1, MAX_LOGGED_SECONDS / o.seconds);
  for (let round = 0; round < o.rounds; round++) {
    for (const [wi, w] of o.workloads.entries()) {
      for (let i = 0; i < runnable.length; i++) {
        const t = runnable[(i + round + wi) % runnable.length]!;
        const proxy = proxies.get(t);
        const logPrefix = path.join(txlogDir, `${w}-${t}-r${round}`);
        await sleep(PAUSE_BETWEEN_RUNS_MS);
        const postmasterPid = cluster.postmasterPid();
        await settlePostgres(postmasterPid, undefined);
        const childrenBefore = postgresChildren(postmasterPid).count;
        const before = cpuSnapshot(proxy, postmasterPid);
        const exit = await runPgbench({ ...address(t), ...login, args: WORKLOADS[w].args, seconds: o.seconds, jobs: o.jobs, logPrefix, samplingRate, timeoutMs });
        await settlePostgres(postmasterPid, UNPOOLED.has(t) ? childrenBefore : undefined);
        const after = cpuSnapshot(proxy, postmasterPid);
        const outcome = judgePgbench(exit, timeoutMs);
        const latency = readLatencies(logPrefix);
        const tx = outcome.transactions ?? 0;
        const used = (k: keyof CpuSnapshot): number => after[k] - before[k];
        const elapsedTicks = ((after.at - before.at) / 1000) * CLOCK_TICKS_PER_SECOND * os.cpus().length;
        const ours = used('proxy') + used('postgres') + used('pgbench') + used('self');
        const record: RunRecord = {
          round, outcome, latency,
          foreignShare: elapsedTicks > 0 ? Math.max(0, (used('machine') - ours) / elapsedTicks) : 0,
          ...(tx > 0 && proxy && { proxyUsPerTx: ticksToUs(used('proxy')) / tx }),
          ...(tx > 0 && { postgresUsPerTx: ticksToUs(used('postgres')) / tx }),
        };
        if (proxy && !proxy.alive()) record.outcome = { ...outcome, ok: false, failure: `${TARGET_LABEL[t]} died`, firstError: proxy.logTail(5) };
        records.set(key(w, t), [...(records.get(key(w, t)) ?? []), record]);
        console.error(progressLine(round, w, t, record));
      }
    }
  }

  const text = report(o, startedAt, cluster, records, runnable, missing, proxies);
  console.log(`\n${text}`);
  const file = writeResult(REPO_DIR, `${fileTimestamp(startedAt)}.md`, `${text}\n`);
  console.error(`\nwritten to ${path.relative(process.cwd(), file)}`);
  return 0;
}

function clientsOf(w: WorkloadName): number {
  const args: readonly string[] = WORKLOADS[w].args;
  return Number(args[args.indexOf('-c') + 1] ?? 1);
}

interface CpuSnapshot { proxy: number; postgres: number; pgbench: number; self: number; machine: number; at: number }

function cpuSnapshot(proxy: ProxyProcess | undefined, postmasterPid: number): CpuSnapshot {
  const self = procTimes('self');
  return {
    at: Date.now(),
    machine: machineBusyTicks(),
    proxy: proxy ? (procTimes(proxy.pid)?.ownTicks ?? 0) : 0,
    postgres: postgresTreeTicks(postmasterPid),
    // pgbench is our child: once reaped, its CPU is in our cutime+cstime.
    pgbench: self?.childTicks ?? 0,
    self: self?.ownTicks ?? 0,
  };
}

function progressLine(round: number, w: WorkloadName, t: TargetName, r: RunRecord): string {
  const head = `[round ${round + 1} ${w} ${TARGET_LABEL[t]}]`;
  if (!r.outcome.ok) return `${head} FAIL (${r.outcome.failure}) ${r.outcome.firstError ?? ''}`;
  const lat = r.latency ? `, p50 ${r.latency.p50Ms.toFixed(2)} ms, p99 ${r.latency.p99Ms.toFixed(2)} ms` : '';
  const cpu = r.proxyUsPerTx !== undefined ? `, ${TARGET_LABEL[t]} ${r.proxyUsPerTx.toFixed(1)} us/tx` : '';
  return `${head} ${formatCount(r.outcome.tps)} tps${lat}${cpu}, PostgreSQL ${formatNumber(r.postgresUsPerTx)} us/tx, other load ${(r.foreignShare * 100).toFixed(0)}%`;
}

interface Cell { tps?: number; failure?: string; p50?: number; p99?: number; proxyUs?: number; postgresUs?: number }

function summarize(runs: readonly RunRecord[] | undefined): Cell | undefined {
  if (!runs?.length) return undefined;
  const failed = runs.filter((r) => !r.outcome.ok);
  if (failed.length) {
    const reasons = [...new Set(failed.map((r) => r.outcome.failure ?? 'failed'))].join('; ');
    return { failure: `FAIL (${reasons}${failed.length < runs.length ? `; ${failed.length}/${runs.length} rounds` : ''})` };
  }
  const pick = (f: (r: RunRecord) => number | undefined): number | undefined =>
    median(runs.map(f).filter((v): v is number => v !== undefined));
  const cell: Cell = {};
  const set = <K extends keyof Cell>(k: K, v: Cell[K] | undefined): void => {
    if (v !== undefined) cell[k] = v;
  };
  set('tps', pick((r) => r.outcome.tps));
  set('p50', pick((r) => r.latency?.p50Ms));
  set('p99', pick((r) => r.latency?.p99Ms));
  set('proxyUs', pick((r) => r.proxyUsPerTx));
  set('postgresUs', pick((r) => r.postgresUsPerTx));
  return cell;
}

function report(
  o: Options, startedAt: Date, cluster: BenchCluster, records: Map<string, RunRecord[]>, runnable: TargetName[],
  missing: Map<TargetName, string>, proxies: Map<TargetName, ProxyProcess>,
): string {
  const cellOf = (w: WorkloadName, t: TargetName): Cell | undefined => summarize(records.get(`${w}/${t}`));
  const absent = (t: TargetName): string => missing.get(t) ?? (runnable.includes(t) ? '-' : 'skipped');
  const tpsText = (w: WorkloadName, t: TargetName): string => {
    const c = cellOf(w, t);
    return !c ? absent(t) : (c.failure ?? formatCount(c.tps));
  };
  const ratio = (w: WorkloadName, a: TargetName, b: TargetName): string => {
    const x = cellOf(w, a)?.tps;
    const y = cellOf(w, b)?.tps;
    return x !== undefined && y !== undefined && y > 0 ? (x / y).toFixed(2) : '-';
  };
  const latency = (w: WorkloadName, t: TargetName): string => {
    const c = cellOf(w, t);
    return c?.p50 !== undefined && c.p99 !== undefined ? `${c.p50.toFixed(2)} / ${c.p99.toFixed(2)}` : '-';
  };
  const proxyCpu = (w: WorkloadName, t: TargetName): string => formatNumber(cellOf(w, t)?.proxyUs);
  const shown = TARGETS.filter((t) => t !== 'pipe' || runnable.includes('pipe'));
  const pgCpu = (w: WorkloadName): string => shown.map((t) => formatNumber(cellOf(w, t)?.postgresUs, 0)).join(' / ');
  const otherLoad = (w: WorkloadName): string => {
    const shares = TARGETS.flatMap((t) => records.get(`${w}/${t}`) ?? []).map((r) => r.foreignShare);
    return shares.length ? `${(Math.max(...shares) * 100).toFixed(0)}%` : '-';
  };

  const withPipe = shown.includes('pipe');
  const header = [
    'workload', 'direct TPS', 'PgBouncer TPS', 'pgway TPS', 'pgway/direct', 'pgway/PgBouncer',
    ...(withPipe ? ['Node pipe TPS', 'Node pipe/PgBouncer'] : []),
    'p50 / p99 ms direct', 'p50 / p99 ms PgBouncer', 'p50 / p99 ms pgway',
    'CPU us/tx PgBouncer', 'CPU us/tx pgway', ...(withPipe ? ['CPU us/tx Node pipe'] : []),
    `PostgreSQL CPU us/tx ${shown.map((t) => TARGET_LABEL[t]).join(' / ')}`, 'other load (max)',
  ];
  const rows = o.workloads.map((w) => [
    WORKLOADS[w].label, tpsText(w, 'direct'), tpsText(w, 'pgbouncer'), tpsText(w, 'pgway'),
    ratio(w, 'pgway', 'direct'), ratio(w, 'pgway', 'pgbouncer'),
    ...(withPipe ? [tpsText(w, 'pipe'), ratio(w, 'pipe', 'pgbouncer')] : []),
    latency(w, 'direct'), latency(w, 'pgbouncer'), latency(w, 'pgway'),
    proxyCpu(w, 'pgbouncer'), proxyCpu(w, 'pgway'), ...(withPipe ? [proxyCpu(w, 'pipe')] : []), pgCpu(w), otherLoad(w),
  ]);

  const notes: string[] = [];
  for (const [k, runs] of records) {
    const seen = new Set<string>();
    for (const r of runs) {
      if (r.outcome.ok) continue;
      const line = `${k.replace('/', ' via ')}, round ${r.round + 1}: ${r.outcome.failure}${r.outcome.firstError ? ` - ${r.outcome.firstError.replace(/\s+/g, ' ').slice(0, 300)}` : ''}`;
      if (!seen.has(r.outcome.failure ?? '')) notes.push(`- ${line}`);
      seen.add(r.outcome.failure ?? '');
    }
  }
  let worst = { share: 0, where: '' };
  for (const [k, runs] of records) {
    for (const r of runs) if (r.foreignShare > worst.share) worst = { share: r.foreignShare, where: `${k} round ${r.round + 1}` };
  }
  for (const [t, p] of proxies) {
    const problems = p.logTail(100_000).split('\n').filter((l) => PROBLEM_LOG_LINE.test(l));
    if (problems.length > 0) notes.push(`- ${TARGET_LABEL[t]} logged ${problems.length} warnings/errors (last: ${problems.at(-1)?.slice(0, 300)})`);
  }

  const logged = Math.min(1, MAX_LOGGED_SECONDS / o.seconds);
  return [
    `## pgbench: direct vs PgBouncer vs pgway${withPipe ? ' vs a bare Node.js pipe' : ''} (${startedAt.toISOString()})`,
    '',
    `- pool mode **${o.mode}**, pool size ${o.poolSize} (PgBouncer and pgway), pgbench scale ${o.scale}, \`-T ${o.seconds} -j ${o.jobs}\`, ` +
      `${o.rounds} interleaved round(s), warm-up ${o.warmup} s of each workload per target (W6: ${WORKLOADS.W6.warmups * o.warmup} s); each cell is the median of the rounds; ` +
      (o.proxySession === 'own' ? 'each proxy in a session of its own' : "the proxies in the benchmark's session, with pgbench") +
      ` (autogroup scheduling ${autogroupScheduling()})`,
    `- pgway ${pgwayDescription(o.pgwayDir, REPO_DIR)}; PostgreSQL ${cluster.version} (fsync/synchronous_commit/full_page_writes off); ` +
      `${toolVersion('pgbench')}; PgBouncer: ${missing.get('pgbouncer') ?? toolVersion(findPgBouncer() ?? 'pgbouncer', ['--version'])}; Node ${process.version}`,
    `- ${machineDescription()}; other processes used up to ${(worst.share * 100).toFixed(0)}% of the machine during a run${worst.where ? ` (${worst.where})` : ''}`,
    `- latency from pgbench's per-transaction log${logged < 1 ? ` (sampling rate ${logged.toFixed(3)})` : ''}; CPU us/tx = process CPU time / transactions`,
    '',
    markdownTable(header, rows),
    ...(notes.length ? ['', 'Notes:', ...notes] : []),
  ].join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

runMain(main);
