/**
 * A TCP proxy in front of the lab primary that can hold the server's answers back (`frozen`) and
 * let them through later (`release`), or cut every connection (`killAll`): for what pgway does
 * while it waits for the server.
 */
import net from 'node:net';
import { lab } from '../harness/lab.js';

export interface HoldingProxy {
  port: number;
  /** While true, the server's bytes are queued, in order, on every connection. */
  frozen: boolean;
  release(): void;
  killAll(): void;
  close(): void;
}

export async function startHoldingProxy(): Promise<HoldingProxy> {
  const { host, port } = lab().primary;
  const pairs: { down: net.Socket; up: net.Socket; queue: Buffer[] }[] = [];
  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    const p = { down, up, queue: [] as Buffer[] };
    pairs.push(p);
    down.on('data', (d) => up.write(d));
    up.on('data', (d) => { if (proxy.frozen) p.queue.push(d); else down.write(d); });
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const proxy: HoldingProxy = {
    port: (server.address() as net.AddressInfo).port,
    frozen: false,
    release() { proxy.frozen = false; for (const p of pairs) { for (const b of p.queue.splice(0)) p.down.write(b); } },
    killAll() { for (const p of pairs) { p.up.destroy(); p.down.destroy(); } },
    close() { server.close(); proxy.killAll(); },
  };
  return proxy;
}
