/** postgres.js instances and pg clients a test opens, ended after it in bounded time. */
import pg from 'pg';
import postgres from 'postgres';
import { sleep } from './pg-helpers.js';

export type PostgresOptions = postgres.Options<Record<string, postgres.PostgresType>>;

export class OpenedClients {
  private readonly sqls: postgres.Sql[] = [];
  private readonly pgs: pg.Client[] = [];

  /** A postgres.js instance of one connection (pipelines on it), notices ignored. */
  sql(url: string, options: PostgresOptions = {}): postgres.Sql {
    const sql = postgres(url, { max: 1, onnotice: () => undefined, connect_timeout: 10, idle_timeout: 0, ...options });
    this.sqls.push(sql);
    return sql;
  }

  async pg(url: string): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    this.pgs.push(c);
    await c.connect();
    return c;
  }

  /** Ends the postgres.js instances opened so far (a hung one is left after 3 s). */
  async endSql(): Promise<void> {
    await Promise.all(this.sqls.splice(0).map((s) => Promise.race([s.end({ timeout: 1 }).catch(() => undefined), sleep(3000)])));
  }

  async endAll(): Promise<void> {
    await this.endSql();
    await Promise.all(this.pgs.splice(0).map((c) => Promise.race([c.end().catch(() => undefined), sleep(2000)])));
  }
}
