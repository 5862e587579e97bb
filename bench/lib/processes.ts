/**
 * Every process a benchmark starts, so that the end of a run, Ctrl-C or a crash stops each of them
 * by its own PID, and the cleanups (cluster, temp dir) run once.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

const tracked = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];
let exiting = false;

export function spawnTracked(cmd: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  if (exiting) throw new Error(`not starting ${cmd}: the benchmark is stopping`);
  const child = spawn(cmd, args, options);
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  child.once('error', () => tracked.delete(child));
  return child;
}

/**
 * Where a proxy under test runs: in the benchmark's session, with pgbench (`shared`), or in a
 * session of its own (`own`), as a daemon (PgBouncer's -d) would. It matters when Linux's autogroup
 * scheduling is on: each session gets one share of the CPU, and PostgreSQL backends each call
 * setsid(), so every backend has a share of its own (see bench/README.md, Traps).
 */
export type ProxySession = 'own' | 'shared';

export function sessionOptions(session: ProxySession | undefined): SpawnOptions {
  return { detached: session === 'own' };
}

export interface Exit { code: number | null; signal: NodeJS.Signals | null; error?: Error }

/** Resolves when `child` has exited (at once when it already has). */
export function exited(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Sends `signal`, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (!isRunning(child)) return;
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/** Runs `fn` at the end of the run, on Ctrl-C and on a fatal error; last registered runs first. */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.unshift(fn);
}

export async function runCleanups(): Promise<void> {
  for (const fn of cleanups.splice(0)) {
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const child of [...tracked]) await stopProcess(child, 'SIGTERM', 2000);
}

/** Ctrl-C, SIGTERM and `overallTimeoutMs` all clean up and exit; a crash leaves no child behind. */
export function installExitHandlers(overallTimeoutMs?: number): void {
  const bail = (why: string, code: number): void => {
    if (exiting) return;
    exiting = true;
    console.error(`\n${why}: stopping everything this benchmark started`);
    runCleanups().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => bail('interrupted', 130));
  process.on('SIGTERM', () => bail('terminated', 143));
  if (overallTimeoutMs) {
    setTimeout(() => bail(`overall timeout of ${Math.round(overallTimeoutMs / 1000)} s reached`, 124), overallTimeoutMs).unref();
  }
  process.on('exit', () => {
    for (const child of tracked) child.kill('SIGKILL');
  });
}

/** A bad command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** A command-line integer of at least `min`, or a UsageError that shows `usage`. */
export function intFlag(name: string, value: string, min: number, usage: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got ${value}\n${usage}`);
  return n;
}

/** A comma-separated command-line list of names from `known` (at least one, no repeats), or a UsageError. */
export function listFlag<T extends string>(name: string, value: string, known: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = items.filter((s) => !(known as readonly string[]).includes(s));
  if (unknown.length || items.length === 0) throw new UsageError(`--${name}: unknown ${unknown.join(', ') || '(empty)'}; known: ${known.join(', ')}`);
  return [...new Set(items)] as T[];
}

/** A command-line value that must be one of `choices`, or a UsageError. */
export function choiceFlag<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} expects ${choices.join(' or ')}, got ${value}`);
  return value as T;
}

/** Runs `main`, cleans up whatever happens, exits with its code. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    async (code) => {
      await runCleanups();
      process.exit(code);
    },
    async (err: unknown) => {
      const usage = err instanceof UsageError || (err as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS');
      console.error(usage && err instanceof Error ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
      await runCleanups();
      process.exit(usage ? 2 : 1);
    },
  );
}

/**
 * Raises RLIMIT_NOFILE of a running process (ours or a child) with prlimit: root may go past the
 * hard limit; anyone else gets the hard limit at most. Returns the soft limit now in force.
 */
export function raiseOpenFiles(pid: number, wanted: number): number {
  const current = openFilesLimit(pid);
  if (current >= wanted) return current;
  const tryLimit = (soft: number, hard: number): boolean =>
    spawnSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`], { stdio: 'ignore' }).status === 0;
  if (!tryLimit(wanted, Math.max(wanted, hardOpenFilesLimit(pid)))) {
    const hard = hardOpenFilesLimit(pid);
    if (hard > current) tryLimit(hard, hard);
  }
  return openFilesLimit(pid);
}

export function openFilesLimit(pid: number | 'self'): number {
  return readLimits(pid)[0];
}

function hardOpenFilesLimit(pid: number | 'self'): number {
  return readLimits(pid)[1];
}

function readLimits(pid: number | 'self'): [number, number] {
  try {
    const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const m = line ? /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(line) : null;
    const num = (s: string | undefined): number => (s === undefined ? 0 : s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
    return [num(m?.[1]), num(m?.[2])];
  } catch {
    return [0, 0];
  }
}
