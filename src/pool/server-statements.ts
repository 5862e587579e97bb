/**
 * What one server connection holds of prepared statements, as pgway took it to hold them from what
 * it wrote there: the shared copies of clients' extended-protocol statements (least recently used
 * first, each with its shape), the SQL-level statements laid on for clients, and whose unnamed
 * statement it has. Where pgway can no longer tell, `deallocateAll` makes its next lease start afresh.
 */

import type { SessionEffect } from '../router/session-effects.js';

/** A prepared statement's shape while pgway's own Describe of it is on its way. */
export const SHAPE_PENDING = '?';
/** A prepared statement whose shape pgway does not know, or does not check (see ClientStatement.checked). */
export const SHAPE_UNKNOWN = '';

/**
 * What `sql` holds for a name whose client DEALLOCATE (or protocol Close) was written but may not
 * have run (an error before it, a Parse never executed): the next placement of it starts afresh.
 */
export const SQL_UNKNOWN = '\u0000unknown';

const NO_UNNAMED_EFFECTS: readonly SessionEffect[] = Object.freeze([]);

/**
 * Counts the schema changes pgway has seen, process-wide: DDL through it (when written, and when
 * its transaction ends, which is when other sessions see it) and the server's stale-plan errors.
 * PostgreSQL fixes a statement's parameter types and the relations its names mean when it is
 * prepared, so a shared copy prepared before a change must not serve a client that prepares the
 * statement after it (see ServerStatements.preparedBefore). 0: none seen, and nothing is compared.
 */
export const schema = { epoch: 0 };

export function schemaChanged(): void {
  schema.epoch++;
}

export class ServerStatements {
  /**
   * Server-side names of the shared statements prepared here, least recently used first, each
   * with what it takes and returns as the server described it (see ShapeCheck), or SHAPE_PENDING /
   * SHAPE_UNKNOWN.
   */
  readonly prepared = new Map<string, string>();
  /** SQL-level prepared statements here (PREPARE name ...): name -> the PREPARE text. */
  readonly sql = new Map<string, string>();
  /** Shared statements still prepared here with a stale plan: closed before they are prepared again. */
  readonly stale = new Set<string>();
  /** The schema epoch each copy in `prepared` was prepared at (none: older than any). */
  readonly since = new Map<string, number>();
  /** What is prepared here may be stale or unknown: DEALLOCATE ALL before the next client. */
  deallocateAll = false;
  /** Whose unnamed statement this connection holds (a client's UnnamedStatement id; 0: nobody's known). */
  unnamedOwner = 0;
  /**
   * How many Queries its owner had sent when it parsed that statement: a Query of the owner's
   * since, wherever it ran, dropped it as far as the owner is concerned.
   */
  unnamedAfterQueries = 0;
  /**
   * How many Queries its owner had written then, skipped ones included: a skipped Query numbered up
   * to this one was counted in unnamedAfterQueries (see UnnamedStatement.queryNotRun).
   */
  unnamedAfterWritten = 0;
  /** Which of its owner's unnamed Parses it was: one since, wherever it ran, replaced it. */
  unnamedParse = 0;
  /** Its session effects (see frame-effects), staged by each Execute of a portal bound to it. */
  unnamedEffects: readonly SessionEffect[] = NO_UNNAMED_EFFECTS;

  /** The shape of shared statement `name`'s copy here, now the most recently used; undefined if none. */
  use(name: string): string | undefined {
    const copy = this.prepared.get(name);
    if (copy !== undefined) {
      this.prepared.delete(name);
      this.prepared.set(name, copy);
    }
    return copy;
  }

  /**
   * A client's DEALLOCATE ALL or DISCARD ALL was written: the shared copies are taken to be gone.
   * Returns what gives them back, for a request that failed before it ran (the server still has
   * them); copies prepared again since are kept as they are.
   */
  clearPrepared(): () => void {
    const before = new Map(this.prepared);
    this.prepared.clear();
    return () => {
      for (const [name, shape] of before) if (!this.prepared.has(name)) this.prepared.set(name, shape);
    };
  }

  /** The shared statement `name` has a stale plan (see Pool.invalidateStatement). */
  markStale(name: string): void {
    this.since.delete(name);
    if (this.prepared.delete(name)) this.stale.add(name);
  }

  /** Whether the copy of `name` here was prepared before schema epoch `epoch` (see schema). */
  preparedBefore(name: string, epoch: number): boolean {
    return (this.since.get(name) ?? -1) < epoch;
  }

  /** Copies prepared here from schema epoch `epoch` on: in a transaction whose DDL they may have read. */
  markStaleSince(epoch: number): void {
    for (const [name, at] of this.since) if (at >= epoch) this.markStale(name);
  }

  /** The server described the copy of `name` pgway prepared here (see ServerConnection.describeOwn). */
  described(name: string, shape: string): void {
    if (this.prepared.get(name) === SHAPE_PENDING) this.prepared.set(name, shape);
  }

  /** The server skipped or refused pgway's Parse of shared statement `name`. */
  parseNotDone(name: string): void {
    this.since.delete(name);
    this.prepared.delete(name);
  }

  /** The server skipped pgway's Close of `name` (an eviction): it is still there, shape unknown. */
  closeNotDone(name: string): void {
    this.prepared.set(name, SHAPE_UNKNOWN);
  }

  /** Nothing is prepared here any more (DISCARD ALL, DEALLOCATE ALL). */
  forgetAll(): void {
    this.prepared.clear();
    this.stale.clear();
    this.since.clear();
    this.sql.clear();
    this.deallocateAll = false;
  }
}
