/**
 * The FIFO of responses a server connection owes, one slot per request message sent (or not
 * sent: a response pgway answers itself). Each slot says what to do with its response: forward
 * it, swallow it (pgway's own injected messages), or synthesize it (the message was never sent).
 * The error rule lives here too: after an ErrorResponse to an extended-protocol message the server
 * discards every message up to the next Sync (a Query too), so the slots of the skipped messages
 * are dropped, synthesized ones included, and so are those of messages sent after the error and
 * before the Sync (a client that sent Parse, Describe, Flush and waits to send Bind, Execute,
 * Sync).
 */
import { Backend, Frontend } from '../wire/codes.js';

export const enum Slot {
  Parse = 1,
  Bind,
  Describe,
  Execute,
  Close,
  Sync,
  Query,
  FunctionCall,
  /**
   * Not a request: where the client ended a COPY (CopyDone or CopyFail) before the server said it
   * began one. Syncs sent before it are ignored by a server in COPY mode; the ones after it count.
   */
  CopyEnd,
  /**
   * Not a request: where the client sent COPY data before the server said a COPY began (one for a
   * run of them). A Sync after it may be read after the COPY failed on that data (beginCopyIn).
   */
  CopyData,
}

/** The response slot of each extended-protocol message (0: none). */
export const EXTENDED_SLOTS = new Uint8Array(256);
EXTENDED_SLOTS[Frontend.Parse] = Slot.Parse;
EXTENDED_SLOTS[Frontend.Bind] = Slot.Bind;
EXTENDED_SLOTS[Frontend.Describe] = Slot.Describe;
EXTENDED_SLOTS[Frontend.Execute] = Slot.Execute;
EXTENDED_SLOTS[Frontend.Close] = Slot.Close;

export const enum Action {
  Forward = 0,
  Swallow = 1,
  Synthesize = 2,
}

/** Which backend codes end the response to each kind of request. */
const TERMINAL: Uint8Array[] = [];
function terminal(slot: Slot, codes: number[]): void {
  const set = new Uint8Array(256);
  for (const c of codes) set[c] = 1;
  TERMINAL[slot] = set;
}
terminal(Slot.Parse, [Backend.ParseComplete]);
terminal(Slot.Bind, [Backend.BindComplete]);
terminal(Slot.Describe, [Backend.RowDescription, Backend.NoData]);
terminal(Slot.Execute, [Backend.CommandComplete, Backend.EmptyQueryResponse, Backend.PortalSuspended]);
terminal(Slot.Close, [Backend.CloseComplete]);
terminal(Slot.Sync, [Backend.ReadyForQuery]);
terminal(Slot.Query, [Backend.ReadyForQuery]);
terminal(Slot.FunctionCall, [Backend.ReadyForQuery]);

/**
 * What beginCopyIn found the client had sent already, as bits: its CopyDone or CopyFail, a Sync
 * after that, a Sync after some of the COPY's data; and, from bit GROUP_QUERIES_SHIFT up, its Queries and FunctionCalls sent after the
 * COPY's end and before any other message of the group (see beginCopyIn).
 */
export const COPY_ENDED = 1;
export const SYNC_AFTER = 2;
export const SYNC_AFTER_DATA = 4;
export const GROUP_QUERIES_SHIFT = 3;

/** Extended-protocol messages: skipped by the server after an error, up to the next Sync (COPY messages too). */
const isExtended = (slot: number): boolean => slot <= Slot.Close || slot === Slot.CopyEnd || slot === Slot.CopyData;
/** Marks of the COPY protocol in the FIFO, answered by nothing. */
const isCopyMark = (slot: number): boolean => slot === Slot.CopyEnd || slot === Slot.CopyData;

/**
 * A slot whose message changed what pgway believes (a client's statement defined or closed): if
 * the server skips or refuses the message, `undo` takes the change back.
 */
export interface SlotUndo {
  /** A synthesized slot's response. */
  readonly frame?: Buffer;
  /** A Parse slot's server-side statement: forgotten when the Parse does not happen. */
  readonly statement?: string;
  /**
   * `failed`: the message itself failed (the error is its answer, `sqlstate` its code); otherwise
   * the server skipped it.
   */
  undo(failed?: boolean, sqlstate?: string): void;
}

/**
 * The slot of pgway's own Describe of a statement it prepared: hears the ParameterDescription and
 * the RowDescription or NoData, which are swallowed.
 */
export interface DescriptionWatcher extends SlotUndo {
  described(code: number, frame: Buffer, start: number, end: number): void;
}

/** A client's Query slot carries the Query's number among the client's (see UnnamedStatement.queryWritten). */
export type SlotExtra = Buffer | string | number | SlotUndo | DescriptionWatcher | undefined;

export class ExpectedResponses {
  // A ring of slots: kinds and actions in typed arrays, so pushing and shifting a slot per
  // request allocates nothing and never resizes an array in steady state.
  private kinds = new Uint8Array(16);
  private actions = new Uint8Array(16);
  /**
   * Per slot: the synthesized frame; for Parse a statement name to forget if it fails, for Close
   * one the server keeps if skipped; or a SlotUndo.
   */
  private extras: SlotExtra[] = new Array<undefined>(16).fill(undefined);
  private head = 0;
  private count = 0;
  /** Slots that are not plain Forward: while zero the stream needs no per-frame decisions. */
  special = 0;
  /** An extended-protocol message failed and no Sync was queued: the server discards all until one comes. */
  private skipping = false;
  /** The client's Syncs the last beginCopyIn took out: requests never answered. */
  syncsIgnored = 0;

  get length(): number {
    return this.count;
  }

  /** An extended-protocol message failed with no Sync queued: the server waits for the client's Sync. */
  get awaitingSync(): boolean {
    return this.skipping;
  }

  /** Whether a slot answered by ReadyForQuery (a Sync, Query or FunctionCall) is queued. */
  get readyOwed(): boolean {
    const mask = this.kinds.length - 1;
    for (let i = 0; i < this.count; i++) {
      const kind = this.kinds[(this.head + i) & mask]!;
      if (kind === Slot.Sync || kind === Slot.Query || kind === Slot.FunctionCall) return true;
    }
    return false;
  }

  /** Whether a client's Query (one the server answers, not pgway) is still owed its answer. */
  get queryOwed(): boolean {
    return this.forwardOwed(Slot.Query);
  }

  /** Whether a client's Execute (one the server answers) is still owed its answer: it may begin a COPY. */
  get executeOwed(): boolean {
    return this.forwardOwed(Slot.Execute);
  }

  private forwardOwed(kind: Slot): boolean {
    const mask = this.kinds.length - 1;
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) & mask;
      if (this.kinds[at] === kind && this.actions[at] === Action.Forward) return true;
    }
    return false;
  }

  /** Whether the slot carrying `extra` is still owed its answer. */
  holds(extra: SlotUndo): boolean {
    const mask = this.kinds.length - 1;
    for (let i = 0; i < this.count; i++) if (this.extras[(this.head + i) & mask] === extra) return true;
    return false;
  }

  /** Calls `fn` with what each slot still owed carries, oldest first (none of them may be pushed or taken meanwhile). */
  forEachExtra(fn: (extra: SlotExtra) => void): void {
    const mask = this.kinds.length - 1;
    for (let i = 0; i < this.count; i++) fn(this.extras[(this.head + i) & mask]);
  }

  /** Whether a Parse (a client's or pgway's own) is still owed its answer: it may yet fail. */
  get parseOwed(): boolean {
    const mask = this.kinds.length - 1;
    for (let i = 0; i < this.count; i++) if (this.kinds[(this.head + i) & mask] === Slot.Parse) return true;
    return false;
  }

  get headKind(): number {
    return this.count > 0 ? this.kinds[this.head]! : 0;
  }

  get headAction(): number {
    return this.count > 0 ? this.actions[this.head]! : Action.Forward;
  }

  get headExtra(): SlotExtra {
    return this.count > 0 ? this.extras[this.head] : undefined;
  }

  /** Queues a slot; false when the server will discard the message (see failHead): nothing owed. */
  push(kind: Slot, action: Action = Action.Forward, extra?: SlotExtra): boolean {
    if (this.skipping) {
      if (kind !== Slot.Sync) return false;
      this.skipping = false;
    }
    if (this.count === this.kinds.length) this.grow();
    const at = (this.head + this.count) & (this.kinds.length - 1);
    this.kinds[at] = kind;
    this.actions[at] = action;
    this.extras[at] = extra;
    this.count++;
    if (action !== Action.Forward) this.special++;
    return true;
  }

  shift(): void {
    if (this.count === 0) return;
    this.dropHead();
    // A COPY end or data that reaches the head had no COPY to go to (the server ignores it too).
    if (this.count > 0 && isCopyMark(this.kinds[this.head]!)) this.shift();
  }

  /** Whether `code` ends the response to the head slot. */
  endsHead(code: number): boolean {
    const set = TERMINAL[this.headKind];
    return set !== undefined && set[code] === 1;
  }

  /**
   * The error rule. Pops the failed slot and, when it was an extended-protocol message, every
   * following one up to the next Sync; with no Sync queued, the messages sent until the client's
   * Sync get no slot (push). Calls `onDropped` with each dropped slot's extra, last first, so that
   * changes are taken back in the reverse of the order they were made.
   */
  failHead(onDropped: (extra: SlotExtra, kind: number, failed: boolean) => void): void {
    // A Query or Sync still ends with its ReadyForQuery; an error owed to nothing (a FATAL) drops nothing.
    if (this.count === 0 || !isExtended(this.headKind)) return;
    const dropped: [SlotExtra, number][] = [];
    do {
      dropped.push([this.headExtra, this.headKind]);
      this.dropHead();
    } while (this.count > 0 && this.headKind !== Slot.Sync);
    if (this.count === 0) this.skipping = true;
    // Last first, so that each undo finds what the message after it left; the head is the one that failed.
    for (let i = dropped.length - 1; i >= 0; i--) onDropped(dropped[i]![0], dropped[i]![1], i === 0);
  }

  /** Removes the head slot, a COPY end included. */
  private dropHead(): void {
    const at = this.head;
    if (this.actions[at] !== Action.Forward) this.special--;
    this.extras[at] = undefined;
    this.head = (at + 1) & (this.kinds.length - 1);
    this.count--;
  }

  /**
   * The server began a COPY from the client for the head slot: the Syncs the client sent before it
   * ended the COPY are read inside it and ignored, so their slots go (syncsIgnored counts them),
   * and so do the COPY's end and data marks. One after some of the COPY's data is read after the
   * COPY failed on that data, if it did, and answered (SYNC_AFTER_DATA: see ServerConnection's
   * syncInCopy). Returns what the client sent already: COPY_ENDED (its CopyDone or CopyFail),
   * SYNC_AFTER_DATA, SYNC_AFTER (a Sync after that end), and the
   * Queries and FunctionCalls after that end that came before any extended-protocol message
   * there: written after an ignored Sync, they were taken to be outside any group
   * (ServerConnection.groupQueries), but for a COPY an Execute began, they are inside it.
   */
  beginCopyIn(): number {
    this.syncsIgnored = 0;
    if (this.count <= 1) return 0;
    let syncAfter = false;
    let queries = 0;
    let extendedAfter = false;
    const kept: [number, number, SlotExtra][] = [];
    const mask = this.kinds.length - 1;
    let ended = false;
    let dataSent = false;
    let syncAfterData = false;
    for (let i = 1; i < this.count; i++) {
      const at = (this.head + i) & mask;
      const kind = this.kinds[at]!;
      if (!ended && kind === Slot.CopyEnd) ended = true;
      else if (!ended && kind === Slot.CopyData) dataSent = true;
      else if (ended || kind !== Slot.Sync) {
        kept.push([kind, this.actions[at]!, this.extras[at]]);
        if (ended && kind === Slot.Sync) syncAfter = true;
        else if (ended && !syncAfter && !extendedAfter) {
          if (kind <= Slot.Close) extendedAfter = true;
          else if ((kind === Slot.Query || kind === Slot.FunctionCall) && this.actions[at] === Action.Forward) queries++;
        }
      }
      else if (this.actions[at] !== Action.Forward) this.special--;
      else {
        this.syncsIgnored++;
        if (dataSent) syncAfterData = true;
      }
      this.extras[at] = undefined;
    }
    this.count = 1;
    for (const [k, a, e] of kept) {
      const at = (this.head + this.count) & mask;
      this.kinds[at] = k;
      this.actions[at] = a;
      this.extras[at] = e;
      this.count++;
    }
    return (ended ? COPY_ENDED : 0) | (syncAfter ? SYNC_AFTER : 0) | (syncAfterData ? SYNC_AFTER_DATA : 0) | (queries << GROUP_QUERIES_SHIFT);
  }

  /** The client sent COPY data: marked where a COPY may yet begin before it (see beginCopyIn). */
  noteCopyData(): void {
    if (this.count === 0) return;
    if (this.kinds[(this.head + this.count - 1) & (this.kinds.length - 1)] !== Slot.CopyData) this.push(Slot.CopyData);
  }

  clear(): void {
    while (this.count > 0) this.shift();
    this.head = 0;
    this.special = 0;
    this.skipping = false;
  }

  /** Doubles the ring, keeping the slots in order from index 0. */
  private grow(): void {
    const size = this.kinds.length;
    const kinds = new Uint8Array(size * 2);
    const actions = new Uint8Array(size * 2);
    const extras = new Array<SlotExtra>(size * 2).fill(undefined);
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) & (size - 1);
      kinds[i] = this.kinds[at]!;
      actions[i] = this.actions[at]!;
      extras[i] = this.extras[at];
    }
    this.kinds = kinds;
    this.actions = actions;
    this.extras = extras;
    this.head = 0;
  }
}
