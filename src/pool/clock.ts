/**
 * Wall-clock milliseconds, as Date.now() gives them, read through performance.now(): on the
 * forwarding path (several readings per transaction) Date.now() is a call into V8's runtime,
 * performance.now() a fast call. The two clocks may drift apart by what NTP adjusts while
 * pgway runs; these readings time idle and lifetime limits and are shown in SHOW output.
 *
 * `performance` is imported, not read from globalThis: there it is a lazy accessor, a getter call
 * on every reading.
 */
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

export function nowMs(): number {
  return wallClockAt(performance.now());
}

/** The wall-clock time of an earlier performance.now() reading. */
export function wallClockAt(performanceNow: number): number {
  return origin + performanceNow;
}
