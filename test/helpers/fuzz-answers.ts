// What the differential fuzzers (protocol-fuzz, stale-plan-fuzz, pool-modes-fuzz) send and compare: a Parse with
// parameter types, and each answer a raw client reads summed up in a short string, so that two
// targets' answers compare as arrays; and how many answers a request is owed (readReq).
import { dataRowValues, errorFields, typedMessage, cstring, type RawClient } from './raw-client.js';
import { cat, i16, i32 } from './wire-script.js';
import type { FuzzMsg } from './fuzz-grammar.js';

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

/** Reads the answers a request owes: up to ReadyForQuery, or, for a Flush-ended one, one answer per message or an error. */
export async function readReq(c: RawClient, req: { msgs: readonly FuzzMsg[]; sync: boolean }, timeoutMs = 3000): Promise<{ out: string[]; status?: string }> {
  const out: string[] = [];
  const status = await readUpToReady(c, req.msgs.filter((m) => m.kind === 'S' || m.kind === 'Q').length, out, timeoutMs);
  if (out[out.length - 1] === '<closed>') return { out };
  if (req.sync) return { out, status };
  const lastZ = req.msgs.map((m) => m.kind === 'S' || m.kind === 'Q').lastIndexOf(true);
  let owed = req.msgs.slice(lastZ + 1).filter((m) => m.kind !== 'H').length;
  while (owed > 0) {
    const m = await c.readMessage(timeoutMs);
    if (!m) { out.push('<closed>'); return { out }; }
    const s = answerSummary(m); if (s) out.push(s);
    if (m.type === 'E') return { out };
    if ('123nTCsI'.includes(m.type)) owed--;
  }
  return { out };
}
