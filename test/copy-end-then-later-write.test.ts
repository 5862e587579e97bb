// Found by review round 23 A, and fixed: an extended-protocol COPY FROM STDIN whose data and CopyDone the client
// sends in the same write as the Execute and its Sync (postgres.js, libpq-style), while the server
// is still busy with an earlier statement, so that it has not yet said the COPY began. The client
// then sends, in a LATER write, a Query that names a SQL-level statement (PREPARE). pgway holds that
// Query back until the answers owed are in (RequestWriter.write, Query case: namesSqlStatement and
// expected.length > 0) and asks for them with flushAnswers(), which writes no Flush because the
// client's Sync made pgway think the group was synced (unsynced false). The server then begins the
// COPY (ignoring that Sync: the group goes on), takes the data and the CopyDone and keeps the
// COPY's CommandComplete until asked (no Sync, no Flush). pgway never asks: the client hangs.
// PostgreSQL directly answers the Query (with the COPY's CommandComplete before it).
// The same with the first message of the later write a Bind of the unnamed statement (the COPY's):
// it waits for that Parse's answer (UnnamedStatement.mustWait), and no Flush asks for it. Once a
// further request is pipelined behind, pgway stops reading the client (RequestFlow.pump, clientHeld):
// when the client then gives up and disconnects, pgway never sees it, and the server connection stays
// lent, in the COPY's open transaction (its locks held) for good: every other client of the pool
// waits for a connection until query_wait_timeout.
// The same in statement mode with ANY Query in the later write: oneAtATime holds it back (the request
// before it is unanswered), and the same flushAnswers() writes no Flush: the client hangs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, rawTargets, type Target, P, B, E, S, Q, copyData, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
scratchTable('copy_end_later');

let runs = 0;

async function run(t: Target, second: (n: number) => Buffer): Promise<string[][]> {
  const n = runs++;
  const out: string[][] = [];
  const y = await raw(t);
  // A slow statement first (its own group), then the COPY with its (ignored) Sync, data and end.
  y.write(cat(
    P('', 'SELECT pg_sleep(0.5)'), B(''), E(''), S,
    P('', 'COPY copy_end_later (a) FROM STDIN'), B(''), E(''), S,
    copyData('1\n'), COPY_DONE,
  ));
  // Later, before the server said the COPY began.
  await new Promise((r) => setTimeout(r, 150));
  y.write(second(n));
  out.push(await answers(y, 2, 4000).catch((e: Error) => [`timeout: ${e.message}`]));
  return out;
}

const PREPARE = (n: number) => Q(`PREPARE copy_end_later_p${n} AS SELECT ${n}`);

describe('an extended COPY ended in the Execute\'s write, then a Query naming a SQL-level statement in a later write', () => {
  it('direct: the sleep, then the COPY and the PREPARE are answered', async () => {
    const d = await run('direct', PREPARE);
    expect(d[0]!.slice(0, 6)).toEqual(['1', '2', 'D:', 'C:SELECT 1', 'Z:I', '1']);
    expect(d[0]).toContain('C:COPY 1');
    expect(d[0]).toContain('C:PREPARE');
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, no hang`, async () => {
      const p = await run(gws[k]!, PREPARE);
      const d = await run('direct', PREPARE);
      expect(p).toEqual(d);
    });
  }
});

describe('the later write binds the COPY\'s unnamed statement; the client gives up and leaves', () => {
  it('through pgway: the next client of the pool is served', async () => {
    const t = gws[0]!;
    const y = await raw(t);
    try {
      y.write(cat(
        P('', 'SELECT pg_sleep(0.5)'), B(''), E(''),
        P('', 'COPY copy_end_later (a) FROM STDIN'), B(''), E(''), S,
        copyData('1\n'), COPY_DONE,
      ));
      await new Promise((r) => setTimeout(r, 150));
      y.write(cat(B(''), E(''), S));
      await new Promise((r) => setTimeout(r, 20));
      y.write(cat(P('', 'SELECT 2'), B(''), E(''), S));
      // PostgreSQL answers both (the COPY's statement runs again and waits for data in the first).
      await new Promise((r) => setTimeout(r, 1500));
      y.socket.destroy();
      await new Promise((r) => setTimeout(r, 500));
      const z = await raw(t);
      z.write(Q('SELECT 1 AS v'));
      expect(await answers(z, 1, 5000).catch((e: Error) => [`timeout: ${e.message}`])).toEqual(['T', 'D:1', 'C:SELECT 1', 'Z:I']);
    } finally {
      // What the stuck connection holds would keep the table from being dropped.
      await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY copy_end_later%'");
    }
  });
});

describe('statement mode: the same COPY in one group behind a slow statement, then any Query in a later write', () => {
  let st: TestGateway;
  beforeAll(async () => {
    st = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
  });
  afterAll(async () => {
    await st?.stop();
  });
  async function runOneGroup(t: Target): Promise<string[]> {
    const y = await raw(t);
    y.write(cat(
      P('', 'SELECT pg_sleep(0.5)'), B(''), E(''),
      P('', 'COPY copy_end_later (a) FROM STDIN'), B(''), E(''), S,
      copyData('1\n'), COPY_DONE,
    ));
    await new Promise((r) => setTimeout(r, 150));
    y.write(Q('SELECT 2 AS v'));
    return answers(y, 1, 4000).catch((e: Error) => [`timeout: ${e.message}`]);
  }
  it('direct: the Query is answered', async () => {
    expect(await runOneGroup('direct')).toContain('D:2');
  });
  it('through pgway: the same, no hang', async () => {
    expect(await runOneGroup(st)).toEqual(await runOneGroup('direct'));
  });
});
