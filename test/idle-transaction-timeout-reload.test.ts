// idle_transaction_timeout_ms changed by RELOAD reaches clients already idle in their transaction,
// timed from when they went idle: turned off (0) or raised, the old deadline ends nobody; turned on
// or lowered, it ends a client already idle past the new value (25P03). PgBouncer's janitor reads
// idle_transaction_timeout on each pass the same way. PostgreSQL itself has no such limit here: a
// client idle in its transaction goes on.
import { describe, expect, it } from 'vitest';
import { lab } from './harness/lab.js';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';
import { errorOf, sleep, sqlstate, waitFor } from './helpers/pg-helpers.js';

const DB = 'idle_tx_reload';
const { files, connect } = fileGatewayTests(DB);
const pool = (ms: number): string => `{ mode: transaction, size: 2, idle_transaction_timeout_ms: ${ms}, query_wait_timeout_ms: 5000 }`;

describe('idle_transaction_timeout_ms changed by RELOAD', () => {
  it('direct PostgreSQL: a client idle in a transaction for 2.5 s goes on', async () => {
    const l = lab();
    const c = await connect(`postgres://app:app-secret@${l.primary.host}:${l.primary.port}/${DB}`);
    await c.query('BEGIN');
    await sleep(2500);
    expect((await c.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    await c.query('COMMIT');
  });

  it('turned off (0): a client already idle in its transaction is not ended at the old deadline', async () => {
    const gw: FileGateway = await files.start({ pool: pool(1500) });
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('SELECT 1');
    gw.write({ pool: pool(0) });
    await gw.gateway.reload();
    await sleep(2500); // past the old 1.5 s deadline
    const err = await errorOf(c.query('SELECT 1 AS n'));
    expect((err as Error | undefined)?.message).toBeUndefined();
  });

  it('raised: a client already idle in its transaction is not ended at the old deadline', async () => {
    const gw: FileGateway = await files.start({ pool: pool(1500) });
    const c = await connect(gw.url());
    await c.query('BEGIN');
    await c.query('SELECT 1');
    gw.write({ pool: pool(60_000) });
    await gw.gateway.reload();
    await sleep(2500);
    const err = await errorOf(c.query('SELECT 1 AS n'));
    expect((err as Error | undefined)?.message).toBeUndefined();
  });

  it.each([
    ['turned on', 0],
    ['lowered', 60_000],
  ])('%s: a client already idle in its transaction past the new value is ended (25P03)', async (_how, before) => {
    const gw: FileGateway = await files.start({ pool: pool(before) });
    const c = await connect(gw.url());
    const errors: unknown[] = [];
    c.on('error', (err) => errors.push(err));
    await c.query('BEGIN');
    await c.query('SELECT 1');
    await sleep(300);
    gw.write({ pool: pool(200) });
    await gw.gateway.reload();
    await waitFor('the client to be ended with 25P03', () => errors.some((e) => sqlstate(e) === '25P03'));
    expect(await errorOf(c.query('SELECT 1'))).toBeDefined();
  });
});
