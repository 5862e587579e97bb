/**
 * What the benchmarks need from a proxy under test, whichever it is: where it listens, its PID (for
 * /proc), its log, and a stop. Also the shared start-up steps: a free port, a readiness check that
 * really logs in and runs a query, and a retry when the port was taken in between.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import pg from 'pg';
import { exited, isRunning, stopProcess } from './processes.js';
import { freePort } from '../../src/sandbox/free-port.js';

export interface ProxyProcess {
  name: string;
  host: string;
  port: number;
  pid: number;
  logFile: string;
  alive(): boolean;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export interface Login { user: string; password: string; database: string }

export function tailOf(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Logs in through host:port and runs SELECT 1, retrying until `timeoutMs`; 'ready' or why not. */
export async function waitReady(child: ChildProcess, host: string, port: number, login: Login, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(child)) {
      const e = await exited(child);
      return `exited with ${e.error?.message ?? e.signal ?? `code ${e.code}`}`;
    }
    const client = new pg.Client({ host, port, ...login, connectionTimeoutMillis: 3000, query_timeout: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return 'ready';
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return `not ready after ${timeoutMs} ms (last error: ${last})`;
}

/**
 * Picks a free port, lets `launch` start the proxy on it and waits until it serves a query; on a
 * port taken between the probe and the bind, tries another one.
 */
export async function startOnFreePort(
  name: string,
  host: string,
  login: Login,
  logFile: string,
  launch: (port: number) => ChildProcess,
  stopSignal: NodeJS.Signals = 'SIGTERM',
): Promise<ProxyProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(host);
    const child = launch(port);
    const outcome = await waitReady(child, host, port, login);
    if (outcome === 'ready' && child.pid !== undefined) {
      const pid = child.pid;
      return {
        name, host, port, pid, logFile,
        alive: () => isRunning(child),
        logTail: (lines = 20) => tailOf(logFile, lines),
        stop: () => stopProcess(child, stopSignal, 5000),
      };
    }
    await stopProcess(child, 'SIGKILL');
    const tail = tailOf(logFile);
    if (attempt < 5 && /EADDRINUSE|Address already in use/i.test(tail)) continue;
    throw new Error(`${name} did not start: ${outcome}\n--- end of ${logFile} ---\n${tail}`);
  }
}
