/** Small helpers shared by the driver-level integration tests. */
import pg from 'pg';
import { afterEach, expect } from 'vitest';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * pg clients a test file opens, each ended after its test; given up after `endWithinMs`, as a client whose
 * server went away may never answer its Terminate. Their 'error' events are ignored (a test sees a failure in
 * what it awaits); `onCreate` runs before each client connects, to record them. Call at a file's top level:
 * vitest runs afterEach hooks last registered first, so this one runs before those registered above it.
 */
export function clientsOfEachTest({ endWithinMs = 1000, onCreate }: { endWithinMs?: number; onCreate?: (client: pg.Client) => void } = {}): {
  connect(config: pg.ClientConfig | string): Promise<pg.Client>;
  /** Clients made elsewhere go here too, to be ended with the others. */
  opened: pg.Client[];
  endAll(): Promise<void>;
} {
  const opened: pg.Client[] = [];
  const endAll = async (): Promise<void> => {
    await Promise.all(opened.splice(0).map((c) => Promise.race([c.end().catch(() => undefined), sleep(endWithinMs)])));
  };
  afterEach(endAll);
  return {
    opened,
    endAll,
    async connect(config) {
      const client = new pg.Client(config);
      client.on('error', () => undefined);
      onCreate?.(client);
      opened.push(client);
      await client.connect();
      return client;
    },
  };
}

export async function pidOf(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

export function sqlstate(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** The rejection of `promise`, or undefined when it resolved. */
export async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Polls `check` until it holds; bounded, so a broken gateway fails the test instead of hanging it. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

// --- forcing a client onto a given server connection of a pool of 2 --------------------------------

/**
 * Pool of 2: runs `work` while another client holds the server connection `lastPid`, so `work`
 * can only run on the other connection. Returns what `work` returned.
 */
export function onAnotherConnection<T>(lastPid: number, holders: [pg.Client, pg.Client], work: () => Promise<T>): Promise<T> {
  return withOnlyFree((pid) => pid !== lastPid, holders, work);
}

/** Pool of 2: runs `work` while another client holds the other connection, so it runs on `pid`'s. */
export function onConnection<T>(pid: number, holders: [pg.Client, pg.Client], work: () => Promise<T>): Promise<T> {
  return withOnlyFree((p) => p === pid, holders, work);
}

/**
 * Makes a holder (an idle client of the same pool) sit in a transaction on the one connection for
 * which `wantFree` is false, runs `work` on the other, then lets the holder commit.
 */
async function withOnlyFree<T>(wantFree: (pid: number) => boolean, holders: [pg.Client, pg.Client], work: () => Promise<T>): Promise<T> {
  const [first, second] = holders;
  await first.query('BEGIN');
  let holder = first;
  if (wantFree(await pidOf(first))) {
    // `first` got the connection `work` needs: `second` takes the other one, then `first` lets go.
    await second.query('BEGIN');
    expect(wantFree(await pidOf(second))).toBe(false);
    await first.query('COMMIT');
    holder = second;
  }
  try {
    return await work();
  } finally {
    await holder.query('COMMIT');
  }
}

/** Two clients inside transactions at the same moment: proves the pool can hand out both connections. */
export async function bothConnectionsUsable(a: pg.Client, b: pg.Client): Promise<void> {
  await a.query('BEGIN');
  await b.query('BEGIN');
  const pids = [await pidOf(a), await pidOf(b)];
  await Promise.all([a.query('COMMIT'), b.query('COMMIT')]);
  expect(new Set(pids).size).toBe(2);
}

/** What within() rejects with when its promise did not settle in time. */
export class NoAnswerWithin extends Error {}

/** Bounds a promise in time: a hang fails the test with `what` instead of the test timeout. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new NoAnswerWithin(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}
