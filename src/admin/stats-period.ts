/**
 * SHOW STATS' totals per database, and PgBouncer's averages: at the end of each `stats_period_ms`,
 * the rates (per second) and mean times (microseconds) of the period just ended. Like PgBouncer's,
 * the averages change only at a period's end, so two SHOW STATS in one period agree.
 */
import type { PoolInfo } from './admin-view.js';

/** A database's totals since pgway started, summed over its pools (one per user). */
export interface StatsTotals {
  assignments: number;
  transactions: number;
  requests: number;
  bytesReceived: number;
  bytesSent: number;
  transactionTimeUs: number;
  requestTimeUs: number;
  waitTimeUs: number;
}

/** The period just ended: counts and bytes per second, times as the mean of the period's own. */
export type StatsAverages = StatsTotals;

const ZERO: Readonly<StatsTotals> = Object.freeze({
  assignments: 0, transactions: 0, requests: 0, bytesReceived: 0, bytesSent: 0, transactionTimeUs: 0, requestTimeUs: 0, waitTimeUs: 0,
});

export function totalsByDatabase(pools: readonly PoolInfo[]): Map<string, StatsTotals> {
  const byDb = new Map<string, StatsTotals>();
  for (const { database, counters: c } of pools) {
    const t = byDb.get(database) ?? { ...ZERO };
    t.assignments += c.assignments;
    t.transactions += c.transactions;
    t.requests += c.requests;
    t.bytesReceived += c.bytesFromClients;
    t.bytesSent += c.bytesToClients;
    t.transactionTimeUs += c.transactionTimeUs;
    t.requestTimeUs += c.requestTimeUs;
    t.waitTimeUs += c.waitTimeUs;
    byDb.set(database, t);
  }
  return byDb;
}

export class StatsPeriod {
  private previous = new Map<string, StatsTotals>();
  private previousAt: number;
  private current = new Map<string, StatsAverages>();

  constructor(now: number) {
    this.previousAt = now;
  }

  /** Ends a period at `now` (ms): its averages replace the last period's. Returns them. */
  tick(now: number, totals: Map<string, StatsTotals>): Map<string, StatsAverages> {
    const seconds = (now - this.previousAt) / 1000;
    const averages = new Map<string, StatsAverages>();
    if (seconds > 0) {
      for (const [db, t] of totals) averages.set(db, periodAverages(t, this.previous.get(db) ?? ZERO, seconds));
    }
    this.previous = totals;
    this.previousAt = now;
    this.current = averages;
    return averages;
  }

  /** The last full period's averages of `database`: zeros before the first period ends. */
  averages(database: string): StatsAverages {
    return this.current.get(database) ?? ZERO;
  }
}

function periodAverages(t: StatsTotals, p: StatsTotals, seconds: number): StatsAverages {
  // A database whose pools a RELOAD removed and re-added starts again from zero: never a negative rate.
  const d = (k: keyof StatsTotals): number => Math.max(0, t[k] - p[k]);
  const mean = (k: keyof StatsTotals, per: number): number => (per > 0 ? d(k) / per : 0);
  return {
    assignments: d('assignments') / seconds,
    transactions: d('transactions') / seconds,
    requests: d('requests') / seconds,
    bytesReceived: d('bytesReceived') / seconds,
    bytesSent: d('bytesSent') / seconds,
    transactionTimeUs: mean('transactionTimeUs', d('transactions')),
    requestTimeUs: mean('requestTimeUs', d('requests')),
    // As PgBouncer documents it: the mean wait of the clients that got a server connection in the period.
    waitTimeUs: mean('waitTimeUs', d('assignments')),
  };
}
