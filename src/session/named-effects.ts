/**
 * Session effects by the name of what runs them: the client's portals (a portal runs its
 * statement's effects, a SET or a set_config with its bound value, at its first Execute, so pgway
 * notes what each Bind gives it and what that Execute spends), and its untracked named statements
 * (session mode, or max_prepared_statements 0: their effects are staged where a portal of them runs).
 *
 * A Bind, Close or Parse is noted as it is written, and the server may refuse or skip it. Then the
 * name is as it was: a named portal still open refuses a Bind (42P03), a statement name in use a
 * Parse (42P05), and the unnamed portal is kept by a Bind that fails before the server replaces it
 * (an unknown statement, a wrong count of values) and dropped by one that fails later (a value the
 * parameter's type refuses). Each such change still unanswered is a link in its name's chain, so
 * that taking one back, in whatever order the answers come, leaves the name what the changes that
 * stand make it.
 */
import type { SlotUndo } from '../pool/expected-responses.js';
import type { SessionEffect } from '../router/session-effects.js';
import { NO_EFFECTS } from './frame-effects.js';

/** Names with session effects followed at once, beyond which the client is pinned (see overflowed). */
const MAX_NAMES_WITH_EFFECTS = 64;

/** A Bind's errors raised before PostgreSQL replaces the unnamed portal: the old one stays. */
const BEFORE_PORTAL = new Set(['26000', '08P01', '25P02']);

/** A Bind, Close or Parse, until answered (see EffectsByName.change). */
class Change implements SlotUndo {
  /** The next change of the same name, written after this one. */
  next: Change | undefined;
  taken = false;

  constructor(
    private readonly names: EffectsByName,
    private readonly name: string,
    /** What the name runs if this change does not happen. */
    public before: readonly SessionEffect[],
    /** The server-side statement bound (see ServerConnection's stale plans). */
    readonly statement: string | undefined,
    /** The group it was written in (the client's Syncs before it). */
    readonly group: number,
  ) {}

  undo(failed?: boolean, sqlstate?: string): void {
    this.taken = true;
    const dropped = failed === true && this.name === '' && !BEFORE_PORTAL.has(sqlstate ?? '');
    const restored = dropped ? NO_EFFECTS : this.before;
    let later = this.next;
    while (later?.taken) later = later.next;
    // A later change was made on this one's account: it now starts from what stands instead.
    if (later) later.before = restored;
    else this.names.set(this.name, restored);
  }
}

export class EffectsByName {
  unnamed: readonly SessionEffect[] = NO_EFFECTS;
  private named: Map<string, readonly SessionEffect[]> | undefined;
  /** Per name, its last change that may yet be taken back (see Change). */
  private lastChange: Map<string, Change> | undefined;
  /**
   * More names with effects were in use at once than pgway follows: it forgot them, and the client
   * must stay on its connection, where what they do concerns no other client (as past
   * SessionState's MAX_STAGED). Cleared by whoever pins it, and when every name goes (clear).
   */
  overflowed = false;

  /** Whether any name has effects: an Execute (a Bind) needs a look. */
  get any(): boolean {
    return this.unnamed.length > 0 || this.named !== undefined;
  }

  /** Whether names or changes are noted (see clear). */
  get noted(): boolean {
    return this.named !== undefined || this.lastChange !== undefined;
  }

  get(name: string): readonly SessionEffect[] | undefined {
    return name === '' ? this.unnamed : this.named?.get(name);
  }

  /**
   * A message written now gives `name` these effects (a Close: none). Returns the change for the
   * message's slot when the server refusing or skipping it would matter: where the name had
   * effects, or gets some, or a change of it is still unanswered.
   */
  change(name: string, effects: readonly SessionEffect[], group: number, statement?: string): SlotUndo | undefined {
    const before = this.get(name) ?? NO_EFFECTS;
    const last = this.lastChange?.get(name);
    this.set(name, effects);
    if (before.length === 0 && effects.length === 0 && last === undefined) return undefined;
    const change = new Change(this, name, before, statement, group);
    if (last) last.next = change;
    (this.lastChange ??= new Map()).set(name, change);
    return change;
  }

  /**
   * The last change of `name`, made in a group before `group` and not taken back: while the server
   * has not answered it, what `name` runs is not known (a Bind the server refuses leaves the portal
   * as it was, and a later group runs it so).
   */
  changedBefore(name: string, group: number): SlotUndo | undefined {
    const last = this.lastChange?.get(name);
    return last !== undefined && !last.taken && last.group !== group ? last : undefined;
  }

  /** `name` went, as the server reads it (a statement closed or deallocated): nothing to take back. */
  forget(name: string): void {
    this.set(name, NO_EFFECTS);
    this.lastChange?.delete(name);
  }

  /** Every named one went: the transaction ended (portals), or a DEALLOCATE ALL ran (statements). */
  clear(): void {
    this.named = undefined;
    this.lastChange = undefined;
    this.overflowed = false;
  }

  /** `name` runs these effects now (a change taken back, none after it standing, sets it so too). */
  set(name: string, effects: readonly SessionEffect[]): void {
    if (name === '') {
      this.unnamed = effects;
    } else if (effects.length > 0) {
      if (this.named === undefined) {
        this.named = new Map();
      } else if (this.named.size >= MAX_NAMES_WITH_EFFECTS && !this.named.has(name)) {
        this.overflowed = true;
        this.named = new Map();
        this.lastChange = undefined;
      }
      this.named.set(name, effects);
    } else if (this.named?.delete(name) && this.named.size === 0) {
      this.named = undefined;
    }
  }
}
