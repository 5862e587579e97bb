/**
 * One pgbench run against one target, bounded in time, and what to believe of it: TPS only when no
 * transaction failed and no client aborted (pgbench prints a TPS line even when most clients died),
 * latency percentiles from its per-transaction log (-l), which is deleted right after reading.
 */
import fs from 'node:fs';
import path from 'node:path';
import { libpqEnv } from './bench-cluster.js';
import { exited, spawnTracked, stopProcess } from './processes.js';

export interface PgbenchCall {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Workload arguments, e.g. ['-S', '-c', '16']. */
  args: readonly string[];
  seconds: number;
  jobs: number;
  /** Per-transaction log files go to `${logPrefix}.<pid>[.<thread>]`; undefined: no log. */
  logPrefix?: string;
  /** Fraction of transactions logged (pgbench --sampling-rate), bounds the log's size. */
  samplingRate?: number;
  /** Kill pgbench after this long; its result is then a failure. */
  timeoutMs: number;
}

export interface PgbenchExit { output: string; code: number | null; signal: string | null; timedOut: boolean; elapsedMs: number }

/** Runs pgbench and returns once it exited; nothing else happens meanwhile (the caller measures CPU). */
export async function runPgbench(c: PgbenchCall): Promise<PgbenchExit> {
  const args = [...c.args, '-T', String(c.seconds), '-j', String(c.jobs), '-h', c.host, '-p', String(c.port), '-U', c.user];
  if (c.logPrefix) {
    args.push('-l', `--log-prefix=${c.logPrefix}`);
    if (c.samplingRate !== undefined && c.samplingRate < 1) args.push(`--sampling-rate=${c.samplingRate}`);
  }
  args.push(c.database);
  const started = Date.now();
  const child = spawnTracked('pgbench', args, { env: libpqEnv(c.password), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopProcess(child, 'SIGINT', 3000);
  }, c.timeoutMs);
  const exit = await exited(child);
  clearTimeout(timer);
  if (exit.error) output += `\n${exit.error.message}`;
  return { output, code: exit.code, signal: exit.signal, timedOut, elapsedMs: Date.now() - started };
}

export interface PgbenchOutcome {
  ok: boolean;
  tps?: number;
  transactions?: number;
  failedTransactions: number;
  abortedClients: number;
  /** Short text for a failed cell, e.g. "12 failed" or "timeout". */
  failure?: string;
  /** The first error line pgbench printed, for the notes under the table. */
  firstError?: string;
}

export function judgePgbench(e: PgbenchExit, timeoutMs: number): PgbenchOutcome {
  const out = e.output;
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(out);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  };
  const tps = num(/^tps = ([\d.]+)/m);
  const transactions = num(/^number of transactions actually processed: (\d+)/m);
  const failedTransactions = num(/^number of failed transactions: (\d+)/m) ?? 0;
  const abortedClients = new Set([...out.matchAll(/client (\d+) (?:script \d+ )?aborted/g)].map((m) => m[1])).size;
  const firstError = out.split('\n').find((l) => /error|fatal|FATAL|ERROR|aborted/.test(l))?.trim();
  const outcome: PgbenchOutcome = { ok: false, failedTransactions, abortedClients, ...(firstError && { firstError }) };
  if (tps !== undefined) outcome.tps = tps;
  if (transactions !== undefined) outcome.transactions = transactions;
  if (e.timedOut) return { ...outcome, failure: `timeout after ${Math.round(timeoutMs / 1000)} s` };
  if (failedTransactions > 0) return { ...outcome, failure: `${failedTransactions} failed` };
  if (abortedClients > 0) return { ...outcome, failure: `${abortedClients} clients aborted` };
  if (/Run was aborted|aborted/i.test(out)) return { ...outcome, failure: 'aborted' };
  if (e.code !== 0) return { ...outcome, failure: `exit ${e.code ?? e.signal}` };
  if (tps === undefined || !transactions) return { ...outcome, failure: 'no transactions' };
  return { ...outcome, ok: true };
}

export interface Latency { p50Ms: number; p99Ms: number; samples: number }

/** Reads and deletes the per-transaction logs of one run; undefined when none were written. */
export function readLatencies(logPrefix: string): Latency | undefined {
  const dir = path.dirname(logPrefix);
  const base = `${path.basename(logPrefix)}.`;
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(base)).map((f) => path.join(dir, f));
  let values = new Float64Array(1 << 16);
  let n = 0;
  try {
    for (const file of files) {
      // Line: client_id transaction_no time_us script_no time_epoch time_us_part [...]; time may be "failed"/"skipped".
      for (const line of fs.readFileSync(file, 'latin1').split('\n')) {
        const a = line.indexOf(' ');
        const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
        const cEnd = b < 0 ? -1 : line.indexOf(' ', b + 1);
        if (cEnd < 0) continue;
        const us = Number(line.slice(b + 1, cEnd));
        if (!Number.isFinite(us)) continue;
        if (n === values.length) {
          const grown = new Float64Array(values.length * 2);
          grown.set(values);
          values = grown;
        }
        values[n++] = us;
      }
    }
  } finally {
    for (const file of files) fs.rmSync(file, { force: true });
  }
  if (n === 0) return undefined;
  const sorted = values.subarray(0, n).sort();
  const at = (q: number): number => (sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0) / 1000;
  return { p50Ms: at(0.5), p99Ms: at(0.99), samples: n };
}
