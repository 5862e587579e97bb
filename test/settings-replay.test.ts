// A pooled client's settings, laid on whichever server connection serves it next, behave there as on a
// direct connection. Each case runs once directly and once through pgway with a pool of 1, where another
// client between two requests of the first makes pgway lay the first client's settings on again
// (RESET ALL, then set_config of each).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { type RawClient } from './helpers/raw-client.js';
import { rawTargets, Q, shown, summary, type Target } from './helpers/wire-script.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
});

afterAll(async () => {
  await gw?.stop();
});

const { raw } = rawTargets();
const targets = (): [string, Target][] => [['direct', 'direct'], ['pgway', gw]];

/** The answer to one Query as short strings; when the connection closes first, what came and '<closed>'. */
async function run(c: RawClient, sql: string): Promise<string[]> {
  c.write(Q(sql));
  const out: string[] = [];
  for (;;) {
    const m = await c.readMessage(5000).catch(() => undefined);
    if (!m) return [...out, '<closed>'];
    if (!shown(m)) continue;
    out.push(summary(m));
    if (m.type === 'Z') return out;
  }
}

describe('SET seed', () => {
  it("is not laid on again: random() goes on with its sequence when the client's settings are laid on again", async () => {
    const seen: Record<string, string[]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await run(a, 'SET seed = 0.5');
      const values: string[] = [];
      for (let i = 0; i < 3; i++) {
        values.push((await run(a, 'SELECT random()::text'))[1]!);
        await run(b, "SET work_mem = '5MB'"); // b on the connection: a's settings are laid on again next time
      }
      seen[name] = values;
    }
    expect(new Set(seen.direct).size).toBe(3);
    expect(seen.pgway).toEqual(seen.direct);
  });
});
