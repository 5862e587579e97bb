// What the differential fuzzers share around their scripts: a seed's choices (Rng), which seeds to run (FUZZ_SEEDS), the run over
// them that collects each failing seed's report (FUZZ_LOG, FUZZ_MAX_FAIL), and the shrinking of a failing
// script to fewer requests (FUZZ_SHRINK). What a seed generates and how it compares is each fuzzer's own.
import { appendFileSync } from 'node:fs';
import { prng } from './prng.js';

/** A seed's choices: the same on every run of the seed. */
export class Rng {
  private readonly next: () => number;
  constructor(seed: number) { this.next = prng(seed); }
  int(k: number): number { return Math.floor(this.next() * k); }
  pick<T>(a: T[]): T { return a[this.int(a.length)]!; }
  chance(p: number): boolean { return this.int(1000) < p * 1000; }
}

/** FUZZ_SEEDS ("1-200,500") when given, else seeds 1 to `count`. */
export function fuzzSeeds(count: number): number[] {
  const given = process.env.FUZZ_SEEDS;
  if (!given) return Array.from({ length: count }, (_, i) => i + 1);
  return given.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number);
    return to ? Array.from({ length: to - from! + 1 }, (_, i) => from! + i) : [from!];
  });
}

/** Whether FUZZ_SEEDS chose the seeds: a long run, which gets a longer test timeout. */
export const seedsGiven = (): boolean => process.env.FUZZ_SEEDS !== undefined && process.env.FUZZ_SEEDS !== '';

/**
 * Runs `runSeed` over `seeds` and returns the failing seeds' reports, each appended to FUZZ_LOG
 * as it comes; stops after FUZZ_MAX_FAIL failures (default 30). `summary` ends the log.
 */
export async function failingSeeds(seeds: readonly number[], runSeed: (seed: number) => Promise<string | undefined>, summary: () => string): Promise<string[]> {
  const log = process.env.FUZZ_LOG;
  const maxFail = Number(process.env.FUZZ_MAX_FAIL ?? 30);
  const failures: string[] = [];
  for (const seed of seeds) {
    const failure = await runSeed(seed);
    if (failure === undefined) continue;
    failures.push(failure);
    if (log) appendFileSync(log, `${failure}\n\n`);
    if (failures.length >= maxFail) break;
  }
  if (log) appendFileSync(log, `${summary()}\n`);
  return failures;
}

/**
 * The shortest script found by dropping chunks of requests from `requests` (ddmin, halving the chunk)
 * while `stillFails` says the shorter script fails the same way.
 */
export async function shrinkRequests<R>(requests: readonly R[], stillFails: (candidate: R[]) => Promise<boolean>): Promise<R[]> {
  let current = [...requests];
  let chunk = Math.max(1, Math.floor(current.length / 2));
  while (chunk >= 1) {
    let removed = false;
    for (let i = 0; i < current.length; i += chunk) {
      const candidate = [...current.slice(0, i), ...current.slice(i + chunk)];
      if (candidate.length === 0) continue;
      if (await stillFails(candidate)) {
        current = candidate;
        removed = true;
        i -= chunk;
      }
    }
    if (!removed) chunk = Math.floor(chunk / 2);
  }
  return current;
}
