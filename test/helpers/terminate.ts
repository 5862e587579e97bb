// Terminating a backend while this process cannot read: what pgway then reads in one chunk.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { lab, pgUrl } from '../harness/lab.js';

/**
 * Terminates backend `pid` once it is idle, from another process, and returns once it is gone.
 * execFileSync blocks this process meanwhile: the in-process pgway reads nothing until then, so
 * the request's answers and the FATAL reach it in one read, as under load.
 */
export function terminateOnceIdleBlocking(pid: number): void {
  const l = lab();
  const psql = existsSync(path.join(l.binDir, 'psql')) ? path.join(l.binDir, 'psql') : 'psql';
  const sql = `DO $$ BEGIN
    FOR i IN 1..500 LOOP
      PERFORM pg_stat_clear_snapshot();
      EXIT WHEN (SELECT state FROM pg_stat_activity WHERE pid = ${pid}) LIKE 'idle%';
      PERFORM pg_sleep(0.01);
    END LOOP;
    PERFORM pg_terminate_backend(${pid});
    FOR i IN 1..500 LOOP
      PERFORM pg_stat_clear_snapshot();
      EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ${pid});
      PERFORM pg_sleep(0.01);
    END LOOP;
  END $$`;
  execFileSync(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pgUrl(l.primary, l.superuser, l.superuserPassword, 'postgres'), '-c', sql], { timeout: 15000 });
}
