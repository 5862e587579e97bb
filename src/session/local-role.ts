/**
 * The role of a SET LOCAL ROLE (or set_config('role', r, true)) in the transaction a client is
 * writing: a session SET made under it is laid on under that role later (the role may hold the
 * right to set it; see ClientSettings.set). Followed as statements are staged, until the
 * transaction ends: staged transaction control (a Query's COMMIT alone is classified while this is
 * followed: see SessionState.followsCommits), or the server's ReadyForQuery 'I'. Savepoints keep
 * the role in force at each, for ROLLBACK TO.
 */
import type { SessionEffect, TransactionMarker } from '../router/session-effects.js';

type SetEffect = SessionEffect & { kind: 'set' };

export class LocalRole {
  private role: string | undefined;
  /** The request the SET LOCAL ROLE was staged in. */
  private since = 0;
  /** The savepoints since a SET LOCAL ROLE, with the role in force at each. */
  private at: { name: string; role: string | undefined }[] | undefined;

  get followed(): boolean {
    return this.role !== undefined;
  }

  /** A SET LOCAL ROLE of `role` (undefined: one pgway cannot read) staged in request `request`. */
  set(role: string | undefined, request: number): void {
    this.role = role;
    this.since = request;
  }

  /** A session SET ROLE or RESET ROLE: it replaces the local one for the rest of the transaction too. */
  replaced(): void {
    this.role = undefined;
  }

  /** A session SET staged now: made under the local role, if one is in force. */
  madeUnder(e: SetEffect): SetEffect {
    return this.role === undefined || e.name === 'role' ? e : { ...e, as: this.role, asSince: this.since };
  }

  /** Transaction control staged: where the local role ends, or goes back to. */
  marker(e: TransactionMarker): void {
    if (this.role === undefined && this.at === undefined) return;
    const at = this.at;
    switch (e.kind) {
      case 'commit':
      case 'rollback':
        this.end();
        return;
      case 'savepoint':
        (this.at ??= []).push({ name: e.name, role: this.role });
        return;
      case 'rollback-to':
      case 'release': {
        let i = at === undefined ? -1 : at.length - 1;
        while (i >= 0 && at![i]!.name !== e.name) i--;
        if (e.kind === 'release') {
          if (i >= 0) at!.length = i;
        } else if (i < 0) {
          // The savepoint came before any SET LOCAL ROLE followed here.
          this.end();
        } else {
          this.role = at![i]!.role;
          at!.length = i + 1;
        }
      }
    }
  }

  end(): void {
    this.role = undefined;
    this.at = undefined;
  }

  /**
   * Request `request` ended outside a transaction: a SET LOCAL ROLE staged up to it is over (an
   * implicit transaction ends with its Query), also for the SETs of later requests staged before
   * this was known (`staged`, each staged in request `stagedIn`), which were made under the
   * session's role.
   */
  static endedAt(request: number, staged: SessionEffect[], stagedIn: readonly number[]): void {
    for (let i = staged.length - 1; i >= 0 && stagedIn[i]! > request; i--) {
      const e = staged[i]!;
      if (e.kind === 'set' && e.asSince !== undefined && e.asSince <= request) staged[i] = { ...e, as: undefined, asSince: undefined };
    }
  }
}
