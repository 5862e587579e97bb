/**
 * Changes to a client's statements or its server connection's that the server may yet skip or
 * refuse: each is taken back when the error arrives in its slot (see SlotUndo, RequestWriter.guess).
 */
import type { SlotUndo } from '../pool/expected-responses.js';
import type { ServerConnection } from '../pool/server-connection.js';

/** An unnamed Parse the server skipped leaves the connection's unnamed statement to whoever had it. */
export class UnnamedOwnerChange implements SlotUndo {
  constructor(
    private readonly server: ServerConnection,
    private readonly before: number,
    private readonly after: number,
  ) {}

  undo(): void {
    if (this.server.statements.unnamedOwner === this.after) this.server.statements.unnamedOwner = this.before;
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
