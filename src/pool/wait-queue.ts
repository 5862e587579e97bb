/**
 * The clients waiting for a server connection of one pool, first come first served, with the two
 * deadlines a wait has: query_wait_timeout (the client gives up) and reserve_timeout (the pool
 * may open reserve connections). One timer serves every waiter, set for the earliest deadline: a
 * timer per wait cost more than the rest of handing out a connection. Waiters queue in arrival
 * order, so a new waiter's deadline is rarely the earliest; when the timer fires it looks at all
 * of them and sets itself for the next deadline.
 */
import { nowMs } from '../clock.js';

export interface WaitTimeouts {
  /** 0: wait forever. */
  queryWaitTimeoutMs: number;
  reserveTimeoutMs: number;
  /** Whether reserve_timeout matters (a reserve pool exists). */
  watchReserve: boolean;
}

export interface WaitEvents<W> {
  /** `waiter` waited query_wait_timeout_ms; it has left the queue. */
  expired(waiter: W, waitedMs: number): void;
  /** A waiter has waited reserve_timeout_ms (see firstWaitedReserve). */
  reserveDue(): void;
}

/** When a wait began, as the queue counts it; carried along when the waiter moves to another pool. */
export interface WaitStart {
  since: number;
  /** Where the deadlines count from: `since`, or the last restart (a paused wait does not time out). */
  timedFrom: number;
}

interface Queued<W> extends WaitStart {
  waiter: W;
  /** It has waited reserve_timeout_ms (since timedFrom): its reserve deadline is no longer watched. */
  reserveDue: boolean;
}

export class WaitQueue<W> {
  private readonly queue: Queued<W>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** PAUSE: nobody times out until restart(). */
  private stopped = false;

  constructor(
    private readonly timeouts: () => WaitTimeouts,
    private readonly events: WaitEvents<W>,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  /** When the longest waiter began waiting (undefined: nobody waits). */
  get oldestSince(): number | undefined {
    return this.queue[0]?.since;
  }

  /** Whether the first waiter has waited reserve_timeout_ms: only then may reserve connections open. */
  get firstWaitedReserve(): boolean {
    return this.queue[0]?.reserveDue === true;
  }

  /**
   * Queues `waiter` at the back, or at the front (it was first in line for a connection that failed
   * its check). `start`: it began waiting in another queue (a pool RELOAD replaced), and its
   * deadlines still count from then.
   */
  add(waiter: W, front = false, start?: WaitStart): void {
    const now = nowMs();
    const q: Queued<W> = { waiter, since: start?.since ?? now, timedFrom: start?.timedFrom ?? now, reserveDue: false };
    if (front) this.queue.unshift(q);
    else this.queue.push(q);
    this.watch(deadlineOf(q, this.timeouts()), now);
  }

  /** The next waiter, how long it waited and when it began (see add); undefined when nobody waits. */
  shift(): { waiter: W; waitedMs: number; start: WaitStart } | undefined {
    const q = this.queue.shift();
    if (!q) return undefined;
    const now = nowMs();
    // A paused wait does not count towards its deadlines: they start again from now.
    return { waiter: q.waiter, waitedMs: now - q.since, start: { since: q.since, timedFrom: this.stopped ? now : q.timedFrom } };
  }

  /** Takes `waiter` out of the queue; false when it was not in it. */
  remove(waiter: W): boolean {
    const i = this.queue.findIndex((q) => q.waiter === waiter);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  clear(): void {
    this.queue.length = 0;
    this.stopTimer();
  }

  /** PAUSE: waits go on, but nobody times out. */
  stop(): void {
    this.stopped = true;
    this.stopTimer();
  }

  /** RESUME: every wait's deadlines count again, from now. */
  restart(): void {
    this.stopped = false;
    const now = nowMs();
    for (const q of this.queue) {
      q.timedFrom = now;
      q.reserveDue = false;
    }
    this.rewatch(now);
  }

  /** The timeouts changed (RELOAD): the timer follows. */
  rewatch(now = nowMs()): void {
    this.stopTimer();
    const timeouts = this.timeouts();
    let next = Infinity;
    for (const q of this.queue) next = Math.min(next, deadlineOf(q, timeouts));
    this.watch(next, now);
  }

  private watch(deadline: number, now: number): void {
    if (deadline >= this.timerAt || this.stopped) return;
    clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(deadline - now)));
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const now = nowMs();
    const { queryWaitTimeoutMs, reserveTimeoutMs, watchReserve } = this.timeouts();
    let reserveDue = false;
    for (const q of [...this.queue]) {
      if (queryWaitTimeoutMs > 0 && now - q.timedFrom >= queryWaitTimeoutMs) {
        this.remove(q.waiter);
        this.events.expired(q.waiter, now - q.since);
      } else if (watchReserve && !q.reserveDue && now - q.timedFrom >= reserveTimeoutMs) {
        q.reserveDue = true;
        reserveDue = true;
      }
    }
    if (reserveDue) this.events.reserveDue();
    this.rewatch(now);
  }
}

/** The earlier of a wait's two deadlines (Infinity: none applies). */
function deadlineOf(q: { timedFrom: number; reserveDue: boolean }, t: WaitTimeouts): number {
  let deadline = t.queryWaitTimeoutMs > 0 ? q.timedFrom + t.queryWaitTimeoutMs : Infinity;
  if (t.watchReserve && !q.reserveDue) deadline = Math.min(deadline, q.timedFrom + t.reserveTimeoutMs);
  return deadline;
}
