/**
 * Prometheus metrics. Connection gauges and latency histograms are read from the gateway at
 * scrape time (the histograms are kept by each pool, see pool/latency-histogram.ts); error and
 * pin counters are fed from pgway's diagnostics channels, so the forwarding path only pays for
 * them while this module is listening.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric, type MetricValueWithName } from 'prom-client';
import type { ErrorEvent, PinEvent } from '../events.js';
import { errorChannel, pinChannel } from '../events.js';
import { LATENCY_BOUNDS_MS, type LatencyHistogram } from '../pool/latency-histogram.js';
import { poolLabel, type PoolCounters } from '../pool/pool.js';
import { CLIENT_STATES, type AdminView } from './admin-view.js';

/** A metric whose values are computed at scrape time from counters kept elsewhere. */
interface ScrapedMetric {
  name: string;
  help: string;
  type: 'histogram';
  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValueWithName<string>[] }>;
}

const LE_LABELS = [...LATENCY_BOUNDS_MS.map((ms) => String(ms / 1000)), '+Inf'];

export class Metrics {
  readonly registry = new Registry();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(view: AdminView) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'pgway_process_' });

    new Gauge({
      name: 'pgway_client_connections',
      help: 'Client connections by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        // Every state, 0 included: a series that vanishes reads as "no data", not as none.
        const counts = new Map<string, number>(CLIENT_STATES.map((s) => [s, 0]));
        for (const c of view.clients()) counts.set(c.state, counts.get(c.state)! + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'pgway_server_connections',
      help: 'Server connections by pool and state',
      labelNames: ['pool', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of view.pools()) {
          const pool = poolLabel(p.database, p.user);
          this.set({ pool, state: 'active' }, p.serversActive);
          this.set({ pool, state: 'tested' }, p.serversTested);
          this.set({ pool, state: 'used' }, p.serversUsed);
          this.set({ pool, state: 'idle' }, p.serversIdle);
          this.set({ pool, state: 'login' }, p.serversLogin);
        }
      },
    });
    new Gauge({
      name: 'pgway_clients_waiting',
      help: 'Clients waiting for a server connection, by pool',
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of view.pools()) this.set({ pool: poolLabel(p.database, p.user) }, p.clientsWaiting);
      },
    });

    const histogram = (name: string, help: string, of: (c: PoolCounters) => LatencyHistogram): void => {
      const metric: ScrapedMetric = {
        name,
        help,
        type: 'histogram',
        get: async () => ({
          name,
          help,
          type: 'histogram',
          aggregator: 'sum',
          values: view.pools().flatMap((p) => histogramValues(name, poolLabel(p.database, p.user), of(p.counters))),
        }),
      };
      // prom-client's registry formats any metric with get(); its types only name its own classes.
      registry.registerMetric(metric as unknown as Metric);
    };
    histogram('pgway_pool_wait_seconds', 'Time clients waited for a server connection', (c) => c.waitLatency);
    histogram('pgway_transaction_duration_seconds', 'Transaction duration, server connection taken to given back', (c) => c.transactionLatency);
    histogram('pgway_query_duration_seconds', 'Request latency, sent to the server to its last ReadyForQuery', (c) => c.requestLatency);
    const errors = new Counter({ name: 'pgway_errors_total', help: 'ErrorResponses by SQLSTATE and source', labelNames: ['source', 'sqlstate'], registers: [registry] });
    const pins = new Counter({ name: 'pgway_session_pins_total', help: 'Clients pinned to a server connection, by reason', labelNames: ['pool', 'reason'], registers: [registry] });

    this.on(errorChannel, (m: ErrorEvent) => errors.inc({ source: m.source, sqlstate: m.sqlstate }));
    this.on(pinChannel, (m: PinEvent) => pins.inc({ pool: m.pool, reason: m.reason }));
  }

  private on<T>(channel: diagnostics_channel.Channel, handler: (message: T) => void): void {
    const listener = (message: unknown): void => handler(message as T);
    channel.subscribe(listener);
    this.unsubscribe.push(() => channel.unsubscribe(listener));
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }
}

/** One pool's histogram as Prometheus series: cumulative buckets, sum and count. */
function histogramValues(name: string, pool: string, h: LatencyHistogram): MetricValueWithName<string>[] {
  const values: MetricValueWithName<string>[] = [];
  let cumulative = 0;
  for (let i = 0; i < LE_LABELS.length; i++) {
    cumulative += h.buckets[i]!;
    values.push({ metricName: `${name}_bucket`, labels: { pool, le: LE_LABELS[i]! }, value: cumulative });
  }
  values.push({ metricName: `${name}_sum`, labels: { pool }, value: h.sumMs / 1000 });
  values.push({ metricName: `${name}_count`, labels: { pool }, value: h.count });
  return values;
}
