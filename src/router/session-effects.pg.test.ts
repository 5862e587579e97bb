// Proves that the values the classifier reports replay exactly: the original statement runs on one
// connection, set_config(name, value, false) on another, and PostgreSQL reports the same setting.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lab } from '../../test/harness/lab.js';
import { classifySessionEffects, initSessionEffects } from './session-effects.js';

const CASES: { sql: string; prelude?: string }[] = [
  { sql: 'SET search_path = "My Schema", public' },
  { sql: "SET search_path TO 'My Schema', public" },
  { sql: 'SET search_path = a, "B c", "select", "$user", x_1, "between", name, "é", "Abc", abc' },
  { sql: "SET search_path = ''" },
  { sql: 'SET search_path = "a""b"' },
  { sql: 'SET search_path = "$user", public' },
  { sql: "SET SCHEMA 'My'" },
  { sql: "SET TIME ZONE 'UTC'" },
  { sql: "SET TIME ZONE 'America/New_York'" },
  { sql: "set TimeZone to 'Europe/Berlin'" },
  { sql: 'SET TIME ZONE -7' },
  { sql: 'SET TIME ZONE 5.5' },
  { sql: "SET TIME ZONE INTERVAL '+05:00'" },
  { sql: "SET TIME ZONE INTERVAL '-08:30'" },
  { sql: 'SET TIME ZONE LOCAL', prelude: "SET TIME ZONE 'Asia/Tokyo'" },
  { sql: 'SET TIME ZONE DEFAULT', prelude: "SET TIME ZONE 'Asia/Tokyo'" },
  { sql: 'SET statement_timeout = 1000' },
  { sql: "SET statement_timeout = '5s'" },
  { sql: 'RESET statement_timeout', prelude: 'SET statement_timeout = 5' },
  { sql: 'SET DateStyle = ISO, DMY' },
  { sql: "SET datestyle TO 'sql', 'mdy'" },
  { sql: "SET work_mem = '64MB'" },
  { sql: 'SET work_mem = 65536' },
  { sql: 'SET seq_page_cost = 1.5e0' },
  { sql: 'SET seq_page_cost = .5' },
  { sql: 'SET seq_page_cost = 0x10' },
  { sql: "SET application_name = 'it''s'" },
  { sql: 'SET application_name = $$dollar quoted$$' },
  { sql: "SET \"MyApp.Tenant\" = 'acme'" },
  { sql: 'SET myapp.n = 1_000' },
  { sql: 'SET myapp.n = 1_000.5' },
  { sql: 'SET myapp.n = 99999999999' },
  { sql: 'SET myapp.n = -1.5e3' },
  { sql: 'SET enable_seqscan = off' },
  { sql: 'SET enable_seqscan TO false' },
  { sql: 'SET client_min_messages = WARNING' },
  { sql: "SET NAMES 'UTF8'" },
  { sql: 'SET XML OPTION DOCUMENT' },
  { sql: 'SET intervalstyle = iso_8601' },
  { sql: "SET default_text_search_config = 'pg_catalog.english'" },
  { sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY' },
  { sql: 'SET ROLE app' },
  { sql: 'SET ROLE NONE', prelude: 'SET ROLE app' },
  { sql: 'RESET ROLE', prelude: 'SET ROLE app' },
  { sql: "SELECT set_config('search_path', 'x, \"Y z\"', false)" },
];

describe('classified SET values replay through set_config() (real PostgreSQL)', () => {
  let original: pg.Client;
  let replayed: pg.Client;

  beforeAll(async () => {
    await initSessionEffects();
    const info = lab();
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({ ...info.primary, user: info.superuser, password: info.superuserPassword, database: info.database });
      await client.connect();
      return client;
    };
    [original, replayed] = await Promise.all([connect(), connect()]);
  });

  afterAll(async () => {
    await Promise.allSettled([original.end(), replayed.end()]);
  });

  it.each(CASES)('$sql', async ({ sql, prelude }) => {
    const { effects } = classifySessionEffects(sql);
    expect(effects.length).toBeGreaterThan(0);
    const names: string[] = [];
    for (const client of [original, replayed]) {
      await client.query('DISCARD ALL');
      if (prelude !== undefined) await client.query(prelude);
    }
    await original.query(sql);
    for (const effect of effects) {
      if (effect.kind !== 'set' && effect.kind !== 'reset') throw new Error(`unexpected effect ${effect.kind}`);
      names.push(effect.name);
      await replayed.query('SELECT set_config($1, $2, false)', [effect.name, effect.kind === 'set' ? effect.value : null]);
    }
    for (const name of names) {
      const read = async (client: pg.Client): Promise<unknown> =>
        (await client.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]?.v;
      expect(await read(replayed), name).toBe(await read(original));
    }
  });
});
