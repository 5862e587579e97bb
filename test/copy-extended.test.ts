// COPY FROM STDIN begun by an Execute (Parse/Bind/Execute/Sync, as postgres.js and libpq's pipeline
// send it) through a transaction-mode pool of one connection, so that each client gets the connection
// the one before it left: a client that vanishes must leave nothing open, and nothing waits forever.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { rawAfterLogin, answers, cat, P, B, E, S, H, Q, copyData, COPY_DONE, upTo } from './helpers/wire-script.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway;
const closers: (() => void)[] = [];

beforeAll(async () => {
  await adminQuery('DROP TABLE IF EXISTS rb_copy');
  await adminQuery('CREATE TABLE rb_copy (a int)');
  await adminQuery('GRANT ALL ON rb_copy TO app');
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 20000 }' });
});

afterAll(async () => {
  for (const c of closers) c();
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS rb_copy');
});

describe('client vanishing in the middle of an extended-protocol COPY FROM STDIN', () => {
  it('the server connection is cleaned at once and serves the next client promptly', { timeout: 30_000 }, async () => {
    const quick = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
    closers.push(() => void quick.stop());
    let end: () => void = () => undefined;
    const a = await rawAfterLogin(quick.url(), (e) => { end = e; closers.push(e); });
    // As postgres.js and libpq's pipeline do: Parse, Bind, Execute, Sync, then the data.
    a.write(cat(P('', 'COPY rb_copy (a) FROM STDIN'), B(''), E(), S));
    expect((await upTo(a, 'G')).at(-1)).toBe('G');
    a.write(copyData('1\n2\n3\n'));
    await sleep(50);
    end(); // the client vanishes mid-COPY

    // The connection is cleaned at once: before, its reset waited for a ReadyForQuery that the
    // server, skipping to a Sync after the CopyFail, never sent, until server_connect_timeout_ms
    // (15 s), and the next client's 5 s query_wait_timeout ran out first.
    const b = new pg.Client({ connectionString: quick.url() });
    await b.connect();
    try {
      const r = await b.query<{ v: number }>('SELECT 42 AS v');
      expect(r.rows[0]!.v).toBe(42);
    } finally {
      await b.end();
    }
    expect(Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM rb_copy')).rows[0]!.n)).toBe(0);
  });
});

describe('client that ends an extended-protocol COPY FROM STDIN with CopyDone and vanishes before its Sync', () => {
  const count = async (tag: number): Promise<number> =>
    Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM rb_copy WHERE a = $1', [tag])).rows[0]!.n);

  /** P/B/E/S, the data, CopyDone; waits for the COPY's CommandComplete, then the client is gone (no Sync). */
  async function copyThenVanish(url: string, tag: number): Promise<void> {
    let end: () => void = () => undefined;
    const a = await rawAfterLogin(url, (e) => { end = e; closers.push(e); });
    a.write(cat(P('', 'COPY rb_copy (a) FROM STDIN'), B(''), E(), S));
    expect((await upTo(a, 'G')).at(-1)).toBe('G');
    a.write(cat(copyData(`${tag}\n${tag}\n${tag}\n`), COPY_DONE, H)); // Flush: the CommandComplete is sent now
    expect((await upTo(a, 'C')).at(-1)).toBe('C:COPY 3'); // PostgreSQL now waits for the Sync
    end();
  }

  it("the next client's autocommit statement is not run inside the vanished client's COPY transaction", { timeout: 30_000 }, async () => {
    // Directly: the backend aborts the unsynced COPY when its client leaves.
    await copyThenVanish(pgUrl(lab().primary, 'app', 'app-secret', 'app'), 101);
    await sleep(300);
    expect(await count(101)).toBe(0);

    // Through pgway (transaction mode, one server connection): the next client gets that connection.
    await copyThenVanish(gw.url(), 202);
    await sleep(300);
    let endB: () => void = () => undefined;
    const b = await rawAfterLogin(gw.url(), (e) => { endB = e; });
    try {
      b.write(Q('INSERT INTO rb_copy (a) VALUES (303)'));
      // Outside any transaction block, as on a direct connection, and committed at once.
      expect(await answers(b)).toEqual(['C:INSERT 0 1', 'Z:I']);
      expect(await count(303)).toBe(1);
      expect(await count(202)).toBe(0);
    } finally {
      endB();
      await sleep(300);
    }
  });

  it("a transaction the next client commits does not commit the vanished client's COPY rows", { timeout: 30_000 }, async () => {
    await copyThenVanish(gw.url(), 505);
    await sleep(300);
    const b = new pg.Client({ connectionString: gw.url() });
    await b.connect();
    try {
      await b.query('BEGIN');
      await b.query('INSERT INTO rb_copy (a) VALUES (606)');
      await b.query('COMMIT');
    } finally {
      await b.end();
    }
    expect(await count(606)).toBe(1);
    expect(await count(505)).toBe(0); // the vanished client never sent its Sync
  });
});

describe('an extended-protocol group that prepares a named COPY after another statement', () => {
  it('streams the COPY data to the server as PostgreSQL expects, instead of hanging', { timeout: 30_000 }, async () => {
    const own = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 5000, server_connect_timeout_ms: 2000 }' });
    try {
      const run = async (url: string): Promise<string[]> => {
        let end: () => void = () => undefined;
        const a = await rawAfterLogin(url, (e) => { end = e; });
        try {
          const out: string[] = [];
          // One group (one Sync): a SELECT, then a named statement prepared and run: a COPY FROM STDIN.
          a.write(cat(P('', 'SELECT 1'), B(''), E(), P('rb_named_copy', 'COPY rb_copy (a) FROM STDIN'), B('rb_named_copy'), E(), S));
          out.push(...await upTo(a, 'G'));
          // The Sync above was ignored by the server (COPY mode): the data, CopyDone and a Sync end it.
          a.write(cat(copyData('707\n'), COPY_DONE, S));
          out.push(...await answers(a, 1, 5000).catch((err: Error) => [`no answer (${err.message})`]));
          return out;
        } finally {
          end();
        }
      };
      const direct = await run(pgUrl(lab().primary, 'app', 'app-secret', 'app'));
      expect(direct).toEqual(['1', '2', 'D:1', 'C:SELECT 1', '1', '2', 'G', 'C:COPY 1', 'Z:I']);
      expect(await run(own.url())).toEqual(direct);
    } finally {
      await own.stop();
    }
  });
});
