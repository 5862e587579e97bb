// reserve_size / reserve_timeout_ms: a reserve connection opens only while the client first in line
// has waited reserve_timeout_ms (as PgBouncer's launch_new_connection decides), so a client that
// arrives after the reserve opened for another waits its own reserve_timeout_ms before one opens
// for it; until then a connection given back serves it. There is no direct-PostgreSQL half: a
// direct connection has no pool to wait for.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { pidOf, sleep } from './helpers/pg-helpers.js';

const DB = 'reserve_pool';
const { files, connect } = fileGatewayTests(DB);
describe('reserve_size / reserve_timeout_ms', () => {
  it('a client arriving after the reserve opened for another waits its own reserve_timeout_ms before a reserve connection opens for it', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, reserve_size: 2, reserve_timeout_ms: 2000, query_wait_timeout_ms: 10000 }' });
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(gw.url())));
    const servers = (): number => gw.gateway.servers().length + gw.gateway.pools().reduce((n, p) => n + p.serversLogin, 0);
    const waiting = (): number => gw.gateway.pools().reduce((n, p) => n + p.clientsWaiting, 0);
    await a!.query('BEGIN');
    await b!.query('BEGIN'); // waits reserve_timeout_ms, then gets reserve connection #2
    expect(servers()).toBe(2);
    let cServed = false;
    const cq = c!.query('BEGIN').then(() => { cServed = true; });
    await sleep(800); // well inside C's own reserve_timeout_ms
    expect(cServed, 'C was served on a third (reserve) connection before it waited reserve_timeout_ms').toBe(false);
    expect(servers()).toBe(2);
    expect(waiting()).toBe(1);
    // Once C has waited reserve_timeout_ms itself, the last reserve connection opens for it.
    await cq;
    expect(servers()).toBe(3);
    await Promise.all([a!, b!, c!].map((cl) => cl.query('COMMIT')));
  });

  it('a connection given back serves the client still inside its reserve_timeout_ms', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1, reserve_size: 2, reserve_timeout_ms: 2000, query_wait_timeout_ms: 10000 }' });
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(gw.url())));
    const servers = (): number => gw.gateway.servers().length + gw.gateway.pools().reduce((n, p) => n + p.serversLogin, 0);
    await a!.query('BEGIN');
    const aPid = await pidOf(a!);
    await b!.query('BEGIN');
    const cq = c!.query('BEGIN');
    await sleep(300);
    await a!.query('COMMIT'); // A's connection goes to C
    await cq;
    expect(await pidOf(c!)).toBe(aPid);
    expect(servers()).toBe(2);
    await Promise.all([b!, c!].map((cl) => cl.query('COMMIT')));
  });
});
