// What the global setup started, as tests see it: addresses, credentials and small helpers.
import pg from 'pg';
import { inject } from 'vitest';
import { waitForReplay, type SandboxUser, type ServerAddress } from '../../src/sandbox/postgres-cluster.js';

export type { SandboxUser, ServerAddress };

export interface LabInfo {
  primary: ServerAddress;
  replica: ServerAddress;
  superuser: string;
  superuserPassword: string;
  users: SandboxUser[];
  database: string; // 'app'
  redisUrl: string;
  pgVersion: string;
  binDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabInfo;
  }
}

export function lab(): LabInfo {
  return inject('lab');
}

export function pgUrl(addr: ServerAddress, user: string, password: string, db: string): string {
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${addr.port}/${encodeURIComponent(db)}`;
}

/** Runs one statement as the superuser directly against the lab (not through pgway), for assertions. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string, params?: unknown[], target: 'primary' | 'replica' = 'primary', database?: string,
): Promise<pg.QueryResult<R>> {
  const info = lab();
  const client = new pg.Client({ ...info[target], user: info.superuser, password: info.superuserPassword, database: database ?? info.database });
  client.on('error', () => {}); // a server restarted by a test must not crash the worker through an idle helper
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Resolves when the lab replica has replayed everything written on the primary so far. */
export async function waitForReplica(): Promise<void> {
  const info = lab();
  await waitForReplay(info.primary, info.replica, info.superuserPassword);
}
