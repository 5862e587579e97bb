// Found by review round 20, and fixed: an unnamed Parse that fails BEFORE PostgreSQL drops the session's unnamed statement.
// exec_parse_message drops the old unnamed statement first thing, but the message is read before
// that: a query string that is not valid in the client encoding fails in pq_getmsgstring (22021),
// and the old unnamed statement stays. pgway records the connection's unnamed statement as the
// client's when the Parse is written first in its group (UnnamedStatement.parsed, no undo), so when
// the server still holds ANOTHER client's unnamed statement, this client's next Bind runs it.
// Directly, the client has no unnamed statement (26000), or its own old one.
import { describe, expect, it } from 'vitest';
import { answers, rawTargets, type Target, P, B, E, S, Q, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { typedMessage, cstring } from './helpers/raw-client.js';
import { i16 } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1) => answers(c, n, 3000).catch((e: Error) => [`timeout: ${e.message}`]);

// Under client_encoding WIN1252, byte 0x81 has no equivalent in UTF8 (22P05): a client that sends such a byte in its text.
const WIN1252_PARSE = typedMessage('P', cat(cstring(''), Buffer.from([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0x27, 0x81, 0x27, 0x00]), i16(0)));

async function run(t: Target, win1252 = false): Promise<string[][]> {
  const out: string[][] = [];
  const x = await raw(t);
  x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
  out.push(await read(x));
  const y = await raw(t);
  if (win1252) {
    // Both clients under WIN1252 (pgway lays nothing of its own between them), then x's unnamed statement again.
    for (const c of [x, y]) {
      c.write(Q("SET client_encoding = 'WIN1252'"));
      await read(c);
    }
    x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
    await read(x);
  }
  y.write(cat(win1252 ? WIN1252_PARSE : BAD_PARSE, S));
  out.push(await read(y));
  y.write(cat(B(''), E(''), S));
  out.push(await read(y));
  return out;
}

describe('an unnamed Parse that fails on its encoding, before the old unnamed statement is dropped', () => {
  it('direct: the Parse fails with 22021, the client has no unnamed statement (26000)', async () => {
    expect(await run('direct')).toEqual([
      ['1', '2', "D:x's secret", 'C:SELECT 1', 'Z:I'],
      ['E:22021', 'Z:I'],
      ['E:26000', 'Z:I'],
    ]);
  });
  for (const k of [0, 1]) {
    it(`through pgway (gateway ${k}): the same, never the other client's statement`, async () => {
      expect(await run(gws[k]!)).toEqual(await run('direct'));
    });
  }
  it('direct, client_encoding WIN1252 and a byte with no equivalent: 22P05, then 26000', async () => {
    expect((await run('direct', true)).slice(1)).toEqual([['E:22P05', 'Z:I'], ['E:26000', 'Z:I']]);
  });
  it("through pgway, client_encoding WIN1252: the same, never the other client's statement", async () => {
    expect(await run(gws[0]!, true)).toEqual(await run('direct', true));
  });
});
