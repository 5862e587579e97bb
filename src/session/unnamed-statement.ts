/**
 * A client's unnamed statement, and whether the server connection it writes to holds it.
 *
 * In PostgreSQL a session's unnamed statement lasts until the next unnamed Parse or simple Query.
 * Through pgway it lives on the connection it was parsed on, which other clients share, so each
 * connection records whose it is (ServerStatements.unnamedOwner and the rest): the owner, which of
 * the owner's Parses it was, how many Queries the owner had sent then, and its session effects.
 * The client's statement is there while all three still match (`here`): another client's unnamed
 * Parse takes the record over, and a Parse or a Query of the client's, wherever it ran, counts
 * past it.
 *
 * Both are recorded when written, ahead of the server's answers, and the server may yet skip
 * either (an error earlier in its group):
 * - a Parse carries an UnnamedOwnerChange in its slot, which gives the record (and the client's
 *   count of Parses) back if the server skips it, and leaves it nobody's if the Parse fails;
 * - a skipped Query dropped nothing: it is taken off the count (`queryNotRun`).
 * Within one group that guess is safe, as a message behind a skipped one is skipped too. A message
 * of a later group that uses the statement must not run on the guess (a Bind behind a skipped Parse
 * would run another client's statement, or the client's own one a Query dropped): it waits for the
 * answers it depends on (`mustWait`). So an undo never meets a Parse written after its own.
 */
import type { SlotUndo } from '../pool/expected-responses.js';
import type { ServerConnection } from '../pool/server-connection.js';
import type { SessionEffect } from '../router/session-effects.js';
import { NO_EFFECTS } from './frame-effects.js';

let nextId = 1;

/** The slot of an unnamed Parse pgway refused (see UnnamedStatement.parseRefused), and the client's first Parse after it. */
interface Refusal extends SlotUndo {
  readonly frame: Buffer;
  next: UnnamedOwnerChange | undefined;
}

/**
 * An unnamed Parse the server may skip or refuse. Skipped, it leaves the connection's record and
 * the client's count of Parses as they were before it (the undos of a group run last first, see
 * ExpectedResponses.failHead). Failed, it leaves the client no statement, and the record nobody's:
 * PostgreSQL drops the unnamed statement there before parsing, but not when the message fails
 * before that (its text in an encoding it cannot convert), and then it is whoever's it was. Where
 * that was the client's own latest statement, the record goes back as for a skip: the server has it
 * or nothing, and says which.
 *
 * A later Parse written before this one's answer (one that begins its group does not wait for it)
 * took the state this one left as its own before: if this one is undone, that state is mended in
 * the first later change not undone itself (along `next`), whose undo comes after.
 */
export class UnnamedOwnerChange implements SlotUndo {
  /** The state before this Parse: the connection's record, and the client's count of Parses. */
  private owner: number;
  private afterQueries: number;
  private afterWritten: number;
  private parse: number;
  private effects: readonly SessionEffect[];
  private parsesBefore: number;
  /** This Parse's number among the client's. */
  private readonly parsed: number;
  /** The client's next unnamed Parse (see above). */
  next: UnnamedOwnerChange | undefined;
  /** Taken back already: a mend of what came before it goes on to the next one. */
  private undone = false;

  constructor(
    private readonly server: ServerConnection,
    private readonly client: UnnamedStatement,
    parsesBefore: number,
  ) {
    const statements = server.statements;
    this.owner = statements.unnamedOwner;
    this.afterQueries = statements.unnamedAfterQueries;
    this.afterWritten = statements.unnamedAfterWritten;
    this.parse = statements.unnamedParse;
    this.effects = statements.unnamedEffects;
    this.parsesBefore = parsesBefore;
    this.parsed = parsesBefore + 1;
  }

  undo(failed = false): void {
    this.undone = true;
    // Failed, the client keeps no statement, unless the one before was its own latest (see above).
    const nobody = failed && !(this.owner === this.client.id && this.parse === this.parsesBefore);
    const statements = this.server.statements;
    if (statements.unnamedOwner === this.client.id && statements.unnamedParse === this.parsed) {
      if (nobody) {
        statements.unnamedOwner = 0;
      } else {
        statements.unnamedOwner = this.owner;
        statements.unnamedAfterQueries = this.afterQueries;
        statements.unnamedAfterWritten = this.afterWritten;
        statements.unnamedParse = this.parse;
        statements.unnamedEffects = this.effects;
      }
    } else {
      let later = this.next;
      while (later !== undefined && later.undone) later = later.next;
      later?.takeBefore(this, nobody);
    }
    if (!nobody) this.client.parseNotDone(this.parsed, this.parsesBefore);
  }

  /**
   * Query number `query` of client `client` was skipped (see UnnamedStatement.queryNotRun): a
   * record found here that counted it counts it no more.
   */
  queryNotRun(client: number, query: number): void {
    if (this.owner === client && this.afterWritten >= query) this.afterQueries--;
  }

  /**
   * The Parse numbered `refused` that pgway refused, written before this one, was skipped by the
   * server after all (see UnnamedStatement.parseRefused): the client's statement before this one is
   * the one before it.
   */
  refusalSkipped(refused: number): void {
    if (this.parsesBefore === refused) this.parsesBefore = refused - 1;
  }

  /** The Parse before this one (`prev`) was undone: what it found is what this one found. */
  private takeBefore(prev: UnnamedOwnerChange, nobody: boolean): void {
    if (nobody) {
      this.owner = 0;
      return;
    }
    this.owner = prev.owner;
    this.afterQueries = prev.afterQueries;
    this.afterWritten = prev.afterWritten;
    this.parse = prev.parse;
    this.effects = prev.effects;
    this.parsesBefore = prev.parsesBefore;
  }
}

export class UnnamedStatement {
  /** Names this client on a connection's record (a number: nothing of a departed client is kept alive). */
  readonly id = nextId++;
  /** Unnamed Parses the client sent, less those the server skipped: the last one is its statement. */
  private parses = 0;
  /** Query messages the client sent, less those the server skipped: each drops its unnamed statement. */
  private queries = 0;
  /** Query messages the client sent, skipped ones included: the last one's number. */
  written = 0;
  /** Syncs written: which group a message is in. */
  private syncs = 0;
  /**
   * The last unnamed Parse the server may yet skip, and the Syncs written before it: a later group's
   * use of the statement waits for its answer.
   */
  private claim: UnnamedOwnerChange | undefined;
  private claimSyncs = 0;
  /** The slot of the last unnamed Parse pgway refused itself (see parseRefused), and the Syncs written before it. */
  private refusal: Refusal | undefined;
  private refusalSyncs = 0;

  /** A Query was written: it drops the unnamed statement, wherever the statement lives. */
  queryWritten(): void {
    this.queries++;
    this.written++;
  }

  /** A Sync was written: what follows is a later group. */
  synced(): void {
    this.syncs++;
  }

  /**
   * Query number `query` (0: one pgway answered itself, taken to be the last) counted by
   * queryWritten was skipped by the server (on `server`): it dropped no unnamed statement. A record
   * made after it counted it too: the connection's moves back with the count, and so does the one
   * each later Parse still owed an answer found before it, which its undo may give back. (The
   * client writes to no other connection while a Query is owed.)
   */
  queryNotRun(server: ServerConnection | undefined, query: number): void {
    const number = query > 0 ? query : this.written;
    if (server !== undefined) {
      const statements = server.statements;
      if (statements.unnamedOwner === this.id && statements.unnamedAfterWritten >= number) statements.unnamedAfterQueries--;
      server.expected.forEachExtra((extra) => {
        if (extra instanceof UnnamedOwnerChange) extra.queryNotRun(this.id, number);
      });
    }
    this.queries--;
  }

  /**
   * pgway refuses an unnamed Parse of the client's itself with `error`, and the server never sees it:
   * as after a Parse the server fails, the client has no unnamed statement (no record matches a
   * number it never wrote). Returns the slot of the answer: if the server skips the group there (an
   * error before it), the Parse was skipped, not refused, and the statement before it stays.
   */
  parseRefused(error: Buffer): SlotUndo {
    const parsed = ++this.parses;
    const refusal: Refusal = {
      frame: error,
      next: undefined,
      // A later Parse written meanwhile counted this one before it: it counts it no more.
      undo: () => {
        if (this.parses === parsed) this.parses = parsed - 1;
        else refusal.next?.refusalSkipped(parsed);
      },
    };
    // A later group's use of the statement waits to see whether it was refused or skipped (mustWait).
    this.refusal = refusal;
    this.refusalSyncs = this.syncs;
    return refusal;
  }

  /** Parse number `parsed` was skipped: the one before it is the client's statement again. */
  parseNotDone(parsed: number, before: number): void {
    if (this.parses === parsed) this.parses = before;
  }

  /** `server` holds the client's unnamed statement: its last Parse, after its last Query. */
  here(server: ServerConnection): boolean {
    const statements = server.statements;
    return statements.unnamedOwner === this.id && statements.unnamedParse === this.parses && statements.unnamedAfterQueries === this.queries;
  }

  /** The session effects of the client's unnamed statement, if `server` holds it. */
  effects(server: ServerConnection): readonly SessionEffect[] {
    return this.here(server) ? server.statements.unnamedEffects : NO_EFFECTS;
  }

  /**
   * An unnamed Parse with these `effects` is written to `server`, after other messages of its group
   * (`inGroup`) or first in it: the connection's record is the client's now. Returns the undo its
   * slot must carry: on a shared connection (`pooled`) always, as the Parse may fail, and otherwise
   * when an error before it in the group may make the server skip it.
   */
  parsed(server: ServerConnection, inGroup: boolean, pooled: boolean, effects: readonly SessionEffect[]): UnnamedOwnerChange | undefined {
    const change = inGroup || pooled ? new UnnamedOwnerChange(server, this, this.parses) : undefined;
    const statements = server.statements;
    statements.unnamedOwner = this.id;
    statements.unnamedAfterQueries = this.queries;
    statements.unnamedAfterWritten = this.written;
    statements.unnamedParse = ++this.parses;
    statements.unnamedEffects = effects;
    if (change !== undefined) {
      if (this.refusal !== undefined) this.refusal.next ??= change;
      if (this.claim !== undefined) this.claim.next = change;
      this.claim = change;
      this.claimSyncs = this.syncs;
    }
    return change;
  }

  /**
   * Whether a Bind, Describe, Close or Parse of the unnamed statement must wait for answers owed on
   * `server`: it is in a later group than an unnamed Parse the server may yet skip, which is not
   * answered yet, or refused by pgway (see parseRefused). A Bind, Describe or Close (`use`) also waits while a Query counted since the client's
   * statement was parsed here is owed: whether the server ran it (and dropped the statement) or
   * skipped it is not known yet (unless the server waits for the client: a COPY FROM STDIN that
   * Query began, which the message fails, as PostgreSQL fails it).
   */
  mustWait(server: ServerConnection, use: boolean): boolean {
    const claim = this.claim;
    if (claim !== undefined && this.claimSyncs !== this.syncs) {
      if (server.expected.holds(claim)) return true;
      this.claim = undefined;
    }
    const refusal = this.refusal;
    if (refusal !== undefined && this.refusalSyncs !== this.syncs) {
      if (server.expected.holds(refusal)) return true;
      this.refusal = undefined;
    }
    if (!use || server.expected.length === 0 || server.inCopyIn) return false;
    const statements = server.statements;
    // Only a Query the server answers can be one it skips (and waiting for pgway's own answers would never end).
    return statements.unnamedOwner === this.id && statements.unnamedParse === this.parses && statements.unnamedAfterQueries !== this.queries &&
      server.expected.queryOwed;
  }
}
