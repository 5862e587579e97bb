/**
 * The session effects pgway reads from a client's frames: those of a Query's or a Parse's statement
 * text, of a FunctionCall of set_config, and of the values a Bind gives set_config's parameters.
 * None at all, nearly always, is the one frozen NO_EFFECTS: no array per message.
 */
import { parseBool } from '../router/guc-value.js';
import { classifySessionEffectsIn, SET_CONFIG_OID, setConfigCallEffects, type SessionEffect } from '../router/session-effects.js';
import { bindParameterText, bindValueCount, functionCallArgument } from '../wire/decode.js';

export const NO_EFFECTS: readonly SessionEffect[] = Object.freeze([]);
export const UNKNOWN_VALUE: SessionEffect = Object.freeze({ kind: 'pin', reason: 'unparseable-session-statement' });

/**
 * A statement's effects as one Bind runs it: set_config(name, $n, false) sets the value bound to
 * $n, read from the Bind frame (statement name at `stmtAt`). A value pgway cannot read as text (a
 * binary parameter, a malformed frame) pins the client instead. A Bind with fewer values than
 * the $n it reads is refused by the server (08P01): its portal does nothing.
 */
export function withBoundValues(effects: readonly SessionEffect[], buf: Buffer, stmtAt: number, end: number): readonly SessionEffect[] {
  if (effects.length === 0 || !effects.some((e) => e.kind === 'set-param')) return effects;
  const values = bindValueCount(buf, stmtAt, end);
  if (values >= 0 && effects.some((e) => e.kind === 'set-param' && e.param > values)) return NO_EFFECTS;
  return effects.flatMap((e): readonly SessionEffect[] => {
    if (e.kind !== 'set-param') return [e];
    const value = bindParameterText(buf, stmtAt, end, e.param - 1);
    if (value === undefined) return [UNKNOWN_VALUE];
    // As the same call with the value written in: session_authorization pins, seed is not carried.
    return setConfigCallEffects(e.name, value, false);
  });
}

/** Where the statement text starting at `textAt` ends (its NUL, or the frame's end). */
function textEnd(buf: Buffer, textAt: number, end: number): number {
  const nul = buf.indexOf(0, textAt);
  return nul < 0 || nul > end ? end : nul;
}

/**
 * The session effects of the statement text starting at `textAt` (a Query's, or a Parse's after its
 * name: `parsed`, where a COMMIT is one too).
 */
export function effectsOfText(buf: Buffer, textAt: number, end: number, parsed = false): readonly SessionEffect[] {
  const { effects } = classifySessionEffectsIn(buf, textAt, textEnd(buf, textAt, end), parsed);
  return effects.length === 0 ? NO_EFFECTS : effects;
}

/** Where a Parse frame's statement text starts (after the statement's name). */
const parseTextAt = (buf: Buffer, start: number): number => buf.indexOf(0, start + 5) + 1;

/** The session effects of a Parse frame's statement text. */
export function effectsOfParse(buf: Buffer, start: number, end: number): readonly SessionEffect[] {
  return effectsOfText(buf, parseTextAt(buf, start), end, true);
}

/** The statement text of a Parse frame. */
export function textOfParse(buf: Buffer, start: number, end: number): string {
  const textAt = parseTextAt(buf, start);
  return buf.toString('utf8', textAt, textEnd(buf, textAt, end));
}

/**
 * The session effects of a FunctionCall: a call of set_config has those of SELECT set_config(), any
 * other function none that pgway can see (as for one called from SQL). A text argument's bytes are
 * the same in text and binary format.
 */
export function functionCallEffects(buf: Buffer, start: number, end: number): readonly SessionEffect[] {
  if (start + 9 > end || buf.readUInt32BE(start + 5) !== SET_CONFIG_OID) return NO_EFFECTS;
  const text = (index: number): string | null | undefined => {
    const arg = functionCallArgument(buf, start, end, index);
    return arg == null ? arg : arg.bytes.toString('utf8');
  };
  const local = functionCallArgument(buf, start, end, 2);
  let isLocal: boolean | undefined = false; // NULL: false, set_config's rule
  if (local === undefined) isLocal = undefined;
  else if (local !== null) isLocal = local.binary ? (local.bytes.length === 1 ? local.bytes[0] !== 0 : undefined) : parseBool(local.bytes.toString('utf8'));
  const effects = setConfigCallEffects(text(0), text(1), isLocal);
  return effects.length === 0 ? NO_EFFECTS : effects;
}
