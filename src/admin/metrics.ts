/**
 * Prometheus metrics. Connection gauges are read from the gateway at scrape time; latency
 * histograms and error counters are fed from pgway's diagnostics channels, so the forwarding
 * path only pays for them while this module is listening.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrorEvent, PinEvent, PoolWaitEvent, RequestEvent, TransactionEvent } from '../events.js';
import { errorChannel, pinChannel, poolWaitChannel, requestChannel, transactionChannel } from '../events.js';
import type { AdminView } from './admin-view.js';

const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

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
        this.reset();
        for (const c of view.clients()) this.inc({ state: c.state });
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
          const pool = `${p.database}/${p.user}`;
          this.set({ pool, state: 'active' }, p.serversActive);
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
        for (const p of view.pools()) this.set({ pool: `${p.database}/${p.user}` }, p.clientsWaiting);
      },
    });

    const wait = new Histogram({ name: 'pgway_pool_wait_seconds', help: 'Time clients waited for a server connection', labelNames: ['pool'], buckets: LATENCY_BUCKETS_S, registers: [registry] });
    const xact = new Histogram({ name: 'pgway_transaction_duration_seconds', help: 'Transaction duration, server connection taken to given back', labelNames: ['pool'], buckets: LATENCY_BUCKETS_S, registers: [registry] });
    const request = new Histogram({ name: 'pgway_query_duration_seconds', help: 'Request latency, sent to the server to its last ReadyForQuery', labelNames: ['pool'], buckets: LATENCY_BUCKETS_S, registers: [registry] });
    const errors = new Counter({ name: 'pgway_errors_total', help: 'ErrorResponses by SQLSTATE and source', labelNames: ['source', 'sqlstate'], registers: [registry] });
    const pins = new Counter({ name: 'pgway_session_pins_total', help: 'Clients pinned to a server connection, by reason', labelNames: ['pool', 'reason'], registers: [registry] });

    this.on(poolWaitChannel, (m: PoolWaitEvent) => wait.observe({ pool: m.pool }, m.waitMs / 1000));
    this.on(transactionChannel, (m: TransactionEvent) => xact.observe({ pool: m.pool }, m.durationMs / 1000));
    this.on(requestChannel, (m: RequestEvent) => request.observe({ pool: m.pool }, m.durationMs / 1000));
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
