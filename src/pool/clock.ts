/**
 * Wall-clock milliseconds, as Date.now() gives them, read through performance.now(): on the
 * forwarding path (several readings per transaction) Date.now() is a call into V8's runtime,
 * performance.now() a fast call. The two clocks may drift apart by what NTP adjusts while
 * pgway runs; these readings time idle and lifetime limits and are shown in SHOW output.
 */
const origin = performance.timeOrigin;

export function nowMs(): number {
  return origin + performance.now();
}
