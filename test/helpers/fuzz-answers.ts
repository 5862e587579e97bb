// What the differential fuzzers (protocol-fuzz, stale-plan-fuzz) send and compare: a Parse with
// parameter types, and each answer a raw client reads summed up in a short string, so that two
// targets' answers compare as arrays.
import { dataRowValues, errorFields, typedMessage, cstring, type RawClient } from './raw-client.js';
import { cat, i16, i32 } from './wire-script.js';

/** Parse with optional parameter types. */
export const Pt = (name: string, sql: string, types: number[] = []): Buffer =>
  typedMessage('P', cat(cstring(name), cstring(sql), i16(types.length), ...types.map(i32)));

/** An answer as the fuzzers compare it (undefined: one they skip, ParameterStatus and BackendKeyData). */
export function answerSummary(m: { type: string; body: Buffer }): string | undefined {
  switch (m.type) {
    case 'S': case 'K': return undefined;
    case 'N': return `N:${errorFields(m.body).get('C')}`;
    case 'E': return `E:${errorFields(m.body).get('C')}`;
    case 'D': return `D:${dataRowValues(m.body).join(',')}`;
    case 'C': return `C:${m.body.toString('utf8', 0, m.body.length - 1)}`;
    case 'Z': return `Z:${String.fromCharCode(m.body[0]!)}`;
    case 'T': {
      const n = m.body.readInt16BE(0); const cols: string[] = []; let p = 2;
      for (let i = 0; i < n; i++) { const z = m.body.indexOf(0, p); const name = m.body.toString('utf8', p, z); p = z + 1; const typ = m.body.readInt32BE(p + 6); const fmt = m.body.readInt16BE(p + 16); p += 18; cols.push(`${name}/${typ}/${fmt}`); }
      return `T:${cols.join(',')}`;
    }
    case 't': return `t:${m.body.toString('hex')}`;
    default: return m.type;
  }
}

/** Reads answers up to the `readyCount`th ReadyForQuery into `out`; the last status, or undefined if the connection closed. */
export async function readUpToReady(c: RawClient, readyCount: number, out: string[], timeoutMs: number): Promise<string | undefined> {
  let status: string | undefined;
  for (let zs = readyCount; zs > 0;) {
    const m = await c.readMessage(timeoutMs);
    if (!m) { out.push('<closed>'); return undefined; }
    const s = answerSummary(m); if (s) out.push(s);
    if (m.type === 'Z') { zs--; status = String.fromCharCode(m.body[0]!); }
  }
  return status;
}
