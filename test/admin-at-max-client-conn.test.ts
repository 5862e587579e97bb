// Found by review round 31 B, and fixed: the admin console counts against max_client_conn but is never refused, as in PgBouncer.
// At max_client_conn, PgBouncer still lets an admin log in to its console (it does not limit
// the admin database: "dont limit admin db" in client.c), so an operator can
// run SHOW CLIENTS while an application floods the pooler. pgway refuses the admin console too.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';

const MAX = 2;
let gw: TestGateway;
const clients: pg.Client[] = [];
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }', yaml: `limits: { max_client_conn: ${MAX} }` });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await gw?.stop();
});

describe('max_client_conn reached by application clients', () => {
  it('still admits an admin to the console (as PgBouncer does), which can SHOW CLIENTS', async () => {
    for (let i = 0; i < MAX; i++) {
      const c = new pg.Client({ connectionString: gw.url() });
      await c.connect();
      clients.push(c);
    }
    const extra = new pg.Client({ connectionString: gw.url() });
    extra.on('error', () => undefined);
    await expect(extra.connect()).rejects.toMatchObject({ code: '53300' });

    const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
    admin.on('error', () => undefined);
    let outcome: string;
    try {
      await admin.connect();
      clients.push(admin);
      const r = await admin.query({ text: 'SHOW CLIENTS', queryMode: 'simple' } as pg.QueryConfig);
      outcome = `rows ${r.rows.length >= MAX}`;
    } catch (err) {
      outcome = `error ${(err as { code?: string }).code} ${(err as Error).message}`;
    }
    expect(outcome).toBe('rows true');
  });
});
