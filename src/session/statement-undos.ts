/**
 * Changes to a client's statements or its server connection's that the server may yet skip or
 * refuse: each is taken back when the error arrives in its slot (see SlotUndo, RequestWriter.guess).
 */
import type { SlotUndo } from '../pool/expected-responses.js';

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

/** Two changes one message made, taken back together. */
export class BothUndone implements SlotUndo {
  constructor(
    private readonly first: SlotUndo,
    private readonly second: SlotUndo,
  ) {}

  undo(failed?: boolean, sqlstate?: string): void {
    this.second.undo(failed, sqlstate);
    this.first.undo(failed, sqlstate);
  }
}
