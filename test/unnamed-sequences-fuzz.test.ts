// From review round 22 (E): a bounded random generator over pipelined groups of unnamed-statement
// messages (Parses that succeed, fail by syntax, fail while read (invalid UTF8), fail at run;
// Bind/Execute, Describe, Close, a failing Execute; Queries between groups), compared with direct
// PostgreSQL. UNNAMED_FUZZ_COUNT (300), UNNAMED_FUZZ_SEED (5) and UNNAMED_FUZZ_ITEMS choose the run. One transaction-mode connection (pool of 1): another client's unnamed
// statement is on it before each sequence, and pgway runs nothing of its own, so every answer must be
// PostgreSQL's (README's differences concern other connections and pgway's own statements).
import { describe, expect, it } from 'vitest';
import { answers, rawAfterLogin, type Target, P, B, E, D, C, S, Q, cat, INVALID_UTF8_PARSE as BAD_PARSE } from './helpers/wire-script.js';
import { typedMessage, type RawClient } from './helpers/raw-client.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { lab, pgUrl } from './harness/lab.js';
import { prng } from './helpers/prng.js';

const gws = oneConnectionGateways();

type Item = string;
const ITEMS: Item[] = (process.env.UNNAMED_FUZZ_ITEMS ?? 'Pok,Psyn,Putf,Pdiv,BE,DS,CS,Enope').split(',');
function frames(item: Item, n: number): Buffer {
  switch (item) {
    case 'Pok': return P('', `SELECT 'y${n}' AS v`);
    case 'Psyn': return P('', 'SELEC oops');
    case 'Putf': return BAD_PARSE;
    case 'Pdiv': return P('', 'SELECT 1/0 AS v');
    case 'BE': return cat(B(''), E(''));
    case 'DS': return D('S', '');
    case 'CS': return C('S', '');
    case 'Enope': return E('nope');
    case 'Q': return Q("SELECT 'q' AS v");
    case 'Qin': return Q("SELECT 'qin' AS v");
    case 'H': return typedMessage('H');
    case 'PBE': return cat(P('', `SELECT 'z${n}' AS v`), B(''), E(''));
    default: throw new Error(item);
  }
}

interface Seq { groups: Item[][]; split: boolean }
function gen(r: () => number): Seq {
  const ng = 2 + Math.floor(r() * 3);
  const groups: Item[][] = [];
  for (let g = 0; g < ng; g++) {
    if (r() < 0.12) { groups.push(['Q']); continue; }
    const len = 1 + Math.floor(r() * 3);
    const grp: Item[] = [];
    for (let k = 0; k < len; k++) grp.push(ITEMS[Math.floor(r() * ITEMS.length)]!);
    groups.push(grp);
  }
  // End with a use of the unnamed statement, most of the time.
  if (r() < 0.8) groups.push(r() < 0.5 ? ['BE'] : ['DS']);
  return { groups, split: r() < 0.3 };
}
const show = (s: Seq) => `${s.split ? 'split ' : ''}${s.groups.map((g) => `[${g.join(' ')}]`).join(' ')}`;

function urlOf(t: Target): string {
  return t === 'direct' ? pgUrl(lab().primary, 'app', 'app-secret', 'app') : t.url();
}
async function client(t: Target, ends: (() => void)[]): Promise<RawClient> {
  return rawAfterLogin(urlOf(t), (end) => ends.push(end));
}

async function run(t: Target, seq: Seq): Promise<string[]> {
  const ends: (() => void)[] = [];
  try {
    const x = await client(t, ends);
    x.write(cat(P('', "SELECT 'x''s secret' AS v"), B(''), E(''), S));
    await answers(x, 1, 3000);
    const y = await client(t, ends);
    let n = 0;
    const bufs = seq.groups.map((g) => g[0] === 'Q' ? frames('Q', 0) : cat(...g.map((it) => frames(it, ++n)), S));
    if (seq.split) {
      for (const b of bufs) { y.write(b); await new Promise((r) => setTimeout(r, 2)); }
    } else y.write(cat(...bufs));
    return await answers(y, bufs.length, 3000).catch((e: Error) => [`timeout: ${e.message}`]);
  } finally {
    for (const e of ends) e();
  }
}

const COUNT = Number(process.env.UNNAMED_FUZZ_COUNT ?? 300);
const SEED = Number(process.env.UNNAMED_FUZZ_SEED ?? 5);

describe('generated pipelined unnamed-statement sequences, pgway vs direct', () => {
  for (const k of [0, 1]) {
    it(`gateway ${k}: ${COUNT} sequences from seed ${SEED}`, async () => {
      const r = prng(SEED + k * 7919);
      const bad: string[] = [];
      for (let i = 0; i < COUNT; i++) {
        const seq = gen(r);
        const want = await run('direct', seq);
        const got = await run(gws[k]!, seq);
        if (JSON.stringify(want) !== JSON.stringify(got)) bad.push(`${show(seq)}\n   direct: ${want.join(' ')}\n   pgway:  ${got.join(' ')}`);
      }
      if (bad.length) console.log(`${bad.length} mismatches:\n` + bad.join('\n'));
      expect(bad).toEqual([]);
    }, 600_000);
  }
});
