// Found by review round 23 C, and fixed:
// A SET sent through the extended protocol and committed by a COMMIT later in the same Sync group
// (a pipelined batch, as pgx's SendBatch or a pipelining driver sends it). PostgreSQL keeps the SET: the
// COMMIT ran after it. pgway classifies each Parse on its own, and a Parse of `COMMIT` carries no
// transaction marker, so SessionState.settle() counts the COMMIT only for what *earlier* requests
// staged; the SET of the same request is then dropped by a later error in the group, or by the
// ROLLBACK of a later transaction of the group. Through pgway the client loses its setting on the
// next connection (and, in the ROLLBACK case, the connection keeps it, recorded as holding the
// client's settings without it: the next client with the same startup settings inherits it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { twoConnectionSteering } from './helpers/steering.js';
import { answers, B, cat, E, P, Q, rawTargets, S } from './helpers/wire-script.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => { await gw?.stop(); });
const { raw } = rawTargets();

const run = (sql: string): Buffer => cat(P('', sql), B(''), E(''));
const SHOW = Q("SELECT current_setting('work_mem')");

const GROUPS = {
  'an error later in the group': cat(run('BEGIN'), run("SET work_mem = '1234kB'"), run('COMMIT'), run('SELECT 1/0'), S),
  'the ROLLBACK of a later transaction of the group':
    cat(run('BEGIN'), run("SET work_mem = '1234kB'"), run('COMMIT'), run('BEGIN'), run("SET work_mem = '2345kB'"), run('ROLLBACK'), S),
};

describe('a SET committed by a COMMIT later in the same extended-protocol group', () => {
  for (const [name, group] of Object.entries(GROUPS)) {
    it(`survives ${name}, on every connection, and reaches no other client, as on a direct connection`, async () => {
      const show = async (c: Awaited<ReturnType<typeof raw>>): Promise<string> => {
        c.write(SHOW);
        return (await answers(c)).find((s) => s.startsWith('D:'))!.slice(2);
      };
      // direct PostgreSQL
      const d = await raw('direct');
      d.write(group);
      await answers(d);
      const directSeen = await show(d);
      const directFresh = await show(await raw('direct'));
      expect({ directSeen, directFresh }).toEqual({ directSeen: '1234kB', directFresh: '4MB' });

      // through pgway: the group on connection 1, then reads there and on connection 2, and a fresh client on 1
      const steer = await twoConnectionSteering(gw);
      try {
        const x = await raw(gw);
        await steer.to(1);
        x.write(group);
        await answers(x);
        const here = await show(x);
        await steer.to(2);
        const there = await show(x);
        const fresh = await raw(gw);
        await steer.to(1);
        const freshThere = await show(fresh);
        expect({ here, there, freshThere }).toEqual({ here: directSeen, there: directSeen, freshThere: directFresh });
      } finally {
        await steer.done();
      }
    });
  }
});
