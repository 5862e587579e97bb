// The extended-protocol part of the differential fuzzers' grammar (protocol-fuzz, pool-modes-fuzz): a group
// of Parse/Bind/Describe/Execute/Close/Flush messages over a list of statements whose first entries both
// share (10: BEGIN, which makes the client hold its connection, 11: COMMIT in its place where it may not;
// 14: set_config of a bound value; 0, 1, 4, 8: what an unnamed Parse/Bind/Execute runs). `model` is
// what the client has prepared, by name.
import { type Rng } from './fuzz-driver.js';
import { Pt } from './fuzz-answers.js';
import { B, C, D, E, H } from './wire-script.js';

export type FuzzMsg = { kind: 'P' | 'B' | 'DS' | 'DP' | 'E' | 'CS' | 'CP' | 'H' | 'S' | 'Q'; bytes: Buffer; text: string };
export interface FuzzStatement { sql: string; params: number }
/** What a mode leaves out: named statements (max_prepared_statements 0), transaction blocks (statement mode). */
export interface GroupLimits { unnamed?: boolean; noHold?: boolean }

export function extGroup(r: Rng, stmts: readonly FuzzStatement[], T: (s: string) => string, allowHold: boolean, model: Map<string, number>, msgs: FuzzMsg[], only: GroupLimits = {}): void {
  const n = 1 + r.int(6);
  for (let i = 0; i < n; i++) {
    const g = r.int(12);
    let name = only.unnamed ? '' : r.pick(['', 'a', 'b', 'a']);
    if (name === '' && g >= 3 && !model.has('') && !only.unnamed) name = r.pick(['a', 'b']);
    const portal = r.pick(['', '', 'p1']);
    if (g < 3) {
      let si = r.int(stmts.length);
      if ((!allowHold || only.noHold) && si === 10) si = 11;
      const typed = stmts[si]!.params === 1 && r.chance(0.4);
      msgs.push({ kind: 'P', bytes: Pt(name, T(stmts[si]!.sql), typed ? [23] : []), text: `P(${name},${si}${typed ? ',int4' : ''})` });
      if (name !== '' && !model.has(name)) model.set(name, si);
      if (name === '') model.set('', si);
    } else if (g < 6) {
      const si = model.get(name);
      const np = si === undefined ? r.int(2) : r.chance(0.9) ? stmts[si]!.params : 1 - stmts[si]!.params;
      const vals = Array.from({ length: np }, () => (si === 14 ? r.pick(['7MB', '8MB']) : r.pick(['0', '1', '3', '2'])));
      msgs.push({ kind: 'B', bytes: B(name, vals, portal), text: `B(${portal},${name},[${vals}])` });
      if (r.chance(0.7)) {
        const rows = r.pick([0, 0, 1, 2]);
        msgs.push({ kind: 'E', bytes: E(portal, rows), text: `E(${portal},${rows})` });
      }
    } else if (g < 7) {
      msgs.push({ kind: 'DS', bytes: D('S', name), text: `DS(${name})` });
    } else if (g < 8) {
      msgs.push({ kind: 'DP', bytes: D('P', portal), text: `DP(${portal})` });
    } else if (g < 9) {
      const rows = r.pick([0, 1, 2]);
      msgs.push({ kind: 'E', bytes: E(portal, rows), text: `E(${portal},${rows})` });
    } else if (g < 10) {
      if (name !== '' && r.chance(0.7)) { msgs.push({ kind: 'CS', bytes: C('S', name), text: `CS(${name})` }); model.delete(name); }
      else msgs.push({ kind: 'CP', bytes: C('P', portal), text: `CP(${portal})` });
    } else if (g < 11) {
      msgs.push({ kind: 'H', bytes: H, text: 'H' });
    } else {
      const si = r.pick([0, 1, 4, 8]);
      const vals = stmts[si]!.params ? ['2'] : [];
      msgs.push({ kind: 'P', bytes: Pt('', T(stmts[si]!.sql)), text: `P(,${si})` }, { kind: 'B', bytes: B('', vals, ''), text: `B(,,[${vals}])` },
        { kind: 'E', bytes: E('', 0), text: 'E(,0)' });
      model.set('', si);
    }
  }
}
