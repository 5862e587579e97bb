// A named statement whose text is a SQL PREPARE, parsed in one request and bound and executed in a later
// one (libpq's PQprepare + PQexecPrepared, pgbench -M prepared), inside a transaction block: the PREPARE
// takes effect when it runs, on the connection that runs it, and the block commits as it does on
// PostgreSQL.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { run } from './helpers/run.js';
import { B, cat, E, P, Q, rawTargets, S } from './helpers/wire-script.js';

let gw: TestGateway;
const { script } = rawTargets();
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS snb_t');
  await adminQuery('CREATE TABLE snb_t (id int PRIMARY KEY, n int NOT NULL)');
  await adminQuery('INSERT INTO snb_t VALUES (1, 0)');
  await adminQuery('GRANT ALL ON snb_t TO app');
});
afterAll(async () => { await gw?.stop(); await adminQuery('DROP TABLE IF EXISTS snb_t'); });

const prepared = (name: string, sql: string) => [cat(P(name, sql), S), cat(B(name), E(), S)];

describe('SQL PREPARE through a named statement inside a transaction block', () => {
  it('BEGIN; PREPARE q; EXECUTE q; DEALLOCATE q; END, each as Parse/Sync then Bind/Execute/Sync (pgbench -M prepared)', async () => {
    const steps = [
      ...prepared('s0', 'BEGIN'),
      ...prepared('s1', 'PREPARE q AS UPDATE snb_t SET n = n + 1 WHERE id = 1'),
      ...prepared('s2', 'EXECUTE q'),
      ...prepared('s3', 'DEALLOCATE q'),
      ...prepared('s4', 'END'),
      Q('SELECT 1'),
    ];
    const direct = await script('direct', steps);
    const through = await script(gw, steps);
    expect(through).toEqual(direct);
  });

  it('minimal: BEGIN; a named Parse of PREPARE (Sync), then its Bind/Execute (Sync) inside the block', async () => {
    const steps = [Q('BEGIN'), cat(P('s1', 'PREPARE q AS SELECT 42'), S), cat(B('s1'), E(), S), Q('EXECUTE q'), Q('COMMIT')];
    const direct = await script('direct', steps);
    expect(direct).toEqual([['C:BEGIN', 'Z:T'], ['1', 'Z:T'], ['2', 'C:PREPARE', 'Z:T'], ['T', 'D:42', 'C:SELECT 1', 'Z:T'], ['C:COMMIT', 'Z:I']]);
    const through = await script(gw, steps);
    expect(through).toEqual(direct);
  });

  it('pgbench -M prepared, script BEGIN; PREPARE q ...; EXECUTE q; DEALLOCATE q; END;', async () => {
    const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgway-snb-')), 'tx.sql');
    writeFileSync(f, 'BEGIN;\nPREPARE q AS UPDATE snb_t SET n = n + 1 WHERE id = 1;\nEXECUTE q;\nDEALLOCATE q;\nEND;\n');
    const bench = (host: string, port: number) => run('pgbench', ['-h', host, '-p', String(port), '-U', 'app', '-n', '-M', 'prepared', '-c', '1', '-t', '3', '-f', f, 'app'],
      { env: { PGPASSWORD: PASSWORDS.app! }, timeoutMs: 20_000 });
    const nOf = async () => Number((await adminQuery<{ n: number }>('SELECT n FROM snb_t WHERE id = 1')).rows[0]!.n);
    const before = await nOf();
    const direct = await bench(lab().primary.host, lab().primary.port);
    expect(direct.stderr).toBe('');
    expect(direct.code).toBe(0);
    expect(await nOf()).toBe(before + 3);
    const through = await bench(gw.host, gw.port);
    expect(through.stderr).toBe('');
    expect(through.code).toBe(0);
    expect(await nOf()).toBe(before + 6);
  }, 40_000);
});
