/**
 * A pooled client's unnamed statement, and whether the server connection it writes to holds it.
 *
 * In PostgreSQL a session's unnamed statement lasts until the next unnamed Parse or simple Query.
 * Through pgway it lives on the connection it was parsed on, which other clients share, so each
 * connection records whose it is: the owner (UnnamedStatement.id) and how many Queries the owner
 * had sent when it parsed it (ServerStatements.unnamedOwner, unnamedAfterQueries). The client's
 * statement is there while both still match (`here`): another client's unnamed Parse takes the
 * record over, and a Query of the client's, wherever it ran, counts past it.
 *
 * Both are recorded when written, ahead of the server's answers, and the server may yet skip
 * either (an error earlier in its group):
 * - a skipped Parse leaves the statement to whoever had it: the Parse's slot carries an
 *   UnnamedOwnerChange that gives the record back when the error arrives;
 * - a skipped Query dropped nothing: it is taken off the count (`queryNotRun`).
 * Within one group that guess is safe, as a message behind a skipped one is skipped too. A message
 * of a later group that uses the statement must not run on the guess (a Bind behind a skipped Parse
 * would run the other client's statement): it waits for the answers it depends on (`mustWait`).
 */
import type { SlotUndo } from '../pool/expected-responses.js';
import type { ServerConnection } from '../pool/server-connection.js';

let nextId = 1;

/**
 * An unnamed Parse the server skipped leaves the connection's unnamed statement to whoever had it,
 * as parsed after as many of their Queries as it was. Later unnamed Parses of the same group are
 * skipped with it; none of a later group is written before it is answered (UnnamedStatement.mustWait).
 */
export class UnnamedOwnerChange implements SlotUndo {
  constructor(
    private readonly server: ServerConnection,
    private readonly before: number,
    private readonly beforeQueries: number,
    private readonly after: number,
  ) {}

  undo(): void {
    const statements = this.server.statements;
    if (statements.unnamedOwner !== this.after) return;
    statements.unnamedOwner = this.before;
    statements.unnamedAfterQueries = this.beforeQueries;
  }
}

export class UnnamedStatement {
  /** Names this client on a connection's record (a number: nothing of a departed client is kept alive). */
  private readonly id = nextId++;
  /** Query messages the client sent, less those the server skipped: each drops its unnamed statement. */
  private queries = 0;
  /** Syncs written: which group a message is in. */
  private syncs = 0;
  /**
   * An unnamed Parse that took the connection's record from another client in a group the server
   * may yet skip, and the Syncs written before it: a later group's use of the statement waits for it.
   */
  private claim: UnnamedOwnerChange | undefined;
  private claimSyncs = 0;

  /** A Query was written: it drops the unnamed statement, wherever the statement lives. */
  queryWritten(): void {
    this.queries++;
  }

  /** A Sync was written: what follows is a later group. */
  synced(): void {
    this.syncs++;
  }

  /**
   * A Query counted by queryWritten was skipped by the server (on `server`): it dropped no unnamed
   * statement. An unnamed Parse written after it counted it too: its record moves back with the count.
   */
  queryNotRun(server: ServerConnection | undefined): void {
    const statements = server?.statements;
    if (statements !== undefined && statements.unnamedOwner === this.id && statements.unnamedAfterQueries === this.queries) statements.unnamedAfterQueries--;
    this.queries--;
  }

  /** `server` holds the client's unnamed statement, parsed after its last Query. */
  here(server: ServerConnection): boolean {
    return server.statements.unnamedOwner === this.id && server.statements.unnamedAfterQueries === this.queries;
  }

  /**
   * An unnamed Parse is written to `server`, after other messages of its group (`inGroup`) or first
   * in it: the connection's record is the client's now. Returns the undo its slot must carry when
   * an error before it in the group may make the server skip it and the record was another's (or
   * the client's from before a Query), else undefined.
   */
  parsed(server: ServerConnection, inGroup: boolean): UnnamedOwnerChange | undefined {
    const statements = server.statements;
    const before = statements.unnamedOwner;
    const beforeQueries = statements.unnamedAfterQueries;
    statements.unnamedOwner = this.id;
    statements.unnamedAfterQueries = this.queries;
    if (!inGroup || (before === this.id && beforeQueries === this.queries)) return undefined;
    const change = new UnnamedOwnerChange(server, before, beforeQueries, this.id);
    if (before !== this.id) {
      this.claim = change;
      this.claimSyncs = this.syncs;
    }
    return change;
  }

  /**
   * Whether a Bind, Describe, Close or Parse of the unnamed statement must wait for answers owed on
   * `server`: it is in a later group than a Parse that took the statement from another client,
   * which is not answered yet. A Bind or Describe (`use`) also waits while a Query counted since the
   * client's statement was parsed here is owed: whether the server ran it (and dropped the
   * statement) or skipped it is not known yet.
   */
  mustWait(server: ServerConnection, use: boolean): boolean {
    const claim = this.claim;
    if (claim !== undefined && this.claimSyncs !== this.syncs) {
      if (server.expected.holds(claim)) return true;
      this.claim = undefined;
    }
    if (!use || server.expected.length === 0) return false;
    const statements = server.statements;
    // Only a Query the server answers can be one it skips (and waiting for pgway's own answers would never end).
    return statements.unnamedOwner === this.id && statements.unnamedAfterQueries !== this.queries && server.expected.queryOwed;
  }
}
