// A named statement whose text is DEALLOCATE ALL or DISCARD ALL, parsed in one request and bound and
// executed in a later one (libpq's PQprepare + PQexecPrepared, pgbench -M prepared): it drops the
// client's statements when it runs, not when it is parsed, so its own Bind finds it, and inside a
// transaction block it runs without failing the block.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { B, cat, E, P, Q, rawTargets, S } from './helpers/wire-script.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { run, type RunResult } from './helpers/run.js';

let gw: TestGateway;
const { script } = rawTargets();
const dir = mkdtempSync(path.join(os.tmpdir(), 'pgway-nda-'));

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS nda_t');
  await adminQuery('CREATE TABLE nda_t (id int PRIMARY KEY, n int NOT NULL)');
  await adminQuery('INSERT INTO nda_t VALUES (1, 0)');
  await adminQuery('GRANT ALL ON nda_t TO app');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS nda_t');
});

function pgbench(script: string, direct: boolean): Promise<RunResult> {
  const f = path.join(dir, `s${Math.random().toString(36).slice(2)}.sql`);
  writeFileSync(f, script);
  const host = direct ? lab().primary.host : gw.host;
  const port = direct ? lab().primary.port : gw.port;
  return run('pgbench', ['-h', host, '-p', String(port), '-U', 'app', '-n', '-M', 'prepared', '-c', '1', '-t', '1', '-f', f, 'app'],
    { env: { PGPASSWORD: PASSWORDS.app! }, timeoutMs: 20_000 });
}
const processed = (r: RunResult) => /actually processed: (\d+)/.exec(r.stdout)?.[1];

describe('a named DEALLOCATE ALL / DISCARD ALL through pgway', () => {
  it.each(['DEALLOCATE ALL', 'DISCARD ALL'])('pgbench -M prepared runs a script ending in %s', async (stmt) => {
    const script = `UPDATE nda_t SET n = n + 1 WHERE id = 1;\n${stmt};\n`;
    const direct = await pgbench(script, true);
    expect(direct.stderr).toBe('');
    expect(direct.code).toBe(0);
    expect(processed(direct)).toBe('1');

    const through = await pgbench(script, false);
    expect(through.stderr).toBe('');
    expect(through.code).toBe(0);
    expect(processed(through)).toBe('1');
  }, 30_000);

  it.each(['DEALLOCATE ALL', 'DISCARD ALL'])('Parse of a named %s, Sync; then Bind/Execute/Sync of it (what PQprepare + PQexecPrepared send)', async (stmt) => {
    const steps = [cat(P('nda_s', stmt), S), cat(B('nda_s'), E(), S), Q('SELECT 1')];
    const direct = await script('direct', steps);
    expect(direct).toEqual([['1', 'Z:I'], ['2', `C:${stmt}`, 'Z:I'], ['T', 'D:1', 'C:SELECT 1', 'Z:I']]);
    const through = await script(gw, steps);
    expect(through).toEqual(direct);
  });

  it('inside a transaction block, the named DEALLOCATE ALL runs, the block commits, and the statements are gone', async () => {
    const steps = [Q('PREPARE nda_q AS SELECT 7'), Q('BEGIN'), Q('CREATE TEMP TABLE IF NOT EXISTS nda_t0 (a int)'), cat(P('nda_s', 'DEALLOCATE ALL'), S), cat(B('nda_s'), E(), S), Q('COMMIT'), Q('EXECUTE nda_q')];
    const direct = await script('direct', steps);
    expect(direct.slice(3)).toEqual([['1', 'Z:T'], ['2', 'C:DEALLOCATE ALL', 'Z:T'], ['C:COMMIT', 'Z:I'], ['E:26000', 'Z:I']]);
    const through = await script(gw, steps);
    expect(through.slice(3)).toEqual(direct.slice(3));
  });
});
