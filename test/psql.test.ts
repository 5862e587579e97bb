// psql, the reference libpq client, through pgway in session mode: what a person at a terminal sees.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORDS, startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery, lab } from './harness/lab.js';
import { conninfo, start, type RunResult } from './helpers/run.js';

const ROWS = 100_000;

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
  await adminQuery('DROP TABLE IF EXISTS psql_copy_in, psql_described');
  await adminQuery('CREATE TABLE psql_copy_in (id int PRIMARY KEY, v text NOT NULL)');
  await adminQuery(`CREATE TABLE psql_described (
    id bigint PRIMARY KEY, label text NOT NULL, created_at timestamptz DEFAULT now(), score numeric(10,2))`);
  await adminQuery('GRANT ALL ON psql_copy_in, psql_described TO app');
});

afterAll(async () => {
  await gw?.stop();
  await adminQuery('DROP TABLE IF EXISTS psql_copy_in, psql_described');
});

interface PsqlOptions {
  user?: string;
  password?: string | undefined;
  host?: string;
  port?: number;
  extra?: Record<string, string>;
  input?: string;
}

/** psql -X -At against pgway (or `host`/`port`), each `commands` entry as its own -c. */
function psql(commands: string[], options: PsqlOptions = {}): Promise<RunResult> {
  return startPsql(commands, options).result;
}

function startPsql(commands: string[], options: PsqlOptions = {}): ReturnType<typeof start> {
  const user = options.user ?? 'app';
  const password = 'password' in options ? options.password : PASSWORDS[user];
  const info = conninfo({
    host: options.host ?? gw.host,
    port: options.port ?? gw.port,
    user,
    dbname: 'app',
    ...options.extra,
  });
  const args = ['-X', '-v', 'ON_ERROR_STOP=0', '-At', '-d', info];
  for (const c of commands) args.push('-c', c);
  return start('psql', args, { env: password === undefined ? {} : { PGPASSWORD: password }, input: options.input, timeoutMs: 30_000 });
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

describe('psql through pgway', () => {
  it('runs simple queries', async () => {
    const r = await psql(['select 1 + 1', "select 'a' || 'b', current_user, current_database()"]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('2\nab|app|app\n');
  });

  it('describes a table with \\d', async () => {
    // Tuples-only (-t) hides the footer with the indexes; turn it off for this one.
    const commands = ['\\pset tuples_only off', '\\d psql_described'];
    const r = await psql(commands);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const direct = await psql(commands, { host: lab().primary.host, port: lab().primary.port });
    expect(r.stdout).toBe(direct.stdout);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('id|bigint||not null|');
    expect(lines).toContain('label|text||not null|');
    expect(lines).toContain('created_at|timestamp with time zone|||now()');
    expect(lines).toContain('score|numeric(10,2)|||');
    expect(r.stdout).toContain('"psql_described_pkey" PRIMARY KEY, btree (id)');
  });

  it('loads 100,000 rows with COPY FROM STDIN', async () => {
    const lines: string[] = [];
    for (let i = 1; i <= ROWS; i++) lines.push(`${i}\trow ${i} ü ${(i * 7919) % 100_003}`);
    const data = `${lines.join('\n')}\n`;
    const r = await psql(['COPY psql_copy_in (id, v) FROM STDIN'], { input: data });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`COPY ${ROWS}\n`);

    const check = await adminQuery<{ n: string; digest: string }>(
      "SELECT count(*) AS n, md5(string_agg(id || E'\\t' || v, E'\\n' ORDER BY id)) AS digest FROM psql_copy_in");
    expect(check.rows[0]).toEqual({ n: String(ROWS), digest: md5(lines.join('\n')) });
    const through = await psql(['select count(*) from psql_copy_in']);
    expect(through.stdout).toBe(`${ROWS}\n`);
  });

  it('streams 100,000 rows back with COPY TO STDOUT', async () => {
    const r = await psql([`COPY (SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g) TO STDOUT`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected: string[] = [];
    for (let i = 1; i <= ROWS; i++) expected.push(`${i}\t${md5(String(i))}`);
    const got = r.stdout.split('\n');
    expect(got.pop()).toBe(''); // the output ends with a newline
    expect(got.length).toBe(ROWS);
    expect(md5(got.join('\n'))).toBe(md5(expected.join('\n')));
  });

  it('keeps the session usable after an error', async () => {
    const script = [
      "select 'pid:' || pg_backend_pid();",
      'select 1/0;',
      "select 'still-alive';",
      "select 'pid:' || pg_backend_pid();",
    ].join('\n');
    const r = await psql([], { input: script });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('ERROR:  division by zero');
    const out = r.stdout.trim().split('\n');
    expect(out).toHaveLength(3);
    expect(out[1]).toBe('still-alive');
    expect(out[0]).toMatch(/^pid:\d+$/);
    expect(out[2]).toBe(out[0]);
  });

  it('shows a NOTICE on stderr', async () => {
    const r = await psql(["do $$ begin raise notice 'hello %', 42; end $$", "select 'after'"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('NOTICE:  hello 42\n');
    expect(r.stdout).toBe('DO\nafter\n');
  });

  it('cancels a running statement when psql gets SIGINT (Ctrl-C), within a second and a half', async () => {
    const appName = `psql-sigint-${process.pid}`;
    const running = startPsql(['select pg_sleep(30)'], { extra: { application_name: appName } });
    let active = false;
    for (let i = 0; i < 100 && !active; i++) {
      const r = await adminQuery("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE '%pg_sleep(30)%'", [appName]);
      active = r.rowCount === 1;
      if (!active) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(active).toBe(true);
    running.child.kill('SIGINT');
    const r = await running.result;
    expect(r.stderr).toContain('ERROR:  canceling statement due to user request');
    expect(r.code).toBe(1);
  });

  it('imports and exports a large object (fast-path function calls)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgway-lo-'));
    try {
      const source = path.join(dir, 'in.bin');
      const target = path.join(dir, 'out.bin');
      const content = randomBytes(300_000);
      writeFileSync(source, content);
      const imported = await psql([`\\lo_import '${source}'`]);
      expect(imported.stderr).toBe('');
      const oid = /^lo_import (\d+)$/m.exec(imported.stdout)?.[1];
      expect(oid).toBeDefined();
      const checked = await psql([`select length(lo_get(${oid})), md5(lo_get(${oid}))`]);
      expect(checked.stdout).toBe(`${content.length}|${createHash('md5').update(content).digest('hex')}\n`);
      const exported = await psql([`\\lo_export ${oid} '${target}'`, `\\lo_unlink ${oid}`]);
      expect(exported.stderr).toBe('');
      expect(readFileSync(target).equals(content)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('connects over the unix socket', async () => {
    expect(gw.gateway.address.unixSocket).toBe(`${gw.unixSocketDir}/.s.PGSQL.${gw.port}`);
    const r = await psql(["select 'over unix', current_user"], { host: gw.unixSocketDir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('over unix|app\n');
  });

  it("reports the server's real pid, as pg_stat_activity shows it", async () => {
    // psql blocks on an advisory lock the test holds, so it is still connected while we look.
    const appName = `psql-pid-${process.pid}`;
    const lockKey = 424_242;
    const holder = new pg.Client({ ...lab().primary, user: lab().superuser, password: lab().superuserPassword, database: 'app' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [lockKey]);
      const running = psql([], {
        extra: { application_name: appName },
        input: `select pg_backend_pid();\nselect pg_advisory_lock(${lockKey}) is not null;\n`,
      });
      let seen: number[] = [];
      for (let i = 0; i < 100 && seen.length === 0; i++) {
        const r = await adminQuery<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [appName]);
        seen = r.rows.map((row) => row.pid);
        if (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await holder.query('SELECT pg_advisory_unlock($1)', [lockKey]);
      const r = await running;
      expect(r.stderr).toBe('');
      expect(seen).toHaveLength(1);
      expect(r.stdout).toBe(`${seen[0]}\nt\n`);
    } finally {
      await holder.end();
    }
  });

  it('applies startup parameters (options and application_name) as PostgreSQL does', async () => {
    const extra = {
      options: '-c search_path=myschema,public -c statement_timeout=4321',
      application_name: 'xyz',
    };
    const commands = ['show search_path', 'show statement_timeout', "select current_setting('application_name')"];
    const through = await psql(commands, { extra });
    const direct = await psql(commands, { extra, host: lab().primary.host, port: lab().primary.port });
    expect(direct.code).toBe(0);
    expect(through.stderr).toBe('');
    expect(through.code).toBe(0);
    expect(through.stdout).toBe(direct.stdout);
    const [searchPath, statementTimeout, appName] = through.stdout.trim().split('\n');
    // A list setting given at startup keeps its text as written; only SET reformats it as "a, b".
    expect(searchPath).toBe('myschema,public');
    expect(statementTimeout).toBe('4321ms');
    expect(appName).toBe('xyz');
  });

  it('keeps startup parameters as the session defaults that RESET and DISCARD ALL return to', async () => {
    // On PostgreSQL a startup setting is the session's default (source "client"), not a SET.
    const extra = { options: '-c statement_timeout=4321', application_name: 'xyz' };
    // pgway lays startup settings on with set_config and lays them on again after a RESET or
    // DISCARD ALL statement completes, so each statement below is its own query. (Inside one
    // multi-statement query string, a read after RESET sees the server default until the query
    // ends; that difference is documented.)
    const commands = [
      'SET statement_timeout = 100',
      'RESET statement_timeout',
      'SHOW statement_timeout',
      'RESET ALL',
      "SELECT current_setting('application_name'), current_setting('statement_timeout')",
      'SET application_name = other',
      'DISCARD ALL',
      "SELECT current_setting('application_name'), current_setting('statement_timeout')",
    ];
    const direct = await psql(commands, { extra, host: lab().primary.host, port: lab().primary.port });
    expect(direct.stdout).toBe('SET\nRESET\n4321ms\nRESET\nxyz|4321ms\nSET\nDISCARD ALL\nxyz|4321ms\n');
    const through = await psql(commands, { extra });
    expect(through.stderr).toBe('');
    expect(through.stdout).toBe(direct.stdout);
  });

  it.each([
    ['md5user', 'md5user'],
    ['plainuser', 'plainuser'],
    ['trustuser', 'app'],
  ])('logs in as %s (server user %s)', async (user, serverUser) => {
    const r = await psql(['select current_user'], { user, password: PASSWORDS[user] });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${serverUser}\n`);
  });

  it('refuses a startup setting the server refuses, with the server\'s FATAL, as a direct connection does', async () => {
    const extra = { options: '-c statement_timeout=soon' };
    const direct = await psql(['select 1'], { extra, host: lab().primary.host, port: lab().primary.port });
    const through = await psql(['select 1'], { extra });
    expect(direct.code).toBe(2);
    expect(through.code).toBe(2);
    expect(through.stderr).toMatch(/FATAL:  invalid value for parameter "statement_timeout": "soon"/);
  });

  it('refuses a wrong password with FATAL 28P01 and exit code 2', async () => {
    const r = await psql(['select 1'], { password: 'not-the-password' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/FATAL:  password authentication failed for user "app"/);
    const client = new pg.Client({ connectionString: gw.url('app', 'app', 'not-the-password') });
    await expect(client.connect()).rejects.toMatchObject({ code: '28P01', severity: 'FATAL' });
  });
});
