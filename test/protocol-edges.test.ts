// Wire-protocol edge cases in transaction mode (pool of 2), each compared message for message with
// the same bytes sent to PostgreSQL directly: suspended portals, Flush-driven flows, deep pipelines
// with errors at every position, COPY through both protocols, FunctionCall, empty queries, frames
// split at every byte, multi-megabyte messages, Terminate with a request in flight, the unnamed
// statement across requests, and Describe/Close of names that do not exist. Several raw clients run
// at once so the two server connections rotate between clients between requests.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab, pgUrl } from './harness/lab.js';
import { errorFields, RawClient, type BackendMessage } from './helpers/raw-client.js';
import { rawAfterLogin, cat, i32, P, B, E, D, C, S, H, X, Q, copyData, COPY_DONE, copyFail, F, summary, shown, answers, upTo } from './helpers/wire-script.js';
import { sleep } from './helpers/pg-helpers.js';

let gw: TestGateway; // transaction mode, pool of 2

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
  await adminQuery('DROP TABLE IF EXISTS hpe_copy, hpe_rows');
  await adminQuery('CREATE TABLE hpe_copy (a int); CREATE TABLE hpe_rows (note text)');
  await adminQuery('GRANT ALL ON hpe_copy, hpe_rows TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS hpe_copy, hpe_rows');
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.race([Promise.resolve(c()).catch(() => undefined), sleep(3000)]);
});

// --- clients ------------------------------------------------------------------------------------

type Target = TestGateway | 'direct';

const urlOf = (target: Target): string => (target === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : target.url());

async function pgClient(target: Target): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlOf(target) });
  client.on('error', () => undefined);
  cleanups.push(() => client.end());
  await client.connect();
  return client;
}

/** Logs in with pg (SCRAM), then takes its socket over for hand-made messages. */
const raw = (target: Target): Promise<RawClient> => rawAfterLogin(urlOf(target), (end) => cleanups.push(end));

/** A gateway of its own (pool of 2) for a case that may leave a server connection unusable. */
/** A gateway of its own; logins get 5 s (a loaded machine), or what a test needs. */
async function ownGateway(connectTimeoutMs = 5000): Promise<TestGateway> {
  const g = await startGateway({ pool: `{ mode: transaction, size: 2, query_wait_timeout_ms: 2000, server_connect_timeout_ms: ${connectTimeoutMs} }` });
  cleanups.push(() => g.stop());
  return g;
}

/** Two clients of `target` keep running short queries (and short transactions) while `work` runs. */
async function withChurn<T>(target: Target, work: () => Promise<T>): Promise<T> {
  if (target === 'direct') return work();
  const others = await Promise.all([pgClient(target), pgClient(target)]);
  let churning = true;
  const churn = Promise.all(others.map(async (c, i) => {
    while (churning) {
      if (i === 0) await c.query('SELECT pg_sleep(0.002)');
      else await c.query('BEGIN; SELECT 1; COMMIT');
    }
  }));
  try {
    return await work();
  } finally {
    churning = false;
    await churn;
  }
}

/** What arrives within `ms` (nothing pending is []), and whether the peer closed. */
async function within(r: RawClient, ms: number): Promise<{ got: string[]; closed: boolean }> {
  const got: string[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let m: BackendMessage | undefined;
    try {
      m = await r.readMessage(left);
    } catch {
      break; // nothing more within the time
    }
    if (!m) break;
    if (shown(m)) got.push(summary(m));
  }
  return { got, closed: r.closed };
}

/** `promise`, or the string 'timeout' after `ms`. */
async function orTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function both<T>(run: (target: Target) => Promise<T>, target: TestGateway = gw): Promise<{ direct: T; pgway: T }> {
  const direct = await run('direct');
  const pgway = await run(target);
  return { direct, pgway };
}

/**
 * Both server connections of a pool of 2, from two clients inside transactions at the same moment:
 * what each finds there (a transaction left open makes BEGIN warn 25001; portals; settings).
 */
async function connectionState(target: TestGateway): Promise<string[][]> {
  const [a, b] = [await raw(target), await raw(target)];
  const out: string[][] = [];
  for (const r of [a, b]) {
    r.write(Q('BEGIN'));
    const begin = await r.readUntil('Z', 9000);
    const warned = begin.before.filter((m) => m.type === 'N').map((m) => `N:${errorFields(m.body).get('C')}`);
    r.write(Q("SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid, current_setting('application_name') AS app, (SELECT count(*) FROM pg_cursors) AS portals"));
    out.push([...warned, ...await answers(r, 1, 4000)]);
  }
  for (const r of [a, b]) {
    r.write(Q('COMMIT'));
    await answers(r, 1, 4000);
  }
  return out;
}

const CLEAN = ['T', 'D:t,,0', 'C:SELECT 1', 'Z:T'];

// --- suspended portals ------------------------------------------------------------------------------

describe('Execute with a row limit (PortalSuspended)', () => {
  it('fetches a portal in steps in an implicit transaction; Sync closes it, for this client and the next on that connection', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(cat(P('', 'SELECT g FROM generate_series(1, 5) g'), B('', [], 'hpe_p'), D('P', 'hpe_p'), E('hpe_p', 2), E('hpe_p', 2), H));
      out.push(...await upTo(a, 's'), ...await upTo(a, 's'));
      await sleep(30);
      a.write(cat(E('hpe_p', 2), S));
      out.push(...await answers(a));
      a.write(cat(E('hpe_p', 1), S)); // gone with its implicit transaction
      out.push(...await answers(a));
      // Another client, quite possibly on that connection: no portal of that name, no unnamed statement.
      const b = await raw(t);
      b.write(cat(E('hpe_p', 1), S, B(''), E(), S, Q('SELECT 1')));
      out.push('|', ...await answers(b, 3));
      return out;
    }));
    expect(direct).toEqual([
      '1', '2', 'T', 'D:1', 'D:2', 's', 'D:3', 'D:4', 's', 'D:5', 'C:SELECT 1', 'Z:I', 'E:34000', 'Z:I',
      '|', 'E:34000', 'Z:I', 'E:26000', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  });

  it('fetches a named portal over several Syncs inside an explicit transaction while others rotate', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(Q('BEGIN'));
      out.push(...await answers(a));
      a.write(cat(P('hpe_ps', 'SELECT g FROM generate_series(1, 7) g'), B('hpe_ps', [], 'hpe_tp'), E('hpe_tp', 3), S));
      out.push(...await answers(a));
      for (const rows of [3, 0]) {
        await sleep(20);
        a.write(cat(E('hpe_tp', rows), S));
        out.push(...await answers(a));
      }
      a.write(cat(E('hpe_tp', 1), S)); // ran to completion: an empty fetch, as PostgreSQL answers it
      out.push(...await answers(a));
      a.write(Q('COMMIT'));
      out.push(...await answers(a));
      a.write(cat(E('hpe_tp', 1), S));
      out.push(...await answers(a));
      return out;
    }));
    expect(direct.slice(0, 9)).toEqual(['C:BEGIN', 'Z:T', '1', '2', 'D:1', 'D:2', 'D:3', 's', 'Z:T']);
    expect(direct.at(-2)).toBe('E:34000');
    expect(pgway).toEqual(direct);
  });
});

// --- Flush and Sync --------------------------------------------------------------------------------

describe('Flush and Sync', () => {
  it('answers Parse/Bind/Describe/Execute/Flush before the Sync, and nothing for a Flush with nothing pending', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(H);
      out.push(`flush:${(await within(a, 200)).got.join(' ')}`);
      a.write(cat(P('', 'SELECT $1::int * 7 AS v'), H));
      out.push(...await upTo(a, '1'));
      a.write(cat(B('', ['6']), D('P', ''), H));
      out.push(...await upTo(a, 'T'));
      a.write(cat(E(), H));
      out.push(...await upTo(a, 'C'));
      a.write(H);
      out.push(`flush:${(await within(a, 100)).got.join(' ')}`);
      a.write(S);
      out.push(...await answers(a));
      return out;
    }));
    expect(direct).toEqual(['flush:', '1', '2', 'T', 'D:42', 'C:SELECT 1', 'flush:', 'Z:I']);
    expect(pgway).toEqual(direct);
  });

  it('answers a Sync with nothing pending, several Syncs in a row, in and out of a transaction block', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(S);
      out.push(...await answers(a));
      a.write(cat(S, S, S));
      out.push(...await answers(a, 3));
      a.write(Q('BEGIN'));
      out.push(...await answers(a));
      a.write(cat(S, H, S));
      out.push(...await answers(a, 2));
      a.write(cat(Q('SELECT 1/0'), S, S));
      out.push(...await answers(a, 3));
      a.write(cat(Q('ROLLBACK'), S));
      out.push(...await answers(a, 2));
      return out;
    }));
    expect(direct).toEqual(['Z:I', 'Z:I', 'Z:I', 'Z:I', 'C:BEGIN', 'Z:T', 'Z:T', 'Z:T', 'E:22012', 'Z:E', 'Z:E', 'Z:E', 'C:ROLLBACK', 'Z:I', 'Z:I']);
    expect(pgway).toEqual(direct);
    expect(await connectionState(gw)).toEqual([CLEAN, CLEAN]);
  });
});

// --- deep pipelines ------------------------------------------------------------------------------------

/** Group i of a deep pipeline: extended groups, simple queries, a named statement; errors where asked. */
function group(i: number, withErrors: boolean): Buffer {
  if (withErrors) {
    if (i % 23 === 5) return cat(P('', 'SELEC 1'), B(''), E(), S); // Parse error
    if (i % 23 === 11) return cat(P('', 'SELECT $1::int'), B('', []), E(), S); // Bind: wrong parameter count
    if (i % 23 === 17) return cat(P('', 'SELECT 10 / $1::int'), B('', ['0']), E(), S); // Execute error
    if (i % 23 === 20) return cat(B('hpe_deep', ['1', '2']), E(), S); // Bind of a named statement: wrong count
  }
  if (i % 10 === 0) return Q(`SELECT ${i} AS q; SELECT 'x${i}'`);
  if (i % 3 === 0) return cat(B('hpe_deep', [String(i)]), E(), S);
  return cat(P('', 'SELECT $1::int * 2, $2::text'), B('', [String(i), `t${i}`]), E(), S);
}

describe('deep pipelines', () => {
  it('answers 150 groups written at once (extended, simple Query, a named statement), from 3 clients at a time', async () => {
    const run = async (t: Target): Promise<string[][]> => withChurn(t, async () => {
      const clients = await Promise.all([raw(t), raw(t), raw(t)]);
      return Promise.all(clients.map(async (r) => {
        r.write(cat(P('hpe_deep', 'SELECT $1::int + 1000'), S));
        const out = await answers(r);
        for (let round = 0; round < 2; round++) {
          r.write(cat(...Array.from({ length: 150 }, (_, i) => group(i, false))));
          out.push(...await answers(r, 150, 10_000));
        }
        return out;
      }));
    });
    const { direct, pgway } = await both(run);
    expect(direct[0]!.filter((s) => s.startsWith('Z')).length).toBe(301);
    expect(pgway).toEqual(direct);
  }, 20_000);

  it('answers pipelines with a Parse error, a Bind with the wrong parameter count and an Execute error at many positions', async () => {
    const run = async (t: Target): Promise<string[][]> => withChurn(t, async () => {
      const clients = await Promise.all([raw(t), raw(t), raw(t)]);
      return Promise.all(clients.map(async (r, k) => {
        r.write(cat(P('hpe_deep', 'SELECT $1::int + 1000'), S));
        const out = await answers(r);
        // Each client starts the error pattern at another offset.
        r.write(cat(...Array.from({ length: 120 }, (_, i) => group(i + k * 7, true))));
        out.push(...await answers(r, 120, 10_000));
        r.write(cat(B('hpe_deep', ['5']), E(), S)); // the named statement still works
        out.push(...await answers(r));
        return out;
      }));
    });
    const { direct, pgway } = await both(run);
    const errors = direct.flat().filter((s) => s.startsWith('E:'));
    expect(new Set(errors)).toEqual(new Set(['E:42601', 'E:08P01', 'E:22012']));
    expect(pgway).toEqual(direct);
  }, 20_000);

  it('skips everything after an error up to the Sync, Query and FunctionCall included, then runs what follows', async () => {
    const int4pl = Number((await adminQuery<{ oid: number }>("SELECT 'int4pl'::regproc::oid AS oid")).rows[0]!.oid);
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      a.write(cat(
        P('', 'SELECT 1'), B(''), E(), P('', 'SELECT 1/0'), B(''), E(), Q('SELECT 2'), F(int4pl, [Buffer.from('1'), Buffer.from('2')], 0, 0),
        P('hpe_after', 'SELECT 3'), S,
        P('', 'SELECT 4'), B(''), E(), S,
        B('hpe_after'), E(), S,
      ));
      return answers(a, 3);
    }));
    // 1/0 is folded when the plan is made: the Bind fails.
    expect(direct).toEqual(['1', '2', 'D:1', 'C:SELECT 1', '1', 'E:22012', 'Z:I', '1', '2', 'D:4', 'C:SELECT 1', 'Z:I', 'E:26000', 'Z:I']);
    expect(pgway).toEqual(direct);
  });

  it('keeps the error rule inside an explicit transaction across several Syncs: E until ROLLBACK', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(cat(Q('BEGIN'), P('', "INSERT INTO hpe_rows VALUES ('in-failed-tx')"), B(''), E(), S));
      out.push(...await answers(a, 2));
      a.write(cat(P('', 'SELECT 1/0'), B(''), E(), S));
      out.push(...await answers(a));
      for (let i = 0; i < 2; i++) {
        await sleep(20);
        a.write(cat(P('', 'SELECT 1'), B(''), E(), S, Q('SELECT 2'), S));
        out.push(...await answers(a, 3));
      }
      a.write(cat(Q('COMMIT'), Q('SELECT 3')));
      out.push(...await answers(a, 2));
      return out;
    }));
    expect(direct).toEqual([
      'C:BEGIN', 'Z:T', '1', '2', 'C:INSERT 0 1', 'Z:T', '1', 'E:22012', 'Z:E',
      'E:25P02', 'Z:E', 'E:25P02', 'Z:E', 'Z:E', 'E:25P02', 'Z:E', 'E:25P02', 'Z:E', 'Z:E',
      'C:ROLLBACK', 'Z:I', 'T', 'D:3', 'C:SELECT 1', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
    expect((await adminQuery("SELECT 1 FROM hpe_rows WHERE note = 'in-failed-tx'")).rowCount).toBe(0);
    expect(await connectionState(gw)).toEqual([CLEAN, CLEAN]);
  });

});

// --- COPY ---------------------------------------------------------------------------------------------

describe('COPY through the extended protocol and simple Query', () => {
  const countOf = async (): Promise<number> => Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM hpe_copy')).rows[0]!.n);

  it('extended COPY FROM STDIN: waits for CopyInResponse, then data in several writes, CopyDone, Sync', async () => {
    await adminQuery('TRUNCATE hpe_copy');
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), S));
      out.push(...await upTo(a, 'G'));
      for (let i = 0; i < 5; i++) {
        a.write(copyData(`${i}\n${i + 100}\n`));
        await sleep(10);
      }
      a.write(cat(COPY_DONE, S));
      out.push(...await answers(a));
      a.write(Q('SELECT count(*) FROM hpe_copy'));
      out.push(...await answers(a));
      return out;
    }));
    expect(direct).toEqual(['1', '2', 'G', 'C:COPY 10', 'Z:I', 'T', 'D:10', 'C:SELECT 1', 'Z:I']);
    expect(pgway).toEqual([...direct.slice(0, 5), 'T', 'D:20', 'C:SELECT 1', 'Z:I']);
  });

  it('extended COPY FROM STDIN ended by CopyFail, then Sync: nothing copied, the next request runs', async () => {
    await adminQuery('TRUNCATE hpe_copy');
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), S));
      out.push(...await upTo(a, 'G'));
      a.write(copyData('1\n2\n'));
      await sleep(20);
      a.write(cat(copyFail('hpe changed its mind'), S, P('', 'SELECT 7'), B(''), E(), S));
      out.push(...await answers(a, 2));
      return out;
    }));
    expect(direct).toEqual(['1', '2', 'G', 'E:57014', 'Z:I', '1', '2', 'D:7', 'C:SELECT 1', 'Z:I']);
    expect(pgway).toEqual(direct);
    expect(await countOf()).toBe(0);
  });

  it('extended COPY TO STDOUT, also with a row-limited Execute, and simple COPY TO STDOUT', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      a.write(cat(
        P('', 'COPY (SELECT g, g * 2 FROM generate_series(1, 3) g) TO STDOUT'), B(''), E(), S,
        P('', 'COPY (SELECT 9) TO STDOUT (FORMAT csv)'), B(''), E('', 1), S,
        Q('COPY (SELECT 1 UNION ALL SELECT 2) TO STDOUT; SELECT 3'),
      ));
      return answers(a, 3);
    }));
    expect(direct.slice(0, 9)).toEqual(['1', '2', 'H', 'd:1\t2\n', 'd:2\t4\n', 'd:3\t6\n', 'c', 'C:COPY 3', 'Z:I']);
    expect(pgway).toEqual(direct);
  });

  it('simple COPY FROM STDIN ended by CopyFail, in and out of a transaction block; COPY inside a committed block', async () => {
    await adminQuery('TRUNCATE hpe_copy');
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(Q('COPY hpe_copy (a) FROM STDIN'));
      out.push(...await upTo(a, 'G'));
      a.write(copyData('1\n'));
      await sleep(10);
      a.write(copyFail('nope'));
      out.push(...await answers(a));
      a.write(Q('BEGIN'));
      out.push(...await answers(a));
      a.write(Q('COPY hpe_copy (a) FROM STDIN'));
      out.push(...await upTo(a, 'G'));
      a.write(cat(copyData('2\n'), COPY_DONE));
      out.push(...await answers(a));
      a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), S));
      out.push(...await upTo(a, 'G'));
      a.write(copyData('3\n'));
      a.write(cat(copyFail('nope again'), S));
      out.push(...await answers(a));
      a.write(Q('ROLLBACK'));
      out.push(...await answers(a));
      a.write(Q('BEGIN; COPY hpe_copy (a) FROM STDIN'));
      out.push(...await upTo(a, 'G'));
      a.write(cat(copyData('4\n5\n'), COPY_DONE));
      out.push(...await answers(a));
      a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), S));
      out.push(...await upTo(a, 'G'));
      a.write(cat(copyData('6\n'), COPY_DONE, S, Q('COMMIT')));
      out.push(...await answers(a, 2));
      return out;
    }));
    expect(direct).toEqual([
      'G', 'E:57014', 'Z:I', 'C:BEGIN', 'Z:T', 'G', 'C:COPY 1', 'Z:T', '1', '2', 'G', 'E:57014', 'Z:E', 'C:ROLLBACK', 'Z:I',
      'C:BEGIN', 'G', 'C:COPY 2', 'Z:T', '1', '2', 'G', 'C:COPY 1', 'Z:T', 'C:COMMIT', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
    expect(await countOf()).toBe(6); // 3 rows from each run
  });

  it('extended COPY FROM STDIN that fails on bad data while the client still streams: the connection is not handed to another client before the Sync', async () => {
    await adminQuery('TRUNCATE hpe_copy');
    const own = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), S));
      out.push(...await upTo(a, 'G'));
      a.write(copyData('not-a-number\n'));
      out.push(...await upTo(a, 'E'));
      // The client has not looked yet: more data, then CopyDone and Sync a moment later (libpq does so).
      a.write(copyData('5\n'));
      await sleep(100);
      // Another client's query meanwhile.
      const b = await raw(t);
      b.write(Q("SELECT 'other client'"));
      out.push('b:', ...await answers(b, 1, 3000).catch((err: Error) => [`no answer (${err.message})`]));
      a.write(cat(COPY_DONE, S));
      out.push('a:', ...await answers(a, 1, 3000).catch((err: Error) => [`no answer (${err.message})`]));
      return out;
    }, own);
    expect(direct).toEqual(['1', '2', 'G', 'E:22P02', 'b:', 'T', 'D:other client', 'C:SELECT 1', 'Z:I', 'a:', 'Z:I']);
    expect(pgway).toEqual(direct);
  }, 15_000);
});

describe('COPY driven by Flush instead of Sync', () => {
  it('extended COPY FROM STDIN and TO STDOUT sent with Flush, a stray Sync during the copy, then Sync', async () => {
    await adminQuery('TRUNCATE hpe_copy');
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), H));
      out.push(...await upTo(a, 'G'));
      a.write(cat(copyData('1\n'), S, H)); // ignored by the server during COPY
      await sleep(30);
      a.write(cat(copyData('2\n'), COPY_DONE, H));
      out.push(...await upTo(a, 'C'));
      a.write(cat(P('', 'COPY (SELECT count(*) FROM hpe_copy) TO STDOUT'), B(''), E(), H));
      out.push(...await upTo(a, 'C'));
      a.write(S);
      out.push(...await answers(a));
      a.write(Q('SELECT count(*) FROM hpe_copy'));
      out.push(...await answers(a));
      return out;
    }));
    expect(direct).toEqual(['1', '2', 'G', 'C:COPY 2', '1', '2', 'H', 'd:2\n', 'c', 'C:COPY 1', 'Z:I', 'T', 'D:2', 'C:SELECT 1', 'Z:I']);
    expect(pgway).toEqual([...direct.slice(0, 7), 'd:4\n', ...direct.slice(8, 12), 'D:4', ...direct.slice(13)]);
  });
});

// --- FunctionCall, empty and comment-only queries, transaction control in a query string -------------

describe('FunctionCall and unusual query strings', () => {
  it('answers a FunctionCall (int4pl by OID) in text and binary, in and out of a transaction block', async () => {
    const int4pl = Number((await adminQuery<{ oid: number }>("SELECT 'int4pl'::regproc::oid AS oid")).rows[0]!.oid);
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(F(int4pl, [Buffer.from('2'), Buffer.from('40')], 0, 0));
      out.push(...await answers(a));
      a.write(cat(F(int4pl, [i32(-5), i32(8)], 1, 1), F(int4pl, [i32(2147483647), i32(1)], 1, 1)));
      out.push(...await answers(a, 2));
      a.write(cat(Q('BEGIN'), F(int4pl, [Buffer.from('1'), Buffer.from('1')], 0, 0), Q('SELECT 5'), F(int4pl, [Buffer.from('x'), Buffer.from('1')], 0, 0)));
      out.push(...await answers(a, 4));
      a.write(cat(F(int4pl, [Buffer.from('1'), Buffer.from('1')], 0, 0), Q('ROLLBACK')));
      out.push(...await answers(a, 2));
      return out;
    }));
    expect(direct).toEqual([
      'V:000000023432', 'Z:I', 'V:0000000400000003', 'Z:I', 'E:22003', 'Z:I',
      'C:BEGIN', 'Z:T', 'V:0000000132', 'Z:T', 'T', 'D:5', 'C:SELECT 1', 'Z:T', 'E:22P02', 'Z:E', 'E:25P02', 'Z:E', 'C:ROLLBACK', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
    expect(await connectionState(gw)).toEqual([CLEAN, CLEAN]);
  });

  it("runs a FunctionCall with the client's SETs laid on, on whichever connection serves it", async () => {
    const oid = Number((await adminQuery<{ oid: number }>("SELECT 'current_setting(text)'::regprocedure::oid AS oid")).rows[0]!.oid);
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(Q("SET application_name = 'hpe_fn'"));
      out.push(...await answers(a));
      for (let i = 0; i < 2; i++) {
        // Another client holds the connection `a` used last, so the next request runs on the other one.
        const holder = t === 'direct' ? undefined : await pgClient(t);
        await holder?.query('BEGIN');
        a.write(F(oid, [Buffer.from('application_name')], 0, 0));
        out.push(...await answers(a));
        await holder?.query('COMMIT');
      }
      return out;
    });
    expect(direct).toEqual(['C:SET', 'Z:I', `V:00000006${Buffer.from('hpe_fn').toString('hex')}`, 'Z:I', `V:00000006${Buffer.from('hpe_fn').toString('hex')}`, 'Z:I']);
    expect(pgway).toEqual(direct);
  });

  it('answers empty and comment-only query strings, simple and extended', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      a.write(cat(
        Q(''), Q('   '), Q('-- only a comment'), Q('/* block */'), Q(';'), Q(';;'), Q('SELECT 1;;'),
        P('', ''), B(''), D('P', ''), E(), S,
        P('', '-- nothing'), D('S', ''), S,
      ));
      return answers(a, 9);
    }));
    expect(direct).toEqual([
      'I', 'Z:I', 'I', 'Z:I', 'I', 'Z:I', 'I', 'Z:I', 'I', 'Z:I', 'I', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'Z:I',
      '1', '2', 'n', 'I', 'Z:I', '1', 't', 'n', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  });

  it('follows transaction control inside multi-statement query strings', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      for (const sql of [
        "SELECT 1; BEGIN; INSERT INTO hpe_rows VALUES ('multi-1')",
        "SELECT 2; COMMIT; SELECT 3",
        "BEGIN; INSERT INTO hpe_rows VALUES ('multi-2'); SELECT 1/0; SELECT 4",
        'SELECT 5',
        'ROLLBACK; SELECT 6',
        "INSERT INTO hpe_rows VALUES ('multi-3'); SELECT 1/0",
        'BEGIN; SELECT 7; COMMIT; BEGIN',
        'COMMIT',
      ]) {
        a.write(Q(sql));
        out.push(...await answers(a));
        await sleep(10);
      }
      return out;
    }));
    expect(direct.filter((s) => s.startsWith('Z:'))).toEqual(['Z:T', 'Z:I', 'Z:E', 'Z:E', 'Z:I', 'Z:I', 'Z:T', 'Z:I']);
    expect(pgway).toEqual(direct);
    const notes = (await adminQuery<{ note: string }>("SELECT note FROM hpe_rows WHERE note LIKE 'multi-%' ORDER BY note")).rows.map((r) => r.note);
    expect(notes).toEqual(['multi-1', 'multi-1']); // once per run
    await adminQuery("DELETE FROM hpe_rows WHERE note LIKE 'multi-%'");
  });
});

// --- frames split and coalesced, big messages ----------------------------------------------------------

/** A mixed request sequence; the named statement makes pgway rewrite frames it received in pieces. */
function mixedRequests(tag: string): Buffer {
  return cat(
    P('hpe_split', 'SELECT $1::text || $2::text AS v'), B('hpe_split', ['ab', tag]), D('P', ''), E(), S,
    Q("SELECT 1 AS one; SELECT 'two'"),
    P('', 'SELECT g FROM generate_series(1, 3) g'), B('', [], 'hpe_sp'), E('hpe_sp', 2), H,
  );
}

async function writeInPieces(r: RawClient, bytes: Buffer, sizes: number[], delayMs: number): Promise<void> {
  let pos = 0;
  for (let i = 0; pos < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    r.write(bytes.subarray(pos, pos + n));
    pos += n;
    await sleep(delayMs);
  }
}

describe('frames split across writes', () => {
  it('answers requests written one byte at a time', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      await writeInPieces(a, mixedRequests('1b'), [1], 1);
      out.push(...await answers(a, 2), ...await upTo(a, 's'));
      await writeInPieces(a, cat(E('hpe_sp', 0), S, B('hpe_split', ['x', 'y']), E(), S), [1], 1);
      out.push(...await answers(a, 2));
      return out;
    }));
    expect(direct).toEqual([
      '1', '2', 'T', 'D:ab1b', 'C:SELECT 1', 'Z:I', 'T', 'D:1', 'C:SELECT 1', 'T', 'D:two', 'C:SELECT 1', 'Z:I',
      '1', '2', 'D:1', 'D:2', 's', 'D:3', 'C:SELECT 1', 'Z:I', '2', 'D:xy', 'C:SELECT 1', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  }, 20_000);

  it('answers requests written in pieces that straddle frame boundaries, from 3 clients at a time', async () => {
    const run = async (t: Target): Promise<string[][]> => withChurn(t, async () => {
      const clients = await Promise.all([raw(t), raw(t), raw(t)]);
      return Promise.all(clients.map(async (r, k) => {
        const out: string[] = [];
        const sizes = [[2, 3, 5, 7, 11, 13], [4, 1, 9, 6], [17, 3, 8]][k]!;
        for (let round = 0; round < 3; round++) {
          await writeInPieces(r, cat(mixedRequests(`${k}.${round}`), E('hpe_sp', 0), S, C('S', 'hpe_split'), S), sizes, 0);
          out.push(...await answers(r, 4));
        }
        return out;
      }));
    });
    const { direct, pgway } = await both(run);
    expect(direct[2]!.slice(0, 4)).toEqual(['1', '2', 'T', 'D:ab2.0']);
    expect(pgway).toEqual(direct);
  }, 20_000);

  it('passes a 5 MB Query, a 5 MB Bind parameter (named and unnamed statement) and a 9.6 MB result', async () => {
    const big = 'hpe'.repeat(1_700_000); // 5.1 MB
    const run = async (t: Target): Promise<string[]> => withChurn(t, async () => {
      const a = await raw(t);
      const out: string[] = [];
      a.write(Q(`SELECT length('${big}') AS n, md5('${big}') = '${createHash('md5').update(big).digest('hex')}' AS same`));
      out.push(...await answers(a, 1, 10_000));
      a.write(cat(P('hpe_bigp', 'SELECT length($1::text), md5($1::text)'), B('hpe_bigp', [big]), E(), S, P('', 'SELECT length($1::text)'), B('', [big]), E(), S));
      out.push(...await answers(a, 2, 10_000));
      a.write(cat(P('', 'SELECT g, repeat(md5(g::text), 100000) FROM generate_series(1, 3) g'), B(''), E(), S));
      const { message, before } = await a.readUntil('Z', 10_000);
      const hash = createHash('md5');
      for (const m of before) if (m.type === 'D') hash.update(m.body);
      out.push(`${before.filter((m) => m.type === 'D').length} rows`, hash.digest('hex'), summary(message));
      return out;
    });
    const { direct, pgway } = await both(run);
    expect(direct[1]).toBe('D:5100000,t');
    expect(pgway).toEqual(direct);
  }, 20_000);
});

// --- Terminate with a request in flight -------------------------------------------------------------

describe('Terminate while a request is in flight', () => {
  it('after Sync: the request runs and commits, the client is closed, the connection comes back clean', async () => {
    await adminQuery("DELETE FROM hpe_rows WHERE note LIKE 'term-%'");
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(cat(P('', "INSERT INTO hpe_rows SELECT 'term-sync' FROM pg_sleep(0.2)"), B(''), E(), S, X));
      const got = await within(a, 2000);
      return { ...got, committed: (await adminQuery("SELECT 1 FROM hpe_rows WHERE note = 'term-sync'")).rowCount };
    });
    expect(direct).toEqual({ got: ['1', '2', 'C:INSERT 0 1', 'Z:I'], closed: true, committed: 1 });
    expect(pgway).toEqual({ ...direct, committed: 2 });
    expect(await connectionState(gw)).toEqual([CLEAN, CLEAN]);
  });

  it('after a simple Query in an open transaction: rolled back, closed, the connection comes back clean', async () => {
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(Q("BEGIN; INSERT INTO hpe_rows VALUES ('term-tx')"));
      await answers(a);
      a.write(cat(Q('SELECT pg_sleep(0.2)'), X));
      const got = await within(a, 2000);
      await sleep(200);
      return { ...got, committed: (await adminQuery("SELECT 1 FROM hpe_rows WHERE note = 'term-tx'")).rowCount };
    });
    expect(direct).toEqual({ got: ['T', 'D:', 'C:SELECT 1', 'Z:T'], closed: true, committed: 0 });
    expect(pgway).toEqual(direct);
    expect(await connectionState(gw)).toEqual([CLEAN, CLEAN]);
  });

  it('after Execute and Flush without Sync: the client is closed and nothing is committed', async () => {
    const own = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(cat(P('', "INSERT INTO hpe_rows VALUES ('term-flush')"), B(''), E(), H, X));
      const got = await within(a, 2000);
      a.destroy();
      await sleep(200);
      return { ...got, committed: (await adminQuery("SELECT 1 FROM hpe_rows WHERE note = 'term-flush'")).rowCount };
    }, own);
    expect(direct).toEqual({ got: ['1', '2', 'C:INSERT 0 1'], closed: true, committed: 0 });
    expect(pgway).toEqual(direct);
  }, 15_000);

  it('after Execute and Flush, Terminate sent once the answer was read: the client is closed', async () => {
    const own = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(cat(P('', 'SELECT 1'), B(''), E(), H));
      const answered = await upTo(a, 'C');
      a.write(X);
      const { got, closed } = await within(a, 2000);
      return { answered, after: got, closed };
    }, own);
    expect(direct).toEqual({ answered: ['1', '2', 'D:1', 'C:SELECT 1'], after: [], closed: true });
    expect(pgway).toEqual(direct);
  }, 15_000);

  it('after Parse/Bind/Execute without Flush or Sync, inside a transaction block: the client is closed, nothing committed', async () => {
    const own = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(Q('BEGIN'));
      await answers(a);
      a.write(cat(P('', "INSERT INTO hpe_rows VALUES ('term-nosync')"), B(''), E()));
      await sleep(100);
      a.write(X);
      const { closed } = await within(a, 2000);
      a.destroy();
      await sleep(200);
      return { closed, committed: (await adminQuery("SELECT 1 FROM hpe_rows WHERE note = 'term-nosync'")).rowCount };
    }, own);
    expect(direct).toEqual({ closed: true, committed: 0 });
    expect(pgway).toEqual(direct);
  }, 15_000);
});

// --- the unnamed statement across requests ------------------------------------------------------------

describe('the unnamed statement in a later request', () => {
  it("a Bind of the unnamed statement from a client that never parsed one does not run another client's statement", async () => {
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(cat(P('', "SELECT 'secret of client a' AS v"), S));
      const parsed = await answers(a);
      // Client b, next on that server connection (the pool hands the last one given back first).
      const b = await raw(t);
      b.write(cat(D('S', ''), S, B(''), E(), S));
      return [...parsed, '|', ...await answers(b, 2)];
    });
    expect(direct).toEqual(['1', 'Z:I', '|', 'E:26000', 'Z:I', 'E:26000', 'Z:I']);
    expect(pgway).toEqual(direct);
  });

});

// --- a Parse the server skipped, and later groups of the same write ----------------------------------

describe('a Parse skipped after an error, with later groups of the same write', () => {
  it("a statement pgway prepares for the client, skipped after an error, is prepared again for the write's next group", async () => {
    const g = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const [holder, other, a] = [await raw(t), await raw(t), await raw(t)];
      holder.write(Q('BEGIN'));
      const out = await answers(holder);
      // Prepared while holder keeps the other connection: only this connection has it.
      a.write(cat(P('hpe_skip', 'SELECT $1::int * 10 AS v'), S));
      out.push(...await answers(a));
      other.write(Q('BEGIN'));
      out.push(...await answers(other));
      holder.write(Q('COMMIT'));
      out.push(...await answers(holder));
      // The connection serving this write lacks hpe_skip: preparing it comes after the error.
      a.write(cat(
        P('', 'SELECT 1/0'), B(''), E(), B('hpe_skip', ['1']), E(), S,
        B('hpe_skip', ['2']), E(), S,
        B('hpe_skip', ['3']), E(), S,
      ));
      out.push(...await answers(a, 3));
      other.write(Q('COMMIT'));
      out.push(...await answers(other));
      a.write(cat(B('hpe_skip', ['4']), E(), S));
      out.push(...await answers(a));
      return out;
    }, g);
    expect(direct).toEqual([
      'C:BEGIN', 'Z:T', '1', 'Z:I', 'C:BEGIN', 'Z:T', 'C:COMMIT', 'Z:I',
      '1', 'E:22012', 'Z:I', '2', 'D:20', 'C:SELECT 1', 'Z:I', '2', 'D:30', 'C:SELECT 1', 'Z:I',
      'C:COMMIT', 'Z:I', '2', 'D:40', 'C:SELECT 1', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  });

  it("the client's own named Parse skipped after an error: a later group may parse the name again, and a Bind of it alone fails", async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      a.write(cat(
        P('', 'SELECT 1/0'), B(''), E(), P('hpe_skip2', 'SELECT $1::int + 1 AS v'), S,
        B('hpe_skip2', ['1']), E(), S,
        P('hpe_skip2', 'SELECT $1::int + 2 AS v'), B('hpe_skip2', ['1']), E(), S,
        P('', 'SELECT 1/0'), B(''), E(), C('S', 'hpe_skip2'), S,
        B('hpe_skip2', ['2']), E(), S,
      ));
      const out = await answers(a, 5);
      a.write(cat(B('hpe_skip2', ['3']), E(), C('S', 'hpe_skip2'), S));
      out.push(...await answers(a));
      return out;
    }));
    expect(direct).toEqual([
      '1', 'E:22012', 'Z:I', 'E:26000', 'Z:I', '1', '2', 'D:3', 'C:SELECT 1', 'Z:I',
      '1', 'E:22012', 'Z:I', '2', 'D:4', 'C:SELECT 1', 'Z:I', '2', 'D:5', 'C:SELECT 1', '3', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  });

  it('a group written while an earlier one whose Parse may be skipped is still running waits for its answer', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      a.write(cat(P('', 'SELECT pg_sleep(0.2)'), B(''), E(), P('', 'SELECT 1/0'), B(''), E(), P('hpe_skip3', 'SELECT $1::int + 1 AS v'), S));
      await sleep(50); // a write of its own, while the first group still runs
      a.write(cat(P('hpe_skip3', 'SELECT $1::int + 3 AS v'), B('hpe_skip3', ['1']), E(), C('S', 'hpe_skip3'), S));
      return answers(a, 2);
    }));
    expect(direct).toEqual(['1', '2', 'D:', 'C:SELECT 1', '1', 'E:22012', 'Z:I', '1', '2', 'D:4', 'C:SELECT 1', '3', 'Z:I']);
    expect(pgway).toEqual(direct);
  });
});

// --- a named Parse of a statement the connection already has, inside a transaction block ------------

describe('a named Parse of a statement the connection already has, in a transaction block', () => {
  it('is refused with 25P02 in an aborted block, and works when a pipelined ROLLBACK TO ends the abort first', async () => {
    const g = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const [holder, a] = [await raw(t), await raw(t)];
      holder.write(Q('BEGIN'));
      const out = await answers(holder);
      // Client a prepares it where holder's connection is not: every later Parse finds it there.
      a.write(cat(P('hpe_fp', 'SELECT $1::int * 3 AS v'), S));
      out.push(...await answers(a));
      a.write(cat(Q('BEGIN; SAVEPOINT s'), Q('SELECT 1/0')));
      out.push(...await answers(a, 2));
      a.write(cat(P('hpe_fp2', 'SELECT $1::int * 3 AS v'), S));
      out.push(...await answers(a));
      a.write(cat(Q('ROLLBACK TO s'), P('hpe_fp2', 'SELECT $1::int * 3 AS v'), B('hpe_fp2', ['5']), E(), S));
      out.push(...await answers(a, 2));
      a.write(cat(Q('SELECT 1/0'), Q('ROLLBACK TO s'), P('hpe_fp3', 'SELECT $1::int * 3 AS v'), B('hpe_fp3', ['6']), E(), S, Q('COMMIT')));
      out.push(...await answers(a, 4));
      holder.write(Q('COMMIT'));
      out.push(...await answers(holder));
      return out;
    }, g);
    expect(direct).toEqual([
      'C:BEGIN', 'Z:T', '1', 'Z:I', 'C:BEGIN', 'C:SAVEPOINT', 'Z:T', 'E:22012', 'Z:E', 'E:25P02', 'Z:E',
      'C:ROLLBACK', 'Z:T', '1', '2', 'D:15', 'C:SELECT 1', 'Z:T',
      'E:22012', 'Z:E', 'C:ROLLBACK', 'Z:T', '1', '2', 'D:18', 'C:SELECT 1', 'Z:T', 'C:COMMIT', 'Z:I', 'C:COMMIT', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  });
});

// --- Describe and Close of names that do not exist; a name closed and reused -------------------------

describe('Describe and Close of what does not exist, and a closed name reused', () => {
  it('answers Describe of a missing portal/statement with 34000/26000 and Close of missing ones with CloseComplete', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const a = await raw(t);
      a.write(cat(
        D('P', 'hpe_nope'), S, D('S', 'hpe_nope'), S, C('S', 'hpe_nope'), C('P', 'hpe_nope'), C('S', ''), C('P', ''), S,
        D('P', ''), S, D('S', ''), S,
        P('hpe_real', 'SELECT 1'), S, C('S', 'hpe_real'), C('S', 'hpe_real'), D('S', 'hpe_real'), S, B('hpe_real'), S,
      ));
      return answers(a, 8);
    }));
    expect(direct).toEqual([
      'E:34000', 'Z:I', 'E:26000', 'Z:I', '3', '3', '3', '3', 'Z:I', 'E:34000', 'Z:I', 'E:26000', 'Z:I',
      '1', 'Z:I', '3', '3', 'E:26000', 'Z:I', 'E:26000', 'Z:I',
    ]);
    expect(pgway).toEqual(direct);
  });

  it('Close of a named statement in one request, the name reused for another query in later ones, while rotating', async () => {
    const { direct, pgway } = await both(async (t) => withChurn(t, async () => {
      const [a, b, c] = [await raw(t), await raw(t), await raw(t)];
      const out: string[] = [];
      for (const r of [a, b, c]) r.write(cat(P('hpe_reuse', 'SELECT $1::int AS first'), S));
      for (const r of [a, b, c]) out.push(...await answers(r));
      a.write(cat(C('S', 'hpe_reuse'), S));
      out.push(...await answers(a));
      await sleep(20);
      a.write(cat(P('hpe_reuse', "SELECT 'second ' || $1::text AS second"), S));
      out.push(...await answers(a));
      for (let i = 0; i < 3; i++) {
        for (const r of [a, b, c]) r.write(cat(B('hpe_reuse', [String(i)]), D('S', 'hpe_reuse'), E(), S));
        for (const r of [a, b, c]) out.push(...await answers(r));
        await sleep(10);
      }
      b.write(cat(C('S', 'hpe_reuse'), D('S', 'hpe_reuse'), S, P('hpe_reuse', 'SELECT 3 AS third'), B('hpe_reuse'), E(), S));
      out.push(...await answers(b, 2));
      return out;
    }));
    expect(direct.slice(0, 5)).toEqual(['1', 'Z:I', '1', 'Z:I', '1']);
    expect(direct).toContain('D:second 2');
    expect(pgway).toEqual(direct);
  });
});

// --- more Terminate cases ---------------------------------------------------------------------------

describe('Terminate, more cases', () => {
  it('sent while waiting for a server connection: the request still runs and commits, then the client is closed', async () => {
    await adminQuery("DELETE FROM hpe_rows WHERE note = 'term-wait'");
    const { direct, pgway } = await both(async (t) => {
      const holders = t === 'direct' ? [] : [await pgClient(t), await pgClient(t)];
      for (const h of holders) await h.query('BEGIN');
      const a = await raw(t);
      a.write(cat(P('', "INSERT INTO hpe_rows VALUES ('term-wait')"), B(''), E(), S, X));
      await sleep(300);
      for (const h of holders) await h.query('COMMIT');
      const got = await within(a, 2000);
      return { ...got, committed: (await adminQuery("SELECT 1 FROM hpe_rows WHERE note = 'term-wait'")).rowCount! > 0 };
    });
    expect(direct).toEqual({ got: ['1', '2', 'C:INSERT 0 1', 'Z:I'], closed: true, committed: true });
    expect(pgway).toEqual(direct);
  });

  it('sent during COPY FROM STDIN (simple Query): answered as PostgreSQL answers it, nothing copied', async () => {
    await adminQuery('TRUNCATE hpe_copy');
    const own = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(Q('COPY hpe_copy (a) FROM STDIN'));
      const out = await upTo(a, 'G');
      a.write(copyData('1\n'));
      await sleep(50);
      a.write(X);
      const { got, closed } = await within(a, 1500);
      a.destroy();
      await sleep(200);
      return [...out, ...got, closed ? 'closed' : 'open'];
    }, own);
    // PostgreSQL: ERROR 08P01 "unexpected message type 0x58 during COPY from stdin", then FATAL 08P01, then it closes.
    expect(direct).toEqual(['G', 'E:08P01', 'E:08P01', 'closed']);
    expect(pgway).toEqual(direct);
    expect(Number((await adminQuery<{ n: string }>('SELECT count(*) AS n FROM hpe_copy')).rows[0]!.n)).toBe(0);
  }, 15_000);
});

// --- the pool after a server connection was handed out in the middle of a request ----------------------

describe('the pool after a client left a connection that never answered', () => {
  it('gets both connections back once the clients involved have left', async () => {
    const own = await ownGateway(1000);
    // The failed extended COPY above: its connection reaches another client while the server still
    // discards everything up to a Sync; that client gives up and leaves.
    const a = await raw(own);
    a.write(cat(P('', 'COPY hpe_copy (a) FROM STDIN'), B(''), E(), S));
    await upTo(a, 'G');
    a.write(copyData('not-a-number\n'));
    await upTo(a, 'E');
    a.write(copyData('5\n'));
    await sleep(100);
    const b = await raw(own);
    b.write(Q('SELECT 1'));
    await within(b, 1000);
    b.destroy();
    a.write(cat(COPY_DONE, S));
    await within(a, 500);
    a.destroy();
    await sleep(2000); // server_connect_timeout_ms is 1 s on this gateway
    // Two transactions at once need both connections of the pool.
    const [c, d] = [await pgClient(own), await pgClient(own)];
    const result = await orTimeout((async () => {
      await c.query('BEGIN');
      await d.query('BEGIN');
      await Promise.all([c.query('COMMIT'), d.query('COMMIT')]);
      return 'both connections served';
    })().catch((err: Error) => `${(err as { code?: string }).code}: ${err.message}`), 4000);
    expect(result).toBe('both connections served');
  }, 15_000);
});

// --- a client slow to read ------------------------------------------------------------------------------

describe('a server connection given back after a response pgway forwarded while corked', () => {
  it("is read again by the next client: a 40 KB result ahead of a ParseComplete pgway answers itself", async () => {
    const own = await ownGateway();
    const text = "SELECT repeat('y', 40000) AS v";
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.write(cat(P('hpe_pk', text), S)); // prepared on the connection a uses
      const out = await answers(a);
      for (let i = 0; i < 4; i++) {
        // The 40 KB result, then the same text under a new name: pgway answers that Parse itself.
        a.write(cat(B('hpe_pk'), E(), S, P(`hpe_pk${i}`, text), S));
        const { before } = await a.readUntil('Z');
        const { message, before: parsed } = await a.readUntil('Z');
        out.push(`${before.map((m) => m.type).join('')}+${parsed.map((m) => m.type).join('')}${summary(message)}`);
        // The next client on that connection (the pool hands the last one given back first).
        const b = await raw(t);
        b.write(Q(`SELECT ${i}`));
        out.push(...await answers(b, 1, 1500).catch((err: Error) => [`no answer (${err.message})`]));
        b.destroy();
      }
      return out;
    }, own);
    expect(direct.slice(0, 7)).toEqual(['1', 'Z:I', '2DC+1Z:I', 'T', 'D:0', 'C:SELECT 1', 'Z:I']);
    expect(pgway).toEqual(direct);
  }, 20_000);
});

describe('a client slow to read a large result', () => {
  it('does not keep the next client on its server connection waiting once its transaction ended', async () => {
    const own = await ownGateway();
    const { direct, pgway } = await both(async (t) => {
      const a = await raw(t);
      a.socket.pause(); // reads nothing for now
      a.write(Q("SELECT repeat('x', 1000) FROM generate_series(1, 1000)")); // 1 MB: fits in the socket buffers
      await sleep(500);
      const b = await raw(t);
      b.write(Q("SELECT 'next client'"));
      const got = await answers(b, 1, 3000).catch((err: Error) => [`no answer (${err.message})`]);
      a.socket.resume();
      const { before, message } = await a.readUntil('Z', 10_000);
      return [...got, `${before.filter((m) => m.type === 'D').length} rows`, summary(message)];
    }, own);
    expect(direct).toEqual(['T', 'D:next client', 'C:SELECT 1', 'Z:I', '1000 rows', 'Z:I']);
    expect(pgway).toEqual(direct);
  }, 15_000);
});
