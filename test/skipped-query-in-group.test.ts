// Found by review round 16, and fixed; what went wrong:
// Review round 16 (p): a Query pgway refuses inside an open group (an EXECUTE it would have to lay
// on, ServerConnection.refuseQueryInGroup) that comes after an error in that group. PostgreSQL skips
// it (everything up to the Sync is ignored): it drops no unnamed statement. pgway writes its own
// failing Query and a synthesized answer, both skipped too, and each skipped slot is reported as a
// skipped client Query (ServerSink.onQuerySkipped): the client's count of Queries goes down twice for
// one it went up, so the unnamed statement it parsed before no longer counts as its own: 26000.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, H, Q, cat } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();

const bounded = (p: Promise<string[]>): Promise<string[]> => p.catch((e: Error) => [`timeout: ${e.message}`]);

const run = async (t: Target, query = 'EXECUTE rvq_skq', pin = true): Promise<string[][]> => {
  const a = await raw(t);
  const out: string[][] = [];
  a.write(Q('PREPARE rvq_skq AS SELECT 42'));
  out.push(await bounded(answers(a, 1, 3000)));
  if (t !== 'direct') {
    // Another client's statement of that name takes the (only) connection's.
    const b = await raw(t);
    b.write(Q("PREPARE rvq_skq AS SELECT 'b'"));
    await bounded(answers(b, 1, 3000));
  }
  // Pinned to that connection from here (a keeps it: nothing else runs there).
  if (pin) a.write(Q('LISTEN rvq_skq'));
  out.push(pin ? await bounded(answers(a, 1, 3000)) : ['C:LISTEN', 'Z:I']);
  // a's unnamed statement, parsed after its last Query.
  a.write(cat(P('', 'SELECT 7'), S));
  out.push(await bounded(answers(a, 1, 3000)));
  // A named Parse that fails (syntax error), answered up to a Flush; then an EXECUTE, skipped.
  a.write(cat(P('rvq_bad', 'SELEC 1'), H));
  out.push(await a.readUntil('E', 3000).then((r) => [r.message.type]).catch((e: Error) => [`timeout: ${e.message}`]));
  a.write(cat(Q(query), S));
  out.push(await bounded(answers(a, 1, 3000)));
  // No Query ran since the unnamed Parse: it is still there.
  a.write(cat(B(''), E(''), S));
  out.push(await bounded(answers(a, 1, 3000)));
  return out;
};

describe('a refused EXECUTE the server skips behind an error in its group', () => {
  it('direct: the unnamed statement survives', async () => {
    expect(await run('direct')).toEqual([
      ['C:PREPARE', 'Z:I'],
      ['C:LISTEN', 'Z:I'],
      ['1', 'Z:I'],
      ['E'],
      ['Z:I'],
      ['2', 'D:7', 'C:SELECT 1', 'Z:I'],
    ]);
  });

  it('through pgway: the same', async () => {
    expect(await run(gws[0]!)).toEqual(await run('direct'));
  });

  it('through pgway (max_prepared_statements 0): the same', async () => {
    expect(await run(gws[1]!)).toEqual(await run('direct'));
  });
});

// The same without the refusal: any Query the server skips there (SELECT 3), a client not pinned.
// pgway closes the connection when the client gives it back (queryInsideGroup: PostgreSQL 18 can break
// a session where a Query ran inside a group; this one never ran), and the unnamed statement goes with it.
describe('a Query the server skips behind an error answered up to a Flush, client not pinned', () => {
  it('direct: the unnamed statement survives', async () => {
    expect((await run('direct', 'SELECT 3', false)).at(-1)).toEqual(['2', 'D:7', 'C:SELECT 1', 'Z:I']);
  });

  it('through pgway: the same', async () => {
    expect(await run(gws[0]!, 'SELECT 3', false)).toEqual(await run('direct', 'SELECT 3', false));
  });
});
