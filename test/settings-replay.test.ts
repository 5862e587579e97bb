// A pooled client's settings, laid on whichever server connection serves it next, behave there as on a
// direct connection: kept as the server stored them, set_config by FunctionCall followed, SET seed and
// SET temp_buffers not carried, and the notices pgway's own statement raises (under another client's
// client_min_messages = debug5) not heard by the client. Each case runs once directly and once through
// pgway with a pool of 1, where another client between two requests of the first makes pgway lay the
// first client's settings on again (RESET ALL, then set_config of each).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { errorFields, type RawClient } from './helpers/raw-client.js';
import { answers, F, rawTargets, Q, shown, summary, type Target } from './helpers/wire-script.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 3000 }' });
  await adminQuery('DROP SCHEMA IF EXISTS replay_ts CASCADE');
  await adminQuery('CREATE SCHEMA replay_ts');
  await adminQuery('CREATE TEXT SEARCH CONFIGURATION replay_ts.replaycfg (COPY = pg_catalog.simple)');
  await adminQuery('GRANT USAGE ON SCHEMA replay_ts TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP SCHEMA IF EXISTS replay_ts CASCADE');
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

describe('a setting whose stored value depends on the session at the SET', () => {
  it("SET DateStyle = 'ISO' after 'SQL, DMY' keeps DMY: '01/02/2024' is 1 February", async () => {
    const seen: Record<string, string[]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await run(a, "SET DateStyle = 'SQL, DMY'");
      await run(a, "SET DateStyle = 'ISO'");
      await run(b, "SET work_mem = '5MB'"); // another client on the connection: a's settings are laid on again
      seen[name] = await run(a, "SELECT current_setting('DateStyle'), '01/02/2024'::date::text");
    }
    expect(seen.direct).toEqual(['T', 'D:ISO, DMY,2024-02-01', 'C:SELECT 1', 'Z:I']);
    expect(seen.pgway).toEqual(seen.direct);
  });

  it('the same, in one transaction with the first DateStyle set before it', async () => {
    const seen: Record<string, string[]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await run(a, "SET DateStyle = 'German'");
      await run(a, "BEGIN; SET DateStyle = 'ISO'; SET IntervalStyle = 'sql_standard'; COMMIT");
      await run(b, "SET work_mem = '5MB'");
      seen[name] = await run(a, "SELECT current_setting('DateStyle'), current_setting('IntervalStyle'), '01.02.2024'::date::text");
    }
    expect(seen.direct).toEqual(['T', 'D:ISO, DMY,sql_standard,2024-02-01', 'C:SELECT 1', 'Z:I']);
    expect(seen.pgway).toEqual(seen.direct);
  });

  it('default_text_search_config set under another search_path keeps its schema after a later SET search_path', async () => {
    const seen: Record<string, string[]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await run(a, 'SET search_path = replay_ts, public');
      await run(a, "SET default_text_search_config = 'replaycfg'"); // stored as replay_ts.replaycfg
      await run(a, 'SET search_path = public');
      await run(b, "SET work_mem = '5MB'");
      seen[name] = await run(a, "SELECT current_setting('default_text_search_config'), to_tsvector('The Cats')::text");
    }
    expect(seen.direct).toEqual(['T', "D:replay_ts.replaycfg,'cats':2 'the':1", 'C:SELECT 1', 'Z:I']);
    expect(seen.pgway).toEqual(seen.direct);
  });

  it('default_text_search_config set by set_config() in a pipelined transaction is read back as stored', async () => {
    const seen: Record<string, string[]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      a.write(Buffer.concat([
        Q('BEGIN'),
        Q("SET LOCAL search_path = replay_ts; SELECT set_config('default_text_search_config', 'replaycfg', false)"),
        Q('COMMIT'),
      ]));
      await answers(a, 3);
      await run(b, "SET work_mem = '5MB'");
      seen[name] = await run(a, "SELECT current_setting('default_text_search_config')");
    }
    expect(seen.direct).toEqual(['T', 'D:replay_ts.replaycfg', 'C:SELECT 1', 'Z:I']);
    expect(seen.pgway).toEqual(seen.direct);
  });
});

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

describe('SET temp_buffers', () => {
  it('is not laid on again: a client that set it is not ended on a connection where another client used a temporary table', async () => {
    const seen: Record<string, string[][]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await run(a, "SET work_mem = '5MB'"); // a's settings differ from b's: pgway lays them on at each move
      const set = await run(a, "SELECT set_config('temp_buffers', '16MB', false)");
      // b uses a temporary table and drops it: nothing of it is left, b holds no pin.
      const temp = await run(b, 'CREATE TEMP TABLE replay_tb (x int); INSERT INTO replay_tb VALUES (1); DROP TABLE replay_tb; SELECT 1');
      seen[name] = [set, temp.slice(-4), await run(a, "SELECT current_setting('work_mem')")];
    }
    expect(seen.direct).toEqual([
      ['T', 'D:16MB', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:1', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:5MB', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(seen.pgway).toEqual(seen.direct);
  });
});

describe('a FunctionCall of set_config', () => {
  // set_config(text, text, boolean) is OID 2078; a boolean in binary format is one byte.
  const setConfig = (value: string, isLocal: boolean, format: 0 | 1): Buffer =>
    F(2078, [Buffer.from('work_mem'), Buffer.from(value), format === 0 ? Buffer.from(String(isLocal)) : Buffer.of(isLocal ? 1 : 0)], format, format);

  it.each([0, 1] as const)('in format %i is the caller\'s setting: the next client of the connection does not get it, the caller keeps it', async (format) => {
    const seen: Record<string, string[][]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      a.write(setConfig('77MB', false, format));
      const call = await answers(a);
      seen[name] = [call, await run(b, "SELECT current_setting('work_mem')"), await run(a, "SELECT current_setting('work_mem')")];
    }
    expect(seen.direct?.slice(1)).toEqual([
      ['T', 'D:4MB', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:77MB', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(seen.pgway).toEqual(seen.direct);
  });

  it('with is_local true inside a transaction block changes that transaction only', async () => {
    const seen: Record<string, string[][]> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await run(a, 'BEGIN');
      a.write(setConfig('66MB', true, 0));
      const call = await answers(a);
      const inside = await run(a, "SELECT current_setting('work_mem')");
      await run(a, 'COMMIT');
      seen[name] = [call, inside, await run(b, "SELECT current_setting('work_mem')"), await run(a, "SELECT current_setting('work_mem')")];
    }
    expect(seen.direct?.slice(1)).toEqual([
      ['T', 'D:66MB', 'C:SELECT 1', 'Z:T'],
      ['T', 'D:4MB', 'C:SELECT 1', 'Z:I'],
      ['T', 'D:4MB', 'C:SELECT 1', 'Z:I'],
    ]);
    expect(seen.pgway).toEqual(seen.direct);
  });
});

describe("notices raised by pgway's statement laying settings on", () => {
  /** Runs one Query; returns the severities of the notices heard with its answer. */
  async function notices(c: RawClient, sql: string): Promise<string[]> {
    c.write(Q(sql));
    const out: string[] = [];
    for (;;) {
      const m = await c.readMessage(3000);
      if (!m) return [...out, '<closed>'];
      if (m.type === 'N') out.push(errorFields(m.body).get('V') ?? '?');
      if (m.type === 'Z') return out;
    }
  }

  it("reach no client: one that never asked for DEBUG hears none, one that did hears only its own statement's", async () => {
    const seen: Record<string, { quiet: string[]; debug: number }> = {};
    for (const [name, t] of targets()) {
      const a = await raw(t);
      const b = await raw(t);
      await notices(a, "SET work_mem = '5MB'");
      await notices(b, "SET client_min_messages = 'debug5'");
      await notices(b, 'SELECT 1');
      // a never asked for debug output: where b's setting is still on the connection, pgway lays a's on.
      const quiet = await notices(a, 'SELECT 1');
      await notices(b, 'SELECT 1');
      const own = await notices(b, 'SELECT 1'); // b alone on the connection: its own statement's DEBUG lines
      await notices(a, 'SELECT 1');
      const afterMove = await notices(b, 'SELECT 1'); // b's settings laid on again first
      seen[name] = { quiet, debug: afterMove.length - own.length };
    }
    expect(seen.direct).toEqual({ quiet: [], debug: 0 });
    expect(seen.pgway).toEqual(seen.direct);
  });
});
