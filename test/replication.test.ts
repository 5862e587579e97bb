// Replication connections through pgway: never pooled, a straight pipe to the primary.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { adminQuery } from './harness/lab.js';
import { conninfo, run, type RunResult } from './helpers/run.js';
import { dataRowValues, errorFields, queryMessage, RawClient, rawTrustLogin, startupPacket, typedMessage } from './helpers/raw-client.js';

let gw: TestGateway;

// repltrust logs in to pgway without a password (so a raw socket can), and to the server as repluser.
const AUTH = `auth:
  method: scram-sha-256
  users:
    - { name: app, password: app-secret }
    - { name: repluser, password: repl-secret }
    - { name: repltrust, method: trust, server_user: repluser, server_password: repl-secret }`;

beforeAll(async () => {
  gw = await startGateway({ auth: AUTH });
});

afterAll(async () => {
  await gw?.stop();
});

function psqlReplication(mode: string, commands: string[], user = 'repluser', password = 'repl-secret'): Promise<RunResult> {
  const info = conninfo({ host: gw.host, port: gw.port, user, dbname: 'app', replication: mode, application_name: `repl-test-${mode}` });
  const args = ['-X', '-At', '-d', info];
  for (const c of commands) args.push('-c', c);
  return run('psql', args, { env: { PGPASSWORD: password } });
}

async function primarySystemId(): Promise<string> {
  const r = await adminQuery<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
  return r.rows[0]!.id;
}

describe('replication connections through pgway', () => {
  it('answers IDENTIFY_SYSTEM (replication=database) with the primary\'s system identifier', async () => {
    const r = await psqlReplication('database', ['IDENTIFY_SYSTEM']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [systemId, timeline, xlogpos, dbname] = r.stdout.trim().split('|');
    expect(systemId).toBe(await primarySystemId());
    expect(Number(timeline)).toBeGreaterThan(0);
    expect(xlogpos).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(dbname).toBe('app');
  });

  it('answers IDENTIFY_SYSTEM on a physical (replication=true) connection', async () => {
    const r = await psqlReplication('true', ['IDENTIFY_SYSTEM']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [systemId, , , dbname] = r.stdout.trim().split('|');
    expect(systemId).toBe(await primarySystemId());
    expect(dbname).toBe('');
  });

  it('is a walsender on the primary, not a pooled connection', async () => {
    const r = await psqlReplication('database', [
      'SELECT backend_type, pg_is_in_recovery() FROM pg_stat_activity WHERE pid = pg_backend_pid()',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('walsender|f\n');
    // A pool would keep an idle server connection for repluser after the client left; a pipe does not.
    const left = await adminQuery("SELECT pid FROM pg_stat_activity WHERE usename = 'repluser' AND backend_type = 'client backend'");
    expect(left.rows).toEqual([]);
  });

  it('answers a command sent with the StartupMessage, before the login reply (nothing is lost)', async () => {
    const client = await RawClient.connect({ host: gw.host, port: gw.port });
    try {
      // The second command's first 7 bytes come with the first, the rest after the login reply.
      const second = queryMessage('IDENTIFY_SYSTEM');
      client.write(Buffer.concat([
        startupPacket({ user: 'repltrust', database: 'app', replication: 'database' }),
        queryMessage('IDENTIFY_SYSTEM'),
        second.subarray(0, 7),
      ]));
      const login = await client.readUntil('Z');
      expect(login.before.map((m) => m.type)).toContain('R');
      client.write(second.subarray(7));
      for (let i = 0; i < 2; i++) {
        const answer = await client.readUntil('Z');
        const row = answer.before.find((m) => m.type === 'D');
        expect(row && dataRowValues(row.body)[0]).toBe(await primarySystemId());
        expect(answer.before.filter((m) => m.type === 'E')).toEqual([]);
      }
    } finally {
      client.destroy();
    }
  });

  it('streams WAL with START_REPLICATION and closes the walsender when the client leaves', async () => {
    const appName = `repl-stream-${process.pid}`;
    const { client } = await rawTrustLogin({ host: gw.host, port: gw.port },
      { user: 'repltrust', database: 'app', replication: 'true', application_name: appName });
    try {
      client.write(queryMessage('IDENTIFY_SYSTEM'));
      const { message: row } = await client.readUntil('D');
      await client.readUntil('Z');
      const [systemId, timeline, xlogpos] = dataRowValues(row.body);
      expect(systemId).toBe(await primarySystemId());

      // Start at the beginning of the current 16 MB segment: WAL the server has, so it sends at once.
      const [hi, lo] = xlogpos!.split('/').map((h) => parseInt(h, 16)) as [number, number];
      const startLo = lo - (lo % (16 * 1024 * 1024));
      const start = `${hi.toString(16).toUpperCase()}/${startLo.toString(16).toUpperCase()}`;
      client.write(queryMessage(`START_REPLICATION PHYSICAL ${start} TIMELINE ${timeline}`));
      const copyBoth = await client.readMessage();
      expect(copyBoth?.type, copyBoth?.type === 'E' ? errorFields(copyBoth.body).get('M') : '').toBe('W');
      let xlog: Buffer | undefined;
      for (let i = 0; i < 100 && !xlog; i++) {
        const m = await client.readMessage();
        expect(m?.type).toBe('d');
        if (m!.body[0] === 0x77 /* w: XLogData */) xlog = m!.body;
      }
      expect(xlog).toBeDefined();
      const dataStart = xlog!.readBigUInt64BE(1);
      expect(dataStart).toBe((BigInt(hi) << 32n) | BigInt(startLo));
      expect(xlog!.length).toBeGreaterThan(25);
      client.write(typedMessage('c')); // CopyDone
    } finally {
      client.destroy();
    }
    let senders = -1;
    for (let i = 0; i < 100 && senders !== 0; i++) {
      const r = await adminQuery("SELECT 1 FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = $1", [appName]);
      senders = r.rowCount ?? -1;
      if (senders !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(senders).toBe(0);
  });

  it('passes on the server\'s refusal of a role without REPLICATION', async () => {
    // pg sends `replication` from the connection string's query; @types/pg does not declare the option.
    const client = new pg.Client({ connectionString: `${gw.url('app')}?replication=database` });
    const err = await client.connect().then(() => undefined, (e: Error & { code?: string; severity?: string }) => e);
    await client.end().catch(() => undefined);
    expect(err).toBeDefined();
    // PostgreSQL: FATAL 42501 "permission denied to start WAL sender".
    expect(err).toMatchObject({ code: '42501', severity: 'FATAL' });
    expect(err?.message).toMatch(/permission denied to start WAL sender/);
  });
});
