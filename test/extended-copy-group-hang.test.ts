// Found by review round 19 (A), and fixed: after an extended-protocol COPY FROM STDIN (Parse, Bind, Execute, Sync, the
// data, CopyDone), the client goes on in the same group (the server ignored that Sync: it came
// during the COPY) with messages that pgway's placement must see answered first: a Close and a Parse
// of a name the client uses (GroupPlacement.placeForGroup: 'wait' while a Parse of a name in use is
// unanswered), or an unnamed Parse of an EXECUTE of a SQL-level statement ('wait' while the server
// is busy). pgway took the ignored Sync to end the group (RequestWriter.write: inGroup = false), so it
// places as for a new group, and the server stays "busy" (unsynced) until the client's Sync, which
// pgway holds behind the waiting message: nothing is ever written again. The client never gets
// its answers (not even the COPY's CommandComplete), and with a pool of 1 every other client waits
// until query_wait_timeout. PostgreSQL answers everything.
//
// The second part, found by review round 20, and fixed: the same with the COPY's data and what
// follows it sent in the SAME write as the Parse/Bind/Execute/Sync that begin the COPY (a client
// that does not wait for CopyInResponse). The ignored Sync still ended the group for the writer,
// which read server.groupOpen only at the start of a write, when no COPY had begun.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, upTo, rawTargets, type Target, P, B, E, C, S, Q, copyData, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

let statementGw: TestGateway;

scratchTable('rv_a_copy2');
beforeAll(async () => {
  statementGw = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await statementGw?.stop();
});

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

/**
 * `before`: y's request before the COPY; `after`: what y sends after its CopyDone, up to its Sync.
 * `oneWrite`: the COPY, its data and `after` in one write, before the server said the COPY began
 * (review round 20); otherwise y waits for the CopyInResponse.
 */
async function run(t: Target, before: Buffer, after: Buffer, oneWrite = false): Promise<string[][]> {
  const out: string[][] = [];
  const name = `rv_c${runs++}`;
  const y = await raw(t);
  y.write(before);
  out.push(await read(y));
  const copy = cat(P(name, 'COPY rv_a_copy2 (a) FROM STDIN'), B(name), E(''), S);
  const rest = cat(copyData('1\n'), COPY_DONE, after);
  if (oneWrite) {
    y.write(cat(copy, rest));
  } else {
    y.write(copy);
    out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    y.write(rest);
  }
  out.push(await read(y));
  // Another client, on the pool's only server connection.
  const x = await raw(t);
  x.write(Q('SELECT 42'));
  out.push(await read(x));
  return out;
}

const CLOSE_PARSE: [Buffer, Buffer] = [cat(P('rv_n', 'SELECT 1'), S), cat(C('S', 'rv_n'), P('rv_n', 'SELECT 2'), B('rv_n'), E(''), S)];
const EXECUTE_UNNAMED: [Buffer, Buffer] = [Q("PREPARE rv_ap AS SELECT 'p' AS v"), cat(P('', 'EXECUTE rv_ap'), B(''), E(''), S)];

describe('after an extended-protocol COPY, the same group goes on', () => {
  it('direct: a Close and a Parse of a name in use, then Bind/Execute/Sync: all answered', async () => {
    expect(await run('direct', ...CLOSE_PARSE)).toEqual([
      ['1', 'Z:I'],
      ['1', '2', 'G'],
      ['C:COPY 1', '3', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway: the same, no hang (the next client is served too)', async () => {
    expect(await run(gws[0]!, ...CLOSE_PARSE)).toEqual(await run('direct', ...CLOSE_PARSE));
  });

  it('direct: an unnamed Parse of EXECUTE of a SQL-level statement: answered', async () => {
    expect(await run('direct', ...EXECUTE_UNNAMED)).toEqual([
      ['C:PREPARE', 'Z:I'],
      ['1', '2', 'G'],
      ['C:COPY 1', '1', '2', 'D:p', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway: answered (or refused, README: 0A000), no hang', async () => {
    const out = await run(gws[0]!, ...EXECUTE_UNNAMED);
    expect(out[2]!.some((m) => m.startsWith('timeout'))).toBe(false);
    expect(out[3]).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });

  // Statement mode: a Query there is taken for the next request (RequestWriter.oneAtATime: !inGroup after
  // the ignored Sync), which waits for the COPY's group to be answered, which waits for the Sync behind the Query.
  it('direct: a simple Query after the CopyDone, then the Sync: answered', async () => {
    expect(await run('direct', cat(P('rv_s1', 'SELECT 1'), S), cat(Q('SELECT 7'), S))).toEqual([
      ['1', 'Z:I'],
      ['1', '2', 'G'],
      ['C:COPY 1', 'T', 'D:7', 'C:SELECT 1', 'Z:T'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway (statement mode): answered, no hang', async () => {
    const out = await run(statementGw, cat(P('rv_s1', 'SELECT 1'), S), cat(Q('SELECT 7'), S));
    expect(out[2]!.some((m) => m.startsWith('timeout'))).toBe(false);
    expect(out[3]).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
});

// The second part, found by review round 20, and fixed: the same with everything in one write.
const CLOSE_PARSE_1: [Buffer, Buffer] = [cat(P('rvc_n', 'SELECT 1'), S), cat(C('S', 'rvc_n'), P('rvc_n', 'SELECT 2'), B('rvc_n'), E(''), S)];
const EXECUTE_UNNAMED_1: [Buffer, Buffer] = [Q("PREPARE rvc_ap AS SELECT 'p' AS v"), cat(P('', 'EXECUTE rvc_ap'), B(''), E(''), S)];
const PARSE_AFTER: [Buffer, Buffer] = [cat(P('rvc_s1', 'SELECT 1'), S), cat(P('', 'SELECT 7'), B(''), E(''), S)];

describe('an extended COPY, its data and the rest of its group in one write', () => {
  it('direct: Close and Parse of a name in use: all answered', async () => {
    expect(await run('direct', ...CLOSE_PARSE_1, true)).toEqual([
      ['1', 'Z:I'],
      ['1', '2', 'G', 'C:COPY 1', '3', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway (transaction): Close and Parse of a name in use: the same, no hang', async () => {
    expect(await run(gws[0]!, ...CLOSE_PARSE_1, true)).toEqual(await run('direct', ...CLOSE_PARSE_1, true));
  });
  it('through pgway (transaction): unnamed Parse of an EXECUTE: answered (or 0A000), no hang', async () => {
    const out = await run(gws[0]!, ...EXECUTE_UNNAMED_1, true);
    expect(out[1]!.some((m) => m.startsWith('timeout'))).toBe(false);
    expect(out[2]).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
  it('direct: an unnamed Parse/Bind/Execute after the CopyDone: answered', async () => {
    expect(await run('direct', ...PARSE_AFTER, true)).toEqual([
      ['1', 'Z:I'],
      ['1', '2', 'G', 'C:COPY 1', '1', '2', 'D:7', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway (statement mode): the same, no hang', async () => {
    expect(await run(statementGw, ...PARSE_AFTER, true)).toEqual(await run('direct', ...PARSE_AFTER, true));
  });
});
