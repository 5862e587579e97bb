/**
 * The clocks of the forwarding path.
 *
 * perfNow() is performance.now(), read once per chunk of input: while a chunk from a socket read is
 * being handled (see onHandleRead in wire/direct-reads.ts), every reading returns the time the
 * chunk arrived. A transaction reads the clock about eight times (lease, request sent, answer,
 * pool bookkeeping) and gets two chunks; the latencies it records are those of the chunks, which
 * is what they measure. Outside a chunk (timers, connects, a socket read by Node's own path) it
 * reads the clock.
 *
 * nowMs() is wall-clock milliseconds, as Date.now() gives them, read through performance.now():
 * Date.now() is a call into V8's runtime, performance.now() a fast call. The two clocks may drift
 * apart by what NTP adjusts while pgway runs; these readings time idle and lifetime limits and are
 * shown in SHOW output.
 *
 * `performance` is imported, not read from globalThis: there it is a lazy accessor, a getter call
 * on every reading.
 */
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;
/** The arrival time of the chunk being handled, or -1 outside one. */
let chunkTime = -1;

export function perfNow(): number {
  return chunkTime >= 0 ? chunkTime : performance.now();
}

export function nowMs(): number {
  return origin + perfNow();
}

/** The wall-clock time of an earlier perfNow() reading. */
export function wallClockAt(performanceNow: number): number {
  return origin + performanceNow;
}

/**
 * Stops the clock at now for the chunk about to be handled (see perfNow). Returns false, and
 * changes nothing, when a chunk is already being handled; only a call that returned true ends it.
 */
export function chunkStarts(): boolean {
  if (chunkTime >= 0) return false;
  chunkTime = performance.now();
  return true;
}

export function chunkEnds(): void {
  chunkTime = -1;
}
