/**
 * max_db_connections: the server connections open to one database across all its pools. A pool
 * with clients waiting and no slot waits to be told that one freed, or makes one by closing the
 * connection idle longest in another pool of the database, as PgBouncer evicts one.
 */
import type { Pool } from './pool.js';

/** Server connections open to one database across all its pools (max_db_connections; 0 = no cap). */
export class ConnectionLimit {
  open = 0;
  /** Pools that have clients waiting for a slot: each is told when one frees. */
  private readonly wanting = new Set<Pool>();
  /** Every open pool of the database: one may close an idle connection to make room (see evictIdle). */
  private readonly pools = new Set<Pool>();

  constructor(public max = 0) {}

  get full(): boolean {
    return this.max > 0 && this.open >= this.max;
  }

  /** More are open than the cap allows (a RELOAD lowered it): each one given back closes. */
  get over(): boolean {
    return this.max > 0 && this.open > this.max;
  }

  /** `pool` has clients waiting and no slot to open a connection for them. */
  want(pool: Pool): void {
    this.wanting.add(pool);
  }

  join(pool: Pool): void {
    this.pools.add(pool);
  }

  leave(pool: Pool): void {
    this.pools.delete(pool);
    this.wanting.delete(pool);
  }

  /**
   * Every slot is taken and `pool` has clients waiting: the connection idle longest in another
   * pool of the database (in any, without `pool`) closes to make room, as PgBouncer evicts one. Returns whether one did;
   * its slot goes to the pool that waited for one longest (see wake).
   */
  evictIdle(pool: Pool | undefined): boolean {
    let oldest: Pool | undefined;
    let since = Infinity;
    for (const other of this.pools) {
      const at = other === pool ? undefined : other.oldestIdleAt();
      if (at !== undefined && at < since) {
        since = at;
        oldest = other;
      }
    }
    return oldest !== undefined && oldest.closeOldestIdle();
  }

  /**
   * A RELOAD lowered the cap: idle connections above it close now, idle longest first, as a lower
   * pool.size closes a pool's idle ones (Pool.settings). Busy ones close when given back (Pool.putBack).
   */
  trimIdle(): void {
    while (this.over && this.evictIdle(undefined));
  }

  /** Whether a pool of the database other than `pool` has clients waiting for a slot. */
  wantedElsewhere(pool: Pool): boolean {
    for (const other of this.wanting) if (other !== pool && other.hasWaiters) return true;
    return false;
  }

  /** A connection counted here closed. */
  release(): void {
    this.open--;
    this.wake();
  }

  /** Slots may be free (one closed, or RELOAD raised max_db_connections): the pools waiting for one try again. */
  wake(): void {
    for (const pool of this.wanting) {
      if (this.full) return;
      this.wanting.delete(pool);
      pool.slotFreed();
    }
  }
}
