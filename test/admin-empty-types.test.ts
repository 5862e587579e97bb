// Admin console column types do not depend on the rows: SHOW SERVERS' port is int8 whether or not a
// server connection is open, and SHOW STATS' counters are int8 before any pool exists, so a typed
// client never sees a column change type from one SHOW to the next.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: session, size: 2, query_wait_timeout_ms: 3000 }' });
});
afterAll(() => gw?.stop());

const INT8 = 20;

async function portType(): Promise<{ rows: number; type: number | undefined }> {
  const admin = new pg.Client({ connectionString: gw.url('admin', 'pgway') });
  await admin.connect();
  const r = await admin.query('SHOW SERVERS');
  await admin.end();
  return { rows: r.rows.length, type: r.fields.find((f) => f.name === 'port')?.dataTypeID };
}

describe('SHOW SERVERS column types do not depend on whether there are rows', () => {
  it('port is int8 with no server connection open, as it is with one', async () => {
    const none = await portType();
    expect(none.rows).toBe(0);
    const c = new pg.Client({ connectionString: gw.url('app', 'app') });
    await c.connect();
    try {
      const some = await portType();
      expect(some.rows).toBeGreaterThan(0);
      expect(some.type).toBe(INT8);
    } finally {
      await c.end();
    }
    // pgway: 25 (text) while there are no rows
    expect(none.type).toBe(INT8);
  });
});
