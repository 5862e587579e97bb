// Found by review round 34 A, and fixed (pins are reported once pgway's questions are answered):
// Round 34 A: pgway_session_pins_total counts pins "once the pin holds"; a pin the server's answer
// then lifts (a lock call under a WHERE that found no row) held nothing.
import { describe, expect, it } from 'vitest';
import { fileGatewayTests, type FileGateway } from './helpers/file-gateway.js';

const DB = 'r34a_pins_question';
const { files, connect } = fileGatewayTests(DB);

async function pins(gw: FileGateway, reason: string): Promise<number> {
  const series = `pgway_session_pins_total{pool="${DB}/app",reason="${reason}"}`;
  const line = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('pins the server says are not held', () => {
  it('a job queue polling an empty queue takes no lock, and no pin is counted or logged', async () => {
    const gw = await files.start({ pool: '{ mode: transaction, size: 2 }', http: true, logLevel: 'debug' });
    const setup = await connect(gw.url());
    await setup.query('DROP TABLE IF EXISTS r34a_jobs; CREATE TABLE r34a_jobs (id int)');
    const before = { lock: await pins(gw, 'advisory-lock'), auth: await pins(gw, 'session-authorization') };
    const c = await connect(gw.url());
    for (let i = 0; i < 3; i++) {
      const r = await c.query('SELECT pg_advisory_lock(id) FROM r34a_jobs WHERE id = 7');
      expect(r.rowCount).toBe(0);
    }
    await c.query('SET SESSION AUTHORIZATION app');
    await c.query('SELECT 1');
    const held = await c.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()");
    expect(held.rows[0].n).toBe(0);
    const counted = { lock: (await pins(gw, 'advisory-lock')) - before.lock, auth: (await pins(gw, 'session-authorization')) - before.auth };
    const logged = gw.logs.filter((l) => l.includes('client pinned to its server connection')).length;
    expect({ counted, logged }).toEqual({ counted: { lock: 0, auth: 0 }, logged: 0 });
  });
});
