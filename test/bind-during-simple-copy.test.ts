// Found by review round 19 (A), and fixed, minor (a client that breaks the protocol): a client with an unnamed statement
// pipelines a Bind of it (and Execute, Sync) right behind a simple Query that begins COPY FROM STDIN.
// PostgreSQL reads the Bind inside the COPY: an error (unexpected message type during COPY), and the
// session ends (the client sees G, then errors, then the connection closes). pgway holds the Bind
// until the Query is answered (UnnamedStatement.mustWait: a Query counted since the statement
// was parsed is owed, `queryOwed`); the server waits for COPY data, which never comes. When the
// server says it waits (onAwaitingClient, inCopyIn), the held frames are written again, the Bind
// waits again, and so on: the client gets nothing at all (not even the CopyInResponse), and holds
// the pool's connection for ever (other clients of a pool of 1 time out in the queue).
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, Q, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

scratchTable('rv_a_copy5');

const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

async function run(t: Target): Promise<string[][]> {
  const out: string[][] = [];
  const y = await raw(t);
  y.write(cat(P('', 'SELECT 1'), S));
  out.push(await read(y));
  y.write(cat(Q('COPY rv_a_copy5 FROM STDIN'), B(''), E(''), S));
  out.push(await read(y, 2));
  const x = await raw(t);
  x.write(Q('SELECT 42'));
  out.push(await read(x));
  return out;
}

describe('a Bind of the unnamed statement pipelined behind a simple-query COPY FROM STDIN', () => {
  it('direct: the COPY fails on the Bind and the session ends', async () => {
    const out = await run('direct');
    expect(out[1]![0]).toMatch(/connection closed before a 'Z' message; got GEE/);
    expect(out[2]).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
  it('through pgway: the client is answered (no silent hang), and the next client gets the connection', async () => {
    const out = await run(gws[0]!);
    expect(out[1]![0]).not.toMatch(/no answer within/);
    expect(out[2]).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
  });
});
