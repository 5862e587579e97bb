// pgbench -M prepared prepares with a blocking PQprepare (Parse, Sync): for a pipeline, all of its
// statements at \startpipeline, on the thread that also runs its other clients (-j < -c). pgway answers
// such a Parse alone when the pool already has the statement (RequestFlow.answerPrepareLocally), so that
// it never waits for a connection that a client of the same thread holds inside its transaction, which
// waits for the thread. That goes for statements with session effects too (SAVEPOINT, RELEASE, SET):
// parsing one changes nothing. Without it, the run stalls until query_wait_timeout (57P05).
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { run } from './helpers/run.js';

let gw: TestGateway;
const dir = mkdtempSync(path.join(os.tmpdir(), 'rm-dl-'));

beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 1, query_wait_timeout_ms: 5000 }' });
  await adminQuery('DROP TABLE IF EXISTS rm_dl; CREATE TABLE rm_dl (id int PRIMARY KEY, v int); GRANT ALL ON rm_dl TO app');
});
afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS rm_dl');
});

async function pgbench(where: 'direct' | 'gateway', script: string): Promise<{ code: number | null; processed: number; stderr: string }> {
  const f = path.join(dir, `s${Math.random().toString(36).slice(2)}.sql`);
  writeFileSync(f, script);
  const [host, port] = where === 'direct' ? [lab().primary.host, lab().primary.port] : [gw.host, gw.port];
  await adminQuery('TRUNCATE rm_dl');
  const r = await run('pgbench', ['-n', '-h', host, '-p', String(port), '-U', 'app', '-M', 'prepared', '-f', f, '-c', '2', '-j', '1', '-t', '10', 'app'], {
    env: { PGPASSWORD: PASSWORDS.app! }, timeoutMs: 25_000,
  });
  const processed = Number(/actually processed: (\d+)/.exec(r.stdout)?.[1] ?? -1);
  return { code: r.code, processed, stderr: r.stderr.split('\n').filter((l) => /error/i.test(l)).slice(0, 2).join(' | ') };
}

const scripts: Record<string, string> = {
  // A transaction over two pipelines with a savepoint in the first (the savepoint is what matters).
  'SAVEPOINT inside a transaction spanning two pipelines': `\\set id :client_id * 1000 + random(1, 15)
\\startpipeline
BEGIN;
INSERT INTO rm_dl VALUES (:id, 1) ON CONFLICT (id) DO UPDATE SET v = rm_dl.v + 1;
SAVEPOINT a;
UPDATE rm_dl SET v = v + 100 WHERE id = :id;
RELEASE SAVEPOINT a;
\\endpipeline
\\startpipeline
UPDATE rm_dl SET v = v + 1000 WHERE id = :id;
COMMIT;
\\endpipeline
`,
};

describe('pgbench -M prepared, 2 clients on one thread (-j 1), pool of 1', () => {
  for (const [name, script] of Object.entries(scripts)) {
    it(`finishes as on a direct connection: ${name}`, async () => {
      const direct = await pgbench('direct', script);
      expect(direct).toMatchObject({ code: 0, processed: 20 });
      const viaGw = await pgbench('gateway', script);
      expect(viaGw).toEqual(direct);
    }, 60_000);
  }

  it('control: the same transaction spanning two pipelines without a savepoint finishes through pgway', async () => {
    const script = scripts['SAVEPOINT inside a transaction spanning two pipelines']!.replace('SAVEPOINT a;\n', '').replace('RELEASE SAVEPOINT a;\n', '');
    const viaGw = await pgbench('gateway', script);
    expect(viaGw).toMatchObject({ code: 0, processed: 20 });
  }, 60_000);
});
