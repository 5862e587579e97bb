// Found by review round 31 B, and fixed.
// Two small ways pgway reads a StartupMessage unlike PostgreSQL 18:
// - PostgreSQL's limit (MAX_STARTUP_PACKET_LENGTH, 10000) is on the packet *after* its 4-byte
//   length word, so it takes packets of up to 10004 bytes; pgway refuses 10001..10004 with 08P01.
// - PostgreSQL splits `options` into words at any isspace() character (pg_split_opts), so \r, \f
//   and \v separate switches too; pgway splits at space, tab and newline only, and refuses the
//   login with 42601.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { lab, pgUrl } from './harness/lab.js';
import { errorFields, RawClient, startupPacket } from './helpers/raw-client.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ pool: '{ mode: transaction, size: 2 }' });
});
afterAll(async () => {
  await gw?.stop();
});

async function firstAnswer(addr: { host: string; port: number }, bytes: Buffer): Promise<string> {
  const c = await RawClient.connect(addr);
  c.write(bytes);
  const m = await c.readMessage(3000).catch(() => undefined);
  c.destroy();
  if (!m) return 'closed';
  if (m.type === 'E') return `E ${errorFields(m.body).get('C')}`;
  return m.type === 'R' ? `R ${m.body.readInt32BE(0)}` : m.type;
}

describe('a StartupMessage of 10,004 bytes (10,000 after its length word)', () => {
  it('is read, as PostgreSQL reads it: the login goes on to the SCRAM challenge', async () => {
    const base = startupPacket({ user: 'app', database: 'app', application_name: '' }).length;
    const packet = startupPacket({ user: 'app', database: 'app', application_name: 'a'.repeat(10_004 - base) });
    expect(packet.length).toBe(10_004);
    expect(await firstAnswer(lab().primary, packet)).toBe('R 10');
    expect(await firstAnswer({ host: gw.host, port: gw.port }, packet)).toBe('R 10');
  });
});

async function settingsAfter(url: string, options: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, options } as pg.ClientConfig);
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ wm: string; g: string }>("SELECT current_setting('work_mem') wm, current_setting('geqo') g");
    await c.end();
    return `${r.rows[0]!.wm} ${r.rows[0]!.g}`;
  } catch (err) {
    return `error ${(err as { code?: string }).code}`;
  }
}

describe('options whose switches are separated by \\r, \\f or \\v', () => {
  it.each(['\r', '\f', '\v'])('%j separates two -c switches, as PostgreSQL reads it', async (sep) => {
    const options = `-c work_mem=2MB${sep}-c geqo=off`;
    const want = await settingsAfter(pgUrl(lab().primary, 'app', 'app-secret', 'app'), options);
    expect(want).toBe('2MB off');
    expect(await settingsAfter(gw.url(), options)).toBe(want);
  });
});
