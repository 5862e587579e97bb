// Found by review round 21, and fixed: statement mode writes a request only once the one before it is answered (oneAtATime),
// "so that a transaction block one opens is refused before anything behind it runs" (README). The
// writer skips that wait inside an extended-protocol group (inGroup), and bd817c5 keeps the group
// open at a CopyDone written after ANY Execute, up to the next Sync, whether a COPY began or not.
// A client whose extended COPY fails at its Execute (a missing table: PostgreSQL heeds the Sync,
// and ignores the CopyData and CopyDone sent after it) or that sends a stray CopyDone after a
// SELECT, then pipelines BEGIN and a statement: both go to the server at once, and the statement
// behind BEGIN runs inside the block before pgway refuses it: a sequence advances, and the client
// reads the statement's row and a ReadyForQuery (what it reads: 12DCZ CZ TDCZ Z, the control 12DCZ CZ).
// Without the CopyDone pgway holds the second Query back, as documented.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery } from './harness/lab.js';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { rawTargets, P, B, E, S, Q, copyData, COPY_DONE, cat } from './helpers/wire-script.js';
import type { RawClient } from './helpers/raw-client.js';

const { raw } = rawTargets();
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
  await adminQuery('DROP SEQUENCE IF EXISTS rvd_seq');
  await adminQuery('CREATE SEQUENCE rvd_seq');
  await adminQuery('GRANT ALL ON rvd_seq TO app');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP SEQUENCE IF EXISTS rvd_seq');
});

const seq = async (): Promise<number> =>
  Number((await adminQuery('SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS v FROM rvd_seq')).rows[0]!.v);

/** Everything the client reads until its connection ends or 3 s pass. */
async function drain(c: RawClient): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      const { message, before } = await c.readUntil('Z', 3000);
      chunks.push(Buffer.from([...before, message].map((m) => m.type).join('')));
    }
  } catch {
    return Buffer.concat(chunks).toString();
  }
}

async function run(stray: Buffer): Promise<{ advanced: number; read: string }> {
  const before = await seq();
  const y = await raw(gw);
  y.write(cat(stray, Q('BEGIN'), Q("SELECT nextval('rvd_seq')"), S));
  const read = await drain(y);
  if (process.env.RVD_SHOW) console.log(JSON.stringify(read));
  return { advanced: (await seq()) - before, read };
}

describe('statement mode: BEGIN pipelined behind a CopyDone that ended no COPY', () => {
  it('control, no CopyDone: the statement behind BEGIN never runs', async () => {
    expect((await run(cat(P('', 'SELECT 1'), B(''), E(''), S))).advanced).toBe(0);
  });
  it('a stray CopyDone after a SELECT: the same', async () => {
    expect((await run(cat(P('', 'SELECT 1'), B(''), E(''), S, COPY_DONE))).advanced).toBe(0);
  });
  it('an extended COPY that fails at its Execute, its data and CopyDone: the same', async () => {
    expect((await run(cat(P('', 'COPY rvd_missing FROM STDIN'), B(''), E(''), S, copyData('1\n'), COPY_DONE))).advanced).toBe(0);
  });
});
