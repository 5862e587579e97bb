/**
 * The session effects of the client's portals: a portal runs its statement's effects (a SET, a
 * set_config with its bound value) at each Execute, so pgway notes what each Bind gives it.
 *
 * A Bind or Close is noted as it is written, and the server may refuse or skip it. Then the
 * portal is as it was: a named portal still open refuses a Bind (42P03), and the unnamed one is
 * kept by a Bind that fails before the server replaces it (an unknown statement, a wrong count of
 * values) and dropped by one that fails later (a value the parameter's type refuses). Each such
 * change still unanswered is a link in its portal's chain, so that taking one back, in whatever
 * order the answers come, leaves the portal what the changes that stand make it.
 */
import type { SlotUndo } from '../pool/expected-responses.js';
import type { SessionEffect } from '../router/session-effects.js';
import { NO_EFFECTS } from './frame-effects.js';

/** Named portals whose statements have session effects, beyond which the client is pinned (see change). */
export const MAX_PORTALS_WITH_EFFECTS = 64;

/** A Bind's errors raised before PostgreSQL replaces the unnamed portal: the old one stays. */
const BEFORE_PORTAL = new Set(['26000', '08P01', '25P02']);

/** A Bind or Close of a portal, until answered (see PortalEffects.change). */
class Change implements SlotUndo {
  /** The next change of the same portal, written after this one. */
  next: Change | undefined;
  taken = false;

  constructor(
    private readonly portals: PortalEffects,
    private readonly portal: string,
    /** What the portal does if this change does not happen. */
    public before: readonly SessionEffect[],
    /** The server-side statement bound (see ServerConnection's stale plans). */
    readonly statement: string | undefined,
  ) {}

  undo(failed?: boolean, sqlstate?: string): void {
    this.taken = true;
    const dropped = failed === true && this.portal === '' && !BEFORE_PORTAL.has(sqlstate ?? '');
    const restored = dropped ? NO_EFFECTS : this.before;
    let later = this.next;
    while (later?.taken) later = later.next;
    // A later change was made on this one's account: it now starts from what stands instead.
    if (later) later.before = restored;
    else this.portals.restore(this.portal, restored);
  }
}

export class PortalEffects {
  unnamed: readonly SessionEffect[] = NO_EFFECTS;
  private named: Map<string, readonly SessionEffect[]> | undefined;
  /** Per portal, its last change that may yet be taken back (see Change). */
  private lastChange: Map<string, Change> | undefined;
  /**
   * More named portals with effects were open at once than pgway follows: it forgot them, and the
   * client must stay on its connection, where what they do concerns no other client (as past
   * SessionState's MAX_STAGED). Cleared by whoever pins it.
   */
  overflowed = false;

  /** Whether any portal has effects: an Execute needs a look. */
  get any(): boolean {
    return this.unnamed.length > 0 || this.named !== undefined;
  }

  /** Whether named portals or changes are noted (see transactionEnded). */
  get noted(): boolean {
    return this.named !== undefined || this.lastChange !== undefined;
  }

  get(portal: string): readonly SessionEffect[] | undefined {
    return portal === '' ? this.unnamed : this.named?.get(portal);
  }

  /**
   * A Bind written now gives `portal` these effects (a Close: none). Returns the change for the
   * message's slot when the server refusing or skipping it would matter: where the portal had
   * effects, or gets some, or a change of it is still unanswered.
   */
  change(portal: string, effects: readonly SessionEffect[], statement?: string): SlotUndo | undefined {
    const before = this.get(portal) ?? NO_EFFECTS;
    const last = this.lastChange?.get(portal);
    this.set(portal, effects);
    if (before.length === 0 && effects.length === 0 && last === undefined) return undefined;
    const change = new Change(this, portal, before, statement);
    if (last) last.next = change;
    (this.lastChange ??= new Map()).set(portal, change);
    return change;
  }

  /** A change was taken back, none after it standing: the portal is as `effects` says. */
  restore(portal: string, effects: readonly SessionEffect[]): void {
    this.set(portal, effects);
  }

  /** No transaction is open and nothing is in flight: the client has no named portal left. */
  transactionEnded(): void {
    this.named = undefined;
    this.lastChange = undefined;
  }

  private set(portal: string, effects: readonly SessionEffect[]): void {
    if (portal === '') {
      this.unnamed = effects;
    } else if (effects.length > 0) {
      if (this.named === undefined) {
        this.named = new Map();
      } else if (this.named.size >= MAX_PORTALS_WITH_EFFECTS && !this.named.has(portal)) {
        this.overflowed = true;
        this.named = new Map();
      }
      this.named.set(portal, effects);
    } else if (this.named?.delete(portal) && this.named.size === 0) {
      this.named = undefined;
    }
  }
}
