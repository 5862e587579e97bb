/**
 * A replication connection (`replication=true` or `database` in the StartupMessage): after the
 * login, the client and the primary talk to each other directly, bytes unchanged both ways,
 * outside any pool. Either side closing closes the other.
 */
import type net from 'node:net';
import type { ClientLink } from '../wire/client-link.js';

/** Whether a StartupMessage's `replication` value asks for a replication connection. */
export function wantsReplication(value: string | undefined): boolean {
  if (value === undefined) return false;
  return ['true', 'on', 'yes', '1', 'database'].includes(value.toLowerCase());
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
