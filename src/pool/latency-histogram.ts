/**
 * A latency histogram cheap enough to record every request on the forwarding path: fixed
 * buckets, a few array writes, no labels, no allocation. The metrics endpoint reads it at scrape
 * time (see admin/metrics.ts), as the admin console reads the other pool counters.
 */

/** Upper bounds in milliseconds (a value equal to a bound falls in that bucket, as Prometheus' `le`). */
export const LATENCY_BOUNDS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class LatencyHistogram {
  /** Observations per bucket (not cumulative); the last one is above every bound. */
  readonly buckets = new Float64Array(LATENCY_BOUNDS_MS.length + 1);
  count = 0;
  sumMs = 0;

  record(ms: number): void {
    const bounds = LATENCY_BOUNDS_MS;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    this.buckets[i]!++;
    this.count++;
    this.sumMs += ms;
  }
}
