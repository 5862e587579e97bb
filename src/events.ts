/**
 * What pgway reports about itself, as diagnostics_channel messages. Core modules publish; admin/
 * subscribes (metrics, logs). Publishing costs one property read when nobody listens. Events of
 * every request (latencies) are not published: a message per request cost more than the rest of
 * the bookkeeping, so they go into the pool's counters (pool/latency-histogram.ts), read at scrape time.
 */
import diagnostics_channel from 'node:diagnostics_channel';

export interface ErrorEvent {
  /** 'server': an ErrorResponse a server sent; 'gateway': one pgway sent itself. */
  source: 'server' | 'gateway';
  sqlstate: string;
}

export interface PinEvent {
  pool: string;
  reason: string;
}

export const errorChannel = diagnostics_channel.channel('pgway:error');
export const pinChannel = diagnostics_channel.channel('pgway:pin');
