/**
 * A replication connection (`replication=true` or `database` in the StartupMessage): after the
 * login, the client and the primary talk to each other directly, bytes unchanged both ways,
 * outside any pool. Either side closing closes the other.
 */
import type net from 'node:net';

/** Whether a StartupMessage's `replication` value asks for a replication connection. */
export function wantsReplication(value: string | undefined): boolean {
  if (value === undefined) return false;
  return ['true', 'on', 'yes', '1', 'database'].includes(value.toLowerCase());
}

export class ReplicationPipe {
  constructor(
    private readonly client: net.Socket,
    private readonly primary: net.Socket,
  ) {
    client.removeAllListeners('drain');
    primary.pipe(client);
    primary.on('close', () => client.destroy());
    primary.on('error', () => client.destroy());
    client.on('close', () => primary.destroy());
  }

  /** The client's bytes go to the primary as they come, paced by the primary's socket. */
  forward(chunk: Buffer): void {
    if (this.primary.write(chunk)) return;
    this.client.pause();
    this.primary.once('drain', () => this.client.resume());
  }

  /** Whether client bytes (views of the client's read buffer) still wait to reach the primary. */
  get holdsClientBytes(): boolean {
    return this.primary.writableLength > 0;
  }
}
