import { describe, expect, it } from 'vitest';
import { LATENCY_BOUNDS_MS, LatencyHistogram } from './latency-histogram.js';

describe('LatencyHistogram', () => {
  it('puts a value in the first bucket whose bound it does not exceed, and keeps count and sum', () => {
    const h = new LatencyHistogram();
    for (const ms of [0, 0.1, 0.10001, 1, 7, 10_000, 20_000]) h.record(ms);
    const at = (boundMs: number): number => h.buckets[LATENCY_BOUNDS_MS.indexOf(boundMs)]!;
    expect(at(0.1)).toBe(2); // 0 and exactly 0.1 (Prometheus' le is "less than or equal")
    expect(at(0.25)).toBe(1);
    expect(at(1)).toBe(1);
    expect(at(10)).toBe(1);
    expect(at(10_000)).toBe(1);
    expect(h.buckets[LATENCY_BOUNDS_MS.length]).toBe(1); // above every bound: +Inf only
    expect(h.count).toBe(7);
    expect(h.sumMs).toBeCloseTo(0.1 + 0.10001 + 1 + 7 + 10_000 + 20_000, 6);
  });
});
