/** Small formatting and statistics helpers shared by the benchmark reports. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** 34512 -> "34.5k", 195.3 -> "195". */
export function formatCount(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n >= 1000 ? `${(n / 1000).toFixed(2)}k` : n.toFixed(0);
}

export function formatNumber(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** "2025-01-31T12-34-56", usable in a file name. */
export function fileTimestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
}

/** Commit and whether the tree has uncommitted changes (read-only git calls). */
export function gitDescription(repoDir: string): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoDir, encoding: 'utf8' });
  if (head.status !== 0) return 'not a git checkout';
  const status = spawnSync('git', ['status', '--porcelain'], { cwd: repoDir, encoding: 'utf8' });
  const changed = status.stdout.split('\n').filter(Boolean).length;
  return `${head.stdout.trim()}${changed ? ` + ${changed} uncommitted changes` : ''}`;
}

/** Which pgway ran: the checkout's commit and when its dist/ was built (another session may rebuild it). */
export function pgwayDescription(pgwayDir: string, repoDir: string): string {
  const where = pgwayDir === repoDir ? '' : `${pgwayDir} `;
  let built = 'dist/ missing';
  try {
    built = `dist built ${fs.statSync(path.join(pgwayDir, 'dist', 'src', 'main.js')).mtime.toISOString()}`;
  } catch {
    // reported as missing
  }
  return `${where}${gitDescription(pgwayDir)} (${built})`;
}

export function machineDescription(): string {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, load average at start ${load}`;
}

export function writeResult(repoDir: string, name: string, text: string): string {
  const dir = path.join(repoDir, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}
