// A Sync a client sends during a COPY FROM STDIN. PostgreSQL ignores one it reads inside the COPY,
// but answers one it reads after the COPY failed, and a COPY fails as soon as it reads a bad row:
// so whether it answers that Sync depends on where the bad row was (or whether the error comes
// only at the COPY's end, a foreign key), which pgway cannot tell. Review rounds 25 B, 27 A and
// 28 A found pgway's guesses wrong in turn: the connection taken to be owed answers it never got
// (never given back, even once the client left), another client given this client's answer, a
// request held for good behind such a Sync.
// Now pgway does not pass such a Sync on (the server would ignore it there), and a COPY that
// succeeds goes as directly. One that fails after such a Sync (or after one sent with COPY data
// before the server said the COPY began) ends the client: it gets the COPY's error, then 0A000,
// and its connection is closed. Another client is served as ever.
//   y: COPY (extended or simple) -> G;  its data, a Sync, more, in one write
//   x (another client, one server connection): SHOW statement_timeout -> T, D:0, C, Z
// And a Query sent during a COPY that fails first, with no Sync (a COPY a Query began skips nothing
// after its error): it runs, unseen by pgway (RequestWriter's IN_COPY rule), so y keeps its
// connection (the SET it made stays y's), and x, on the pool's other connection, does not find it.
import { describe, expect, it } from 'vitest';
import { answers, upTo, rawTargets, summary, shown, type Target, P, B, E, Q, S, H, cat, copyData, COPY_DONE } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const twoConnections = oneConnectionGateways(2);
const TABLE = 'copy_sync_during';
scratchTable(TABLE);
type Raw = Awaited<ReturnType<typeof raw>>;
const read = (c: Raw, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

const EXTENDED = cat(P('', `COPY ${TABLE} (a) FROM STDIN`), B(''), E(''), H);
const SIMPLE = Q(`COPY ${TABLE} (a) FROM STDIN`);
const GROUP = cat(P('', "SELECT 'g' AS v"), B(''), E(''), S);
const SHOW = Q('SHOW statement_timeout');

/** What the server sends until it has been quiet for half a second. */
async function quietAfter(c: Raw): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const m = await c.readMessage(500).catch(() => undefined);
    if (!m) return out;
    if (shown(m)) out.push(summary(m));
  }
}

/** x's view, on a connection of its own or the one y had. */
async function other(t: Target): Promise<string[]> {
  const x = await raw(t);
  x.write(SHOW);
  const out = await read(x, 1, 6000);
  x.destroy();
  return out;
}

describe('a COPY that succeeds after a Sync sent during it', () => {
  const cases: [string, Buffer, Buffer, number][] = [
    ['extended: a row, a Sync, a row, CopyDone, a Sync', EXTENDED, cat(copyData('1\n'), S, copyData('2\n'), COPY_DONE, S), 1],
    ['simple: a row, a Sync, CopyDone, a Query', SIMPLE, cat(copyData('1\n'), S, COPY_DONE, Q('SELECT 3 AS v')), 2],
  ];
  for (const [name, copy, rest, readies] of cases) {
    it(`${name}: as directly, and another client is served`, async () => {
      const run = async (t: Target): Promise<string[][]> => {
        const y = await raw(t);
        y.write(copy);
        const out = [await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`])];
        y.write(rest);
        out.push(await read(y, readies));
        out.push(await other(t));
        y.destroy();
        return out;
      };
      const direct = await run('direct');
      expect(direct.flat().some((m) => m.startsWith('timeout'))).toBe(false);
      for (const gw of gws) expect(await run(gw)).toEqual(direct);
    }, 30000);
  }
});

describe('a COPY that fails after a Sync sent during it', () => {
  const cases: [string, Buffer, Buffer][] = [
    ['extended: a bad row, a Sync, another group', EXTENDED, cat(copyData('x\n'), S, GROUP)],
    ['extended: a row, a Sync (ignored), a bad row, CopyDone, a Sync', EXTENDED, cat(copyData('1\n'), S, copyData('x\n'), COPY_DONE, S)],
    ['simple: a bad row, a Sync, a Query', SIMPLE, cat(copyData('x\n'), S, Q('SELECT 2 AS v'))],
    ['simple: a row, a Sync (ignored), a bad row', SIMPLE, cat(copyData('1\n'), S, copyData('x\n'))],
    // Sent before the server said the COPY began, after some of its data (one write).
    ['simple: a bad row and a Sync before the COPY began, a Query', cat(SIMPLE, copyData('x\n'), S, Q('SELECT 2 AS v')), Buffer.alloc(0)],
  ];
  for (const [name, copy, rest] of cases) {
    it(`${name}: the client gets the COPY's error, then 0A000, and another client is served`, async () => {
      const direct = await raw('direct');
      direct.write(copy);
      await upTo(direct, 'G', 3000);
      direct.write(rest);
      const answered = await quietAfter(direct);
      expect(answered[0]).toBe('E:22P02');
      direct.destroy();
      for (const gw of gws) {
        const y = await raw(gw);
        y.write(copy);
        expect(await upTo(y, 'G', 3000)).toEqual(copy === EXTENDED ? ['1', '2', 'G'] : ['G']);
        y.write(rest);
        // What the server sent with its error (in the same read) reaches the client before the end:
        // the answers to what it got (not the Sync pgway kept back).
        const got = (await y.readToClose(5000)).filter(shown).map(summary);
        expect(got[0]).toBe(answered[0]);
        expect(got.at(-1)).toBe('E:0A000');
        expect(await other(gw)).toEqual(['T', 'D:0', 'C:SHOW', 'Z:I']);
      }
    }, 30000);
  }
});

describe('a Query sent during a COPY that fails first, with no Sync', () => {
  it('runs as directly; its SET stays the client\'s, and another client does not find it', async () => {
    const run = async (t: Target): Promise<string[][]> => {
      const y = await raw(t);
      y.write(SIMPLE);
      const out = [await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`])];
      y.write(cat(copyData('x\n'), Q("SET statement_timeout = '123s'")));
      out.push(await read(y, 2));
      out.push(await other(t));
      y.write(SHOW);
      out.push(await read(y));
      y.destroy();
      return out;
    };
    const direct = await run('direct');
    expect(direct.at(-1)).toContain('D:123s');
    for (const gw of twoConnections) expect(await run(gw)).toEqual(direct);
  }, 30000);
});
