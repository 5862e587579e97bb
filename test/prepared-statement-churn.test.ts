// Named statements under churn: four clients share a pool of two connections with room for two
// statements each, use the same names for their own SQL and for SQL they share, and run seeded
// random pipelines of Describe/Bind/Execute (some in transaction blocks, some closing and parsing a
// name again). Every statement must return its own client's rows, with no error: evictions,
// lazy re-prepares and shared copies never hand one client's statement to another.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { dataRowValues, errorFields, type RawClient } from './helpers/raw-client.js';
import { B, C, cat, D, E, P, Q, rawTargets, S } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, max_prepared_statements: 2, query_wait_timeout_ms: 8000 }' });
});
afterAll(async () => { await gw?.stop(); });
const { raw } = rawTargets();

async function collect(c: RawClient, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let z = 0; z < n;) {
    const m = await c.readMessage(5000);
    if (!m) return [...out, '<closed>'];
    if (m.type === 'E') out.push(`E:${errorFields(m.body).get('C')}:${errorFields(m.body).get('M')}`);
    else if (m.type === 'D') out.push(`D:${dataRowValues(m.body).join(',')}`);
    else if (m.type === 'Z') { z++; out.push(`Z:${String.fromCharCode(m.body[0]!)}`); }
  }
  return out;
}

describe('named statements shared and evicted across clients', () => {
  it('4 clients, seeded random pipelines, each gets its own statements\' rows', { timeout: 60_000 }, async () => {
    const names = ['n0', 'n1', 'n2', 'n3'];
    let seed = 7;
    const rnd = (k: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % k; };
    const work = async (ci: number): Promise<string[]> => {
      const c = await raw(gw);
      const sqlOf = (j: number): string => (j % 2 === 0 ? `SELECT 'c${ci}-n${j}'::text AS v, $1::int AS p` : `SELECT 'shared-n${j}'::text AS v, $1::int AS p`);
      c.write(cat(...names.map((n, j) => P(n, sqlOf(j))), S));
      const bad: string[] = [];
      const first = await collect(c, 1);
      if (first.some((x) => x.startsWith('E'))) bad.push(`parse: ${first}`);
      for (let it = 0; it < 40; it++) {
        const picks = [rnd(4), rnd(4), rnd(4)];
        const inTx = rnd(3) === 0;
        const closeReparse = rnd(5) === 0 ? rnd(4) : -1;
        const parts: Buffer[] = [];
        if (inTx) parts.push(Q('BEGIN'));
        const msgs: Buffer[] = [];
        for (const j of picks) msgs.push(D('S', names[j]!), B(names[j]!, [String(it)]), E());
        if (closeReparse >= 0) msgs.push(C('S', names[closeReparse]!), P(names[closeReparse]!, sqlOf(closeReparse)));
        msgs.push(S);
        parts.push(...msgs);
        if (inTx) parts.push(Q('COMMIT'));
        c.write(cat(...parts));
        const got = await collect(c, inTx ? 3 : 1);
        const rows = got.filter((x) => x.startsWith('D:'));
        const want = picks.map((j) => `D:${j % 2 === 0 ? `c${ci}-n${j}` : `shared-n${j}`},${it}`);
        if (JSON.stringify(rows) !== JSON.stringify(want) || got.some((x) => x.startsWith('E'))) bad.push(`it ${it} picks ${picks} close ${closeReparse} tx ${inTx}: ${got.join(' ')}`);
      }
      return bad;
    };
    const results = await Promise.all([0, 1, 2, 3].map(work));
    expect(results.flat()).toEqual([]);
  });
});
