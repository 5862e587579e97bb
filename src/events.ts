/**
 * What pgway reports about itself, as diagnostics_channel messages. Core modules publish; admin/
 * subscribes (metrics, logs). Publishing costs one property read when nobody listens.
 */
import diagnostics_channel from 'node:diagnostics_channel';

export interface PoolWaitEvent {
  pool: string;
  waitMs: number;
}

export interface TransactionEvent {
  pool: string;
  /** From taking the server connection to giving it back. */
  durationMs: number;
}

export interface RequestEvent {
  pool: string;
  /** From writing a request to the server to its last ReadyForQuery. */
  durationMs: number;
}

export interface ErrorEvent {
  /** 'server': an ErrorResponse a server sent; 'gateway': one pgway sent itself. */
  source: 'server' | 'gateway';
  sqlstate: string;
}

export interface PinEvent {
  pool: string;
  reason: string;
}

export const poolWaitChannel = diagnostics_channel.channel('pgway:pool-wait');
export const transactionChannel = diagnostics_channel.channel('pgway:transaction');
export const requestChannel = diagnostics_channel.channel('pgway:request');
export const errorChannel = diagnostics_channel.channel('pgway:error');
export const pinChannel = diagnostics_channel.channel('pgway:pin');
