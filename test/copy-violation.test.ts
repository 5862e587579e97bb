// Found by review rounds 24 B and 25 B, and fixed: a client that breaks the protocol during a
// simple-query COPY FROM STDIN, sending something other than COPY data, its end, Flush or Sync. PostgreSQL
// reads the message inside the COPY and answers ERROR 08P01, then FATAL, and the session ends. pgway
// used to hold such a message (or answer it itself) while waiting for answers the server gives only
// after the COPY, so the client hung. Each of these hung:
// - a Query naming a SQL-level statement (it waited for the answers owed);
// - in statement mode, any Query (one request at a time);
// - an unnamed Parse of EXECUTE of a SQL-level statement (placeForGroup waited);
// - a Close of the unnamed statement, or of a tracked named one (pgway answered CloseComplete itself,
//   behind the COPY's Query slot, and sent nothing).
// Now such a message goes as it is (RequestWriter.write, IN_COPY). Another client is served afterwards.
//   y: [before], then Query COPY t FROM STDIN -> G; CopyData '1\n', the message  -> direct: E, E (FATAL), closed
//   y leaves; z: Query SELECT 42                                             -> T, D:42, C, Z
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answers, upTo, rawTargets, type Target, Q, P, B, C, E, S, cat, copyData } from './helpers/wire-script.js';
import { oneConnectionGateways } from './helpers/one-connection.js';
import { scratchTable } from './helpers/scratch-table.js';
import { adminQuery } from './harness/lab.js';

const { raw } = rawTargets();
const gws = oneConnectionGateways();
let statementMode: TestGateway;
beforeAll(async () => {
  statementMode = await startGateway({ pool: '{ mode: statement, size: 1, query_wait_timeout_ms: 4000 }' });
});
afterAll(async () => {
  await statementMode?.stop();
});
const TABLE = 'copy_violation';
scratchTable(TABLE);
const COPY = Q(`COPY ${TABLE} (a) FROM STDIN`);
const read = (c: Awaited<ReturnType<typeof raw>>, n = 1, ms = 3000) => answers(c, n, ms).catch((e: Error) => [`timeout: ${e.message}`]);

interface Case {
  /** What the client sends first, answered by one ReadyForQuery. */
  before?: Buffer;
  /** The message that breaks the protocol, after the COPY's data. */
  violation: Buffer;
  /** The COPY, its data and the violation all in one write (else the violation waits for the CopyInResponse). */
  oneWrite?: boolean;
}

async function run(t: Target, c: Case): Promise<string[][]> {
  const y = await raw(t);
  const out: string[][] = [];
  if (c.before) {
    y.write(c.before);
    out.push(await read(y));
  }
  if (c.oneWrite) {
    y.write(cat(COPY, copyData('1\n'), c.violation));
  } else {
    y.write(COPY);
    out.push(await upTo(y, 'G', 3000).catch((e: Error) => [`timeout: ${e.message}`]));
    y.write(cat(copyData('1\n'), c.violation));
  }
  out.push(await read(y));
  y.socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const z = await raw(t);
  z.write(Q('SELECT 42 AS v'));
  out.push(await read(z, 1, 6000));
  return out;
}

const CASES: Record<string, Case & { gateways: () => TestGateway[] }> = {
  'a Query naming a SQL-level statement': { violation: Q('PREPARE cv_p AS SELECT 1'), gateways: () => gws },
  'an unnamed Parse of EXECUTE of a SQL-level statement': {
    before: Q('PREPARE cv_x AS SELECT 1'), violation: cat(P('', 'EXECUTE cv_x'), B(''), E(''), S), gateways: () => gws,
  },
  'a Close of the unnamed statement': { before: cat(P('', 'SELECT 1'), S), violation: cat(C('S', ''), S), gateways: () => gws },
  'a Close of the unnamed statement, in the COPY\'s write': {
    before: cat(P('', 'SELECT 1'), S), violation: cat(C('S', ''), S), oneWrite: true, gateways: () => gws,
  },
  // Gateway 0 tracks named statements, whose Close pgway answers itself.
  'a Close of a named statement': { before: cat(P('cv_s', 'SELECT 1'), S), violation: cat(C('S', 'cv_s'), S), gateways: () => [gws[0]!] },
  'statement mode, a Query': { violation: Q('SELECT 1'), gateways: () => [statementMode] },
  'statement mode, a Query, in the COPY\'s write': { violation: Q('SELECT 1'), oneWrite: true, gateways: () => [statementMode] },
};

describe('a message that breaks the protocol inside a simple-query COPY FROM STDIN', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: directly, ERROR and FATAL 08P01 end the session, and another client is served`, async () => {
      const direct = await run('direct', c);
      expect(direct.at(-2)![0]).toMatch(/^timeout: connection closed before a 'Z' message; got G?EE$/);
      expect(direct.at(-1)).toEqual(['T', 'D:42', 'C:SELECT 1', 'Z:I']);
    });
    it(`${name}: through pgway, the same, no hang`, async () => {
      for (const gw of c.gateways()) {
        try {
          expect(await run(gw, c)).toEqual(await run('direct', c));
        } finally {
          await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'COPY ${TABLE}%'`);
        }
      }
    });
  }
});
