// A throwaway Redis for tests and the sandbox: `redis-server` from PATH, or a testcontainers
// container when only Docker is there. Nothing is persisted.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';

export interface RunningRedis { url: string; host: string; port: number; stop(): Promise<void> }

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const NOT_AVAILABLE = "redis-server not found on PATH and Docker is not available: install it with 'apt-get install redis-server' (or start Docker) to run the tests";

export function redisAvailability(): { how: 'binary' | 'docker' | 'none'; message: string } {
  if (process.env.PGWAY_TEST_DOCKER === '1') return { how: 'docker', message: 'Redis runs in Docker (PGWAY_TEST_DOCKER=1)' };
  const binary = findOnPath('redis-server');
  if (binary) return { how: 'binary', message: `Redis runs from ${binary}` };
  if (dockerWorks()) return { how: 'docker', message: 'redis-server not found on PATH: Redis runs in Docker' };
  return { how: 'none', message: NOT_AVAILABLE };
}

export async function startRedis(opts: { port?: number; docker?: boolean } = {}): Promise<RunningRedis> {
  const how = opts.docker ? 'docker' : redisAvailability().how;
  if (how === 'none') throw new Error(NOT_AVAILABLE);
  return how === 'docker' ? startContainer(opts.port) : startBinary(opts.port);
}

async function startBinary(fixedPort: number | undefined): Promise<RunningRedis> {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort(HOST));
    // --dir keeps a stray dump.rdb out of the working tree, should anything ever save one.
    const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
      '--dir', os.tmpdir(), '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let output = '';
    const collect = (b: Buffer): void => { output = (output + b.toString()).slice(-4000); };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(`exited with ${signal ?? `code ${code}`}`));
      child.once('error', (err) => resolve(`failed to start: ${err.message}`));
    });
    const outcome = await Promise.race([waitForPong(port, () => child.exitCode !== null), exited]);
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    };
    if (outcome === 'ready') {
      let stopping: Promise<void> | undefined;
      return { url: `redis://${HOST}:${port}`, host: HOST, port, stop: () => (stopping ??= stop()) };
    }
    await stop();
    // Another process may take the probed port before redis binds it: try another one.
    if (fixedPort === undefined && attempt < 5 && /Address already in use/i.test(output)) continue;
    throw new Error(`redis-server on port ${port} ${outcome}:\n${output.trim()}`);
  }
}

async function startContainer(fixedPort: number | undefined): Promise<RunningRedis> {
  // Loaded only here, so runs that use the binary never load testcontainers.
  const { GenericContainer } = await import('testcontainers');
  const container = await new GenericContainer('redis:7')
    .withExposedPorts(fixedPort === undefined ? 6379 : { container: 6379, host: fixedPort })
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
    .start();
  const host = container.getHost();
  const port = container.getMappedPort(6379);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= container.stop().then(() => undefined));
  const outcome = await waitForPong(port, () => false, host);
  if (outcome !== 'ready') {
    await stop();
    throw new Error(`redis container on ${host}:${port} ${outcome}`);
  }
  return { url: `redis://${host}:${port}`, host, port, stop };
}

/** Polls with a raw RESP PING until the server answers +PONG. */
async function waitForPong(port: number, gaveUp: () => boolean, host = HOST): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !gaveUp()) {
    if (await pingOnce(host, port)) return 'ready';
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return `did not answer PING within ${READY_TIMEOUT_MS} ms`;
}

function pingOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok); };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (b: Buffer) => {
      reply += b.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A crashed run must not leave redis-server behind.
    process.on('exit', () => { for (const c of running) c.kill('SIGTERM'); });
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  return undefined;
}

function dockerWorks(): boolean {
  const r = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}
