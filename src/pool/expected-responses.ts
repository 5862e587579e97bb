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
  private kinds: number[] = [];
  private actions: number[] = [];
  /** Per slot: the synthesized frame, or a statement name to forget if its Parse fails. */
  private extras: (Buffer | string | undefined)[] = [];
  private head = 0;
  /** Slots that are not plain Forward: while zero the stream needs no per-frame decisions. */
  special = 0;

  get length(): number {
    return this.kinds.length - this.head;
  }

  get headKind(): number {
    return this.kinds[this.head] ?? 0;
  }

  get headAction(): number {
    return this.actions[this.head] ?? Action.Forward;
  }

  get headExtra(): Buffer | string | undefined {
    return this.extras[this.head];
  }

  push(kind: Slot, action: Action = Action.Forward, extra?: Buffer | string): void {
    this.kinds.push(kind);
    this.actions.push(action);
    this.extras.push(extra);
    if (action !== Action.Forward) this.special++;
  }

  shift(): void {
    if (this.head >= this.kinds.length) return;
    if (this.actions[this.head] !== Action.Forward) this.special--;
    this.extras[this.head] = undefined;
    this.head++;
    if (this.head === this.kinds.length) this.clear();
    else if (this.head > 1024) this.compact();
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
    for (let i = this.kinds.length - 1; i > this.head; i--) {
      if (this.kinds[i] !== kind) continue;
      if (this.actions[i] !== Action.Forward) this.special--;
      this.kinds.splice(i, 1);
      this.actions.splice(i, 1);
      this.extras.splice(i, 1);
    }
  }

  clear(): void {
    this.kinds.length = 0;
    this.actions.length = 0;
    this.extras.length = 0;
    this.head = 0;
    this.special = 0;
  }

  private compact(): void {
    this.kinds = this.kinds.slice(this.head);
    this.actions = this.actions.slice(this.head);
    this.extras = this.extras.slice(this.head);
    this.head = 0;
  }
}
