/**
 * A replication connection (`replication=true` or `database` in the StartupMessage): after the
 * login, the client and the primary talk to each other directly, bytes unchanged both ways,
 * outside any pool. Either side closing closes the other.
 */
import type net from 'node:net';
import { InvalidParameterValueError } from '../errors.js';
import { parseBool } from '../router/guc-value.js';
import type { ClientLink } from '../wire/client-link.js';

/** Whether a StartupMessage's `replication` value asks for a replication connection. */
export function wantsReplication(value: string | undefined): boolean {
  if (value === undefined) return false;
  return value === 'database' || parseBool(value) === true;
}

/** The startup parameter `replication` as PostgreSQL checks it: `database` or a boolean. */
export function checkReplicationParam(value: string | undefined): void {
  // PostgreSQL's parse_bool: case-insensitive, but no spaces around the word (where a SET's value may have them).
  if (value === undefined || value === 'database' || (value.trim() === value && parseBool(value) !== undefined)) return;
  throw new InvalidParameterValueError(`invalid value for parameter "replication": "${value}"`, {
    hint: 'Valid values are: "false", 0, "true", 1, "database".',
  });
}

export class ReplicationPipe {
  constructor(
    private readonly client: ClientLink,
    private readonly primary: net.Socket,
  ) {
    // The primary's chunks are its own (it reads through the stream API), so the client's queue may keep them.
    primary.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) primary.pause();
    });
    primary.on('end', () => client.end());
    primary.on('close', () => client.close());
    primary.on('error', () => client.destroy());
  }

  /** The client's bytes go to the primary as they come, paced by the primary's socket. */
  forward(chunk: Buffer): void {
    if (this.primary.write(chunk)) return;
    this.client.pause();
    this.primary.once('drain', () => this.client.resume());
  }

  /** The client took what the primary sent: the primary may send more. */
  onClientDrained(): void {
    this.primary.resume();
  }

  /** The client is gone: so is its connection to the primary. */
  close(): void {
    this.primary.destroy();
  }

  /** Whether client bytes (views of the client's read buffer) still wait to reach the primary. */
  get holdsClientBytes(): boolean {
    return this.primary.writableLength > 0;
  }
}
