/**
 * Changes to a client's statements or its server connection's that the server may yet skip or
 * refuse: each is taken back when the error arrives in its slot (see SlotUndo, RequestWriter.guess).
 */
import type { SlotUndo } from '../pool/expected-responses.js';
import type { ServerConnection } from '../pool/server-connection.js';

/**
 * An unnamed Parse the server skipped leaves the connection's unnamed statement to whoever had it,
 * as parsed after as many of their Queries as it was (see ServerStatements.unnamedAfterQueries).
 * Later unnamed Parses of the same group are skipped with it; none of a later group is written
 * before it is answered (RequestWriter.unnamedClaimPending).
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

/** A DEALLOCATE ALL or DISCARD ALL that did not run: the client's statements and the connection's copies come back. */
export class DropAllTakeBack implements SlotUndo {
  constructor(
    private readonly clientUndo: () => void,
    private readonly serverUndo: () => void,
  ) {}

  undo(): void {
    this.clientUndo();
    this.serverUndo();
  }
}
