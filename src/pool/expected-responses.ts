/**
 * The FIFO of responses a server connection owes, one slot per request message sent (or not
 * sent: a response pgway answers itself). Each slot says what to do with its response: forward
 * it, swallow it (pgway's own injected messages), or synthesize it (the message was never sent).
 * The error rule lives here too: after an ErrorResponse the server skips to the next Sync, so the
 * slots of the skipped messages are dropped, synthesized ones included.
 */
import { Backend } from '../wire/codes.js';

export const enum Slot {
  Parse = 1,
  Bind,
  Describe,
  Execute,
  Close,
  Sync,
  Query,
  FunctionCall,
}

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

/** Extended-protocol messages: skipped by the server after an error, up to the next Sync. */
const isExtended = (slot: number): boolean => slot <= Slot.Close;

export class ExpectedResponses {
  // A ring of slots: kinds and actions in typed arrays, so pushing and shifting a slot per
  // request allocates nothing and never resizes an array in steady state.
  private kinds = new Uint8Array(16);
  private actions = new Uint8Array(16);
  /** Per slot: the synthesized frame, or a statement name to forget if its Parse fails. */
  private extras: (Buffer | string | undefined)[] = new Array<undefined>(16).fill(undefined);
  private head = 0;
  private count = 0;
  /** Slots that are not plain Forward: while zero the stream needs no per-frame decisions. */
  special = 0;

  get length(): number {
    return this.count;
  }

  get headKind(): number {
    return this.count > 0 ? this.kinds[this.head]! : 0;
  }

  get headAction(): number {
    return this.count > 0 ? this.actions[this.head]! : Action.Forward;
  }

  get headExtra(): Buffer | string | undefined {
    return this.count > 0 ? this.extras[this.head] : undefined;
  }

  push(kind: Slot, action: Action = Action.Forward, extra?: Buffer | string): void {
    if (this.count === this.kinds.length) this.grow();
    const at = (this.head + this.count) & (this.kinds.length - 1);
    this.kinds[at] = kind;
    this.actions[at] = action;
    this.extras[at] = extra;
    this.count++;
    if (action !== Action.Forward) this.special++;
  }

  shift(): void {
    if (this.count === 0) return;
    const at = this.head;
    if (this.actions[at] !== Action.Forward) this.special--;
    this.extras[at] = undefined;
    this.head = (at + 1) & (this.kinds.length - 1);
    this.count--;
  }

  /** Whether `code` ends the response to the head slot. */
  endsHead(code: number): boolean {
    const set = TERMINAL[this.headKind];
    return set !== undefined && set[code] === 1;
  }

  /**
   * The error rule. Pops the failed slot and, when it was an extended-protocol message, every
   * following one up to the next Sync. Calls `onDropped` with each dropped slot's extra.
   */
  failHead(onDropped: (extra: Buffer | string | undefined, kind: number) => void): void {
    const failed = this.headKind;
    if (!isExtended(failed)) return; // a Query or Sync still ends with its ReadyForQuery
    onDropped(this.headExtra, failed);
    this.shift();
    while (this.length > 0 && isExtended(this.headKind)) {
      onDropped(this.headExtra, this.headKind);
      this.shift();
    }
  }

  /** Drops the slots after the head whose kind is `kind` (Syncs the server ignores during COPY). */
  dropAfterHead(kind: Slot): void {
    if (this.count <= 1) return;
    const kept: [number, number, Buffer | string | undefined][] = [];
    const mask = this.kinds.length - 1;
    for (let i = 1; i < this.count; i++) {
      const at = (this.head + i) & mask;
      if (this.kinds[at] !== kind) kept.push([this.kinds[at]!, this.actions[at]!, this.extras[at]]);
      else if (this.actions[at] !== Action.Forward) this.special--;
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
  }

  clear(): void {
    while (this.count > 0) this.shift();
    this.head = 0;
    this.special = 0;
  }

  /** Doubles the ring, keeping the slots in order from index 0. */
  private grow(): void {
    const size = this.kinds.length;
    const kinds = new Uint8Array(size * 2);
    const actions = new Uint8Array(size * 2);
    const extras = new Array<Buffer | string | undefined>(size * 2).fill(undefined);
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
