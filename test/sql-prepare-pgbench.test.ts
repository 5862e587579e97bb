// pgbench -M prepared, 4 clients on a pool of 2, a script that PREPAREs, EXECUTEs (twice) and DEALLOCATEs a
// SQL-level statement, each line its own named protocol statement and its own transaction: every run
// through pgway, on a warm gateway too, completes without errors and updates as many rows as direct.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { run } from './helpers/run.js';

const gws: TestGateway[] = [];
afterAll(async () => { await Promise.all(gws.map((g) => g.stop())); await adminQuery('DROP TABLE IF EXISTS spb_t'); });

describe('SQL PREPARE/EXECUTE/DEALLOCATE under pgbench -M prepared, 4 clients, pool of 2', () => {
  it.each(['max_prepared_statements: 3', 'max_prepared_statements: 200'])('three runs in a row on one gateway (%s)', async (cap) => {
    const gw = await startGateway({ pool: `{ mode: transaction, size: 2, query_wait_timeout_ms: 5000, ${cap} }` });
    gws.push(gw);
    await adminQuery('DROP TABLE IF EXISTS spb_t');
    await adminQuery('CREATE TABLE spb_t (id int PRIMARY KEY, n int NOT NULL)');
    await adminQuery('INSERT INTO spb_t VALUES (1, 0)');
    await adminQuery('GRANT ALL ON spb_t TO app');
    const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgway-spb-')), 's.sql');
    writeFileSync(f, 'PREPARE q AS UPDATE spb_t SET n = n + 1 WHERE id = 1;\nEXECUTE q;\nEXECUTE q;\nDEALLOCATE q;\n');
    const bench = (host: string, port: number) => run('pgbench', ['-h', host, '-p', String(port), '-U', 'app', '-n', '-M', 'prepared', '-c', '4', '-j', '2', '-t', '30', '-f', f, 'app'],
      { env: { PGPASSWORD: PASSWORDS.app! }, timeoutMs: 30_000 });
    const nOf = async () => Number((await adminQuery<{ n: number }>('SELECT n FROM spb_t WHERE id = 1')).rows[0]!.n);
    const outcome = (r: { code: number | null; stderr: string }) => ({ code: r.code, errors: r.stderr.split('\n').filter((l) => /error/.test(l)).slice(0, 2) });
    for (let i = 0; i < 2; i++) {
      const before = await nOf();
      const direct = await bench(lab().primary.host, lab().primary.port);
      expect(outcome(direct)).toEqual({ code: 0, errors: [] });
      expect(await nOf()).toBe(before + 240);
    }
    for (let i = 0; i < 3; i++) {
      const before = await nOf();
      const through = await bench(gw.host, gw.port);
      expect({ run: i, ...outcome(through) }).toEqual({ run: i, code: 0, errors: [] });
      expect(await nOf()).toBe(before + 240);
    }
  }, 90_000);
});
