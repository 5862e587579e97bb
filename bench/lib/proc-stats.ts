/**
 * CPU and memory of processes, read from /proc. CPU is in clock ticks (utime + stime); a process
 * that exits is added to its parent's cutime/cstime when reaped, which is how the CPU of
 * short-lived PostgreSQL backends and of pgbench (our child) is still counted.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export const CLOCK_TICKS_PER_SECOND = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

export interface ProcTimes { state: string; ppid: number; ownTicks: number; childTicks: number }

/** utime+stime and cutime+cstime of one process, undefined when it is gone. */
export function procTimes(pid: number | 'self'): ProcTimes | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted after its closing one.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const n = (i: number): number => Number(f[i] ?? 0);
  // After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
  return { state: f[0] ?? '?', ppid: n(1), ownTicks: n(11) + n(12), childTicks: n(13) + n(14) };
}

/** Live children of the postmaster, and how many of them are zombies (exited, not reaped yet). */
export function postgresChildren(postmasterPid: number): { count: number; zombies: number } {
  let count = 0;
  let zombies = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = procTimes(Number(entry));
    if (t?.ppid !== postmasterPid) continue;
    count++;
    if (t.state === 'Z') zombies++;
  }
  return { count, zombies };
}

/**
 * Waits until backends that are exiting have been reaped: a zombie shows 0 CPU and its time reaches
 * the postmaster's cutime only once reaped, so measuring earlier would move it to the next run.
 * `maxChildren`: also wait until no more than that many children are alive (the backends of a direct
 * pgbench run must be gone).
 */
export async function settlePostgres(postmasterPid: number, maxChildren: number | undefined, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = postgresChildren(postmasterPid);
    if ((c.zombies === 0 && (maxChildren === undefined || c.count <= maxChildren)) || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The postmaster, its live children and its reaped children (exited backends). */
export function postgresTreeTicks(postmasterPid: number): number {
  const root = procTimes(postmasterPid);
  if (!root) return 0;
  let ticks = root.ownTicks + root.childTicks;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = procTimes(Number(entry));
    if (t && t.ppid === postmasterPid) ticks += t.ownTicks;
  }
  return ticks;
}

/** Busy ticks of the whole machine, summed over every CPU (iowait counts as idle). */
export function machineBusyTicks(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

/** VmRSS and VmHWM (peak) in KiB. */
export function memoryKb(pid: number): { rssKb: number; peakKb: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: field('VmRSS'), peakKb: field('VmHWM') };
  } catch {
    return undefined;
  }
}

export const ticksToUs = (ticks: number): number => (ticks * 1e6) / CLOCK_TICKS_PER_SECOND;
