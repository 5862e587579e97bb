// Found by review round 20, and fixed: the hangs fixed in 1f12ead (extended-copy-group-hang), with the COPY's data and what
// follows it sent in the SAME write as the Parse/Bind/Execute/Sync that begin the COPY (a client
// that does not wait for CopyInResponse, as a pipelining driver may). server.groupOpen is read at
// the start of RequestWriter.write only, when no COPY has begun: the ignored Sync still ends the
// group for the writer, and the message after the CopyDone is placed as a new group / new request
// that waits for answers the server gives only after the client's next Sync, which pgway holds
// behind it. PostgreSQL answers everything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, rawTargets, type Target, P, B, E, C, S, Q, copyData, COPY_DONE, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
let statementGw: TestGateway;

scratchTable('rvc_copy2');
beforeAll(async () => {
  statementGw = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await statementGw?.stop();
});

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
let runs = 0;

async function run(t: Target, before: Buffer, after: Buffer): Promise<string[][]> {
  const out: string[][] = [];
  const name = `rvc_c${runs++}`;
  const y = await raw(t);
  y.write(before);
  out.push(await read(y));
  y.write(cat(P(name, 'COPY rvc_copy2 (a) FROM STDIN'), B(name), E(''), S, copyData('1\n'), COPY_DONE, after));
  out.push(await read(y));
  const x = await raw(t);
  x.write(Q('SELECT 42'));
  out.push(await read(x));
  return out;
}

const CLOSE_PARSE: [Buffer, Buffer] = [cat(P('rvc_n', 'SELECT 1'), S), cat(C('S', 'rvc_n'), P('rvc_n', 'SELECT 2'), B('rvc_n'), E(''), S)];
const EXECUTE_UNNAMED: [Buffer, Buffer] = [Q("PREPARE rvc_ap AS SELECT 'p' AS v"), cat(P('', 'EXECUTE rvc_ap'), B(''), E(''), S)];
const PARSE_AFTER: [Buffer, Buffer] = [cat(P('rvc_s1', 'SELECT 1'), S), cat(P('', 'SELECT 7'), B(''), E(''), S)];

describe('an extended COPY, its data and the rest of its group in one write', () => {
  it('direct: Close and Parse of a name in use: all answered', async () => {
    expect(await run('direct', ...CLOSE_PARSE)).toEqual([
      ['1', 'Z:I'],
      ['1', '2', 'G', 'C:COPY 1', '3', '1', '2', 'D:2', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway (transaction): Close and Parse of a name in use: the same, no hang', async () => {
    expect(await run(gws[0]!, ...CLOSE_PARSE)).toEqual(await run('direct', ...CLOSE_PARSE));
  });
  it('through pgway (transaction): unnamed Parse of an EXECUTE: answered (or 0A000), no hang', async () => {
    const out = await run(gws[0]!, ...EXECUTE_UNNAMED);
    expect(out[1]!.some((m) => m.startsWith('timeout'))).toBe(false);
    expect(out[2]).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
  it('direct: an unnamed Parse/Bind/Execute after the CopyDone: answered', async () => {
    expect(await run('direct', ...PARSE_AFTER)).toEqual([
      ['1', 'Z:I'],
      ['1', '2', 'G', 'C:COPY 1', '1', '2', 'D:7', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:42', 'C:SELECT 1', 'Z:I'],
    ]);
  });
  it('through pgway (statement mode): the same, no hang', async () => {
    expect(await run(statementGw, ...PARSE_AFTER)).toEqual(await run('direct', ...PARSE_AFTER));
  });
});
