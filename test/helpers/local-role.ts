/**
 * For the tests of settings made under a SET LOCAL ROLE: a transaction-mode gateway with two server
 * connections, and a role granted to `app` (not inherited) that may not set `param`, which `app`
 * may. A SET of it laid on under that role is refused (42501) and the client ended.
 */
import { afterAll, beforeAll } from 'vitest';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { twoConnectionSteering } from './steering.js';
import { adminQuery } from '../harness/lab.js';
import { errorFields, type RawClient } from './raw-client.js';
import { Q, summary } from './wire-script.js';

/** What the steps answered and what `read` gave: directly, and through pgway on its first connection, then its second. */
export interface AcrossConnections {
  direct: string[];
  want: string[];
  through: string[];
  here: string[];
  there: string[];
}

export interface RoleThatMayNotSet {
  gateway(): TestGateway;
  /**
   * Runs `steps` on a direct connection and through pgway on its first server connection (`raw`
   * opens a client), then reads the setting there, and through pgway again once the client is
   * steered to the second connection.
   */
  acrossConnections(raw: (t: 'direct' | TestGateway) => Promise<RawClient>, steps: (c: RawClient) => Promise<string[]>): Promise<AcrossConnections>;
  /** current_user and the parameter, as DataRow, CommandComplete and ReadyForQuery; an error as `severity code: message`; 'closed' at the end. */
  read(c: RawClient): Promise<string[]>;
}

export function roleThatMayNotSet(role: string, param: string): RoleThatMayNotSet {
  let gw: TestGateway | undefined;
  beforeAll(async () => {
    gw = await startGateway({ pool: '{ mode: transaction, size: 2, query_wait_timeout_ms: 4000 }' });
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
    await adminQuery(`CREATE ROLE ${role} NOLOGIN`);
    await adminQuery(`GRANT ${role} TO app WITH INHERIT FALSE`);
    await adminQuery(`GRANT SET ON PARAMETER ${param} TO app`);
  });
  afterAll(async () => {
    await gw?.stop();
    await adminQuery(`REVOKE SET ON PARAMETER ${param} FROM app`).catch(() => undefined);
    await adminQuery(`REVOKE ${role} FROM app`).catch(() => undefined);
    await adminQuery(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  });
  const query = Q(`SELECT current_user::text, current_setting('${param}')`);
  const lab: RoleThatMayNotSet = {
    gateway: () => gw!,
    async acrossConnections(raw, steps) {
      const d = await raw('direct');
      const direct = await steps(d);
      const want = await lab.read(d);
      const steer = await twoConnectionSteering(gw!);
      try {
        const x = await raw(gw!);
        await steer.to(1);
        const through = await steps(x);
        const here = await lab.read(x);
        await steer.to(2);
        const there = await lab.read(x);
        return { direct, want, through, here, there };
      } finally {
        await steer.done();
      }
    },
    async read(c) {
      c.write(query);
      const out: string[] = [];
      for (let i = 0; i < 10; i++) {
        const m = await c.readMessage(5000);
        if (m === undefined) return [...out, 'closed'];
        if (m.type === 'E') {
          const f = errorFields(m.body);
          out.push(`${f.get('S')} ${f.get('C')}: ${f.get('M')}`);
        } else if (m.type === 'D' || m.type === 'C' || m.type === 'Z') out.push(summary(m));
        if (m.type === 'Z') return out;
      }
      return out;
    },
  };
  return lab;
}
