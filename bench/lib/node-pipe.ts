/**
 * The benchmark's `pipe` target: the least a Node.js proxy can do. Each client connection gets its
 * own server connection and the bytes go through unchanged, both ways, read and written with
 * pgway's own socket I/O (socketFor and connectDirect of direct-reads.ts, SocketWriter): no parsing, no pooling,
 * no authentication of its own (PostgreSQL authenticates the client through it). What it costs per
 * transaction is the floor under pgway's forwarding path on the machine at hand.
 *
 *   node dist/bench/lib/node-pipe.js LISTEN_PORT SERVER_HOST SERVER_PORT
 */
import net from 'node:net';
import { acceptDirect, connectDirect, socketFor, type DirectReader } from '../../src/wire/direct-reads.js';
import { SocketWriter } from '../../src/wire/socket-writer.js';

const READ_BUFFER = { minBytes: 16 * 1024, maxBytes: 64 * 1024 };

/** Reads of one side go to the other side's writer; a read buffer is lent while that writer holds bytes. */
class Direction implements DirectReader {
  out: SocketWriter | undefined;

  onChunk(chunk: Buffer): void {
    this.out!.write(chunk);
  }

  lent(): boolean {
    return this.out !== undefined && this.out.pending > 0;
  }
}

function pipeConnection(client: net.Socket, upstreamBound: Direction, serverHost: string, serverPort: number): void {
  const downstream = new Direction();
  const server = connectDirect({ host: serverHost, port: serverPort, noDelay: true }, downstream, READ_BUFFER);
  upstreamBound.out = new SocketWriter(server);
  downstream.out = new SocketWriter(client);
  // The client's bytes wait until the server connection is open (SocketWriter writes to an open handle).
  client.pause();
  server.once('connect', () => client.resume());
  const close = (): void => {
    client.destroy();
    server.destroy();
  };
  for (const socket of [client, server]) {
    socket.on('error', close);
    socket.on('close', close);
  }
}

function main(): void {
  const [listenPort, serverHost, serverPort] = process.argv.slice(2);
  if (!listenPort || !serverHost || !serverPort) {
    console.error('usage: node node-pipe.js LISTEN_PORT SERVER_HOST SERVER_PORT');
    process.exit(2);
  }
  const listener = net.createServer();
  listener.on('error', (err) => {
    console.error(`node-pipe: ${err.message}`);
    process.exit(1);
  });
  listener.listen(Number(listenPort), '127.0.0.1', () => {
    acceptDirect(listener, (accepted) => {
      const upstream = new Direction();
      const client = socketFor(accepted, upstream, READ_BUFFER);
      client.setNoDelay(true);
      pipeConnection(client, upstream, serverHost, Number(serverPort));
    }, (err) => console.error(`node-pipe: ${err.message}`));
    console.error(`node-pipe listening on 127.0.0.1:${listenPort}, forwarding to ${serverHost}:${serverPort}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main();
