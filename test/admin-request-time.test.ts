// Found by review round 32 C, and fixed: SHOW CLIENTS' and SHOW SERVERS' request_time ("Timestamp of latest client
// request" / "When last request was issued", PgBouncer 1.18) are not the last request.
//   - A client waiting for a server connection shows request_time '' (or its previous request's time):
//     pgway stamps a request only when it is written to a server. PgBouncer 1.18, same steps: the
//     waiting client's request_time is when it sent the query.
//   - A server connection a client keeps across requests (here: a transaction block) shows the time
//     it was attached: pgway stamps it at attach and detach only. PgBouncer 1.18, same steps: the time
//     of the client's latest request on it.
// An operator looking for the client stuck waiting, or for a connection that has been idle in
// transaction for a long time, reads the wrong times.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests } from './helpers/file-gateway.js';
import { sleep, waitFor } from './helpers/pg-helpers.js';

const DB = 'review_request_time';
const { files, connect } = fileGatewayTests(DB);

type Row = Record<string, string | null>;
/** SHOW's time format, whole seconds in UTC (as PgBouncer's format_time_s). */
const asShown = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

describe('request_time in SHOW CLIENTS and SHOW SERVERS', () => {
  it('is the latest request: a waiting client\'s, and the one run on a connection kept across requests', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 1 }' });
    const admin = await connect(gw.url('admin', 'pgway'));
    const holder = await connect(gw.url());
    const waiter = await connect(gw.url());
    await holder.query('BEGIN');
    await sleep(1100);
    const holderLast = Date.now();
    await holder.query('SELECT 1');
    await sleep(1100);
    const sentAt = Date.now();
    const waited = waiter.query('SELECT 1');
    let clients: Row[] = [];
    await waitFor('the waiter waits', async () => {
      clients = (await admin.query<Row>('SHOW CLIENTS')).rows;
      return clients.some((c) => c.state === 'waiting');
    }, 2000);
    const server = (await admin.query<Row>('SHOW SERVERS')).rows[0];
    const waiting = clients.find((c) => c.state === 'waiting');
    await holder.query('COMMIT');
    await waited;
    // Either second the request fell into, as the times are shown in whole seconds.
    const around = (ms: number): string[] => [asShown(ms - 50), asShown(ms + 50)];
    expect({
      waitingClient: around(sentAt).includes(waiting?.request_time ?? ''),
      serverKeptAcrossRequests: around(holderLast).includes(server?.request_time ?? ''),
    }, `waiting client's request_time "${waiting?.request_time}" (sent ${asShown(sentAt)}); server's "${server?.request_time}" (last request ${asShown(holderLast)})`).toEqual({ waitingClient: true, serverKeptAcrossRequests: true });
  });
});
