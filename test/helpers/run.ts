/**
 * Runs a command-line client (psql, pgbench) to completion with a bounded time and a clean
 * environment: no psqlrc, no PG* variables from the machine, only what the test passes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin, then stdin is closed. */
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return start(command, args, options).result;
}

/** Like run(), but hands back the child too, for tests that signal it while it runs. */
export function start(command: string, args: string[], options: RunOptions = {}): { child: ChildProcess; result: Promise<RunResult> } {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: os.tmpdir(),
    LC_ALL: 'C.UTF-8',
    PGCONNECT_TIMEOUT: '10',
    ...options.env,
  };
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const result = new Promise<RunResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
  // A client that exits early (auth failure) closes its stdin; that is not the test's error.
  child.stdin.on('error', () => undefined);
  if (options.input !== undefined) child.stdin.end(options.input);
  else child.stdin.end();
  return { child, result };
}

/** A libpq connection string; values are quoted so spaces and quotes inside them survive. */
export function conninfo(params: Record<string, string | number>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}='${String(v).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`)
    .join(' ');
}
