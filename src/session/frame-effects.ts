/**
 * The session effects pgway reads from a client's frames: those of a Query's or a Parse's statement
 * text, of a FunctionCall of set_config, and of the values a Bind gives set_config's parameters.
 * None at all, nearly always, is the one frozen NO_EFFECTS: no array per message.
 */
import { parseBool } from '../router/guc-value.js';
import { classifySessionEffectsIn, type SessionEffect } from '../router/session-effects.js';
import { SET_CONFIG_OID, setConfigCallEffects } from '../router/setting-effects.js';
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
    const bound = bindParameterText(buf, stmtAt, end, e.param - 1);
    const value = bound == null ? bound : valueAsStored(e.type, bound);
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
  const { effects, ddl } = classifySessionEffectsIn(buf, textAt, textEnd(buf, textAt, end), parsed);
  if (ddl === true) ddlText.written = true;
  return effects.length === 0 ? NO_EFFECTS : effects;
}

/**
 * Set when effectsOfText read DDL (a schema change: see schema in server-statements): the writer
 * that asked counts it where it runs (RequestWriter.ddlRuns), and clears it.
 */
export const ddlText = { written: false };

/** Where a Parse frame's statement text starts (after the statement's name). */
const parseTextAt = (buf: Buffer, start: number): number => buf.indexOf(0, start + 5) + 1;

/** Parameter types a value passes through unchanged as text: none given (the server infers text), text, varchar. */
const TEXT_TYPES: ReadonlySet<number> = new Set([0, 25, 1043]);
const BOOL = 16;
const INTEGERS: ReadonlySet<number> = new Set([20, 21, 23]);

/**
 * The text a parameter bound as `value` and declared of `type` is stored as by set_config (the
 * type's output of its input): undefined where pgway cannot tell, or the server refuses it.
 */
function valueAsStored(type: number | undefined, value: string): string | undefined {
  if (type === undefined) return value;
  if (type === BOOL) {
    const b = parseBool(value);
    return b === undefined ? undefined : String(b);
  }
  // Plain decimal only: PostgreSQL 16 also reads 0x1F, 0o17, 1_000, which pgway leaves to the server.
  return /^\s*[+-]?\d+\s*$/.test(value) ? BigInt(value.trim()).toString() : undefined;
}

/** How many times `$n` appears in the text in [from, to) (in strings and comments too: an upper bound). */
function paramUses(buf: Buffer, from: number, to: number, n: number): number {
  const digits = String(n);
  let uses = 0;
  for (let at = buf.indexOf(0x24 /* $ */, from); at >= 0 && at < to; at = buf.indexOf(0x24, at + 1)) {
    const after = at + 1 + digits.length;
    if (after > to || buf.toString('latin1', at + 1, after) !== digits) continue;
    const next = after < to ? buf[after]! : 0;
    if (next < 0x30 || next > 0x39) uses++;
  }
  return uses;
}

/** The type a Parse frame declares for parameter `index`, from its list at `at` (0: none given). */
function declaredType(buf: Buffer, at: number, end: number, index: number): number {
  if (at + 2 > end || index >= buf.readInt16BE(at)) return 0;
  const pos = at + 2 + 4 * index;
  return pos + 4 > end ? 0 : buf.readUInt32BE(pos);
}

/** The session effects of a Parse frame's statement text. */
export function effectsOfParse(buf: Buffer, start: number, end: number): readonly SessionEffect[] {
  const textAt = parseTextAt(buf, start);
  const effects = effectsOfText(buf, textAt, end, true);
  if (!effects.some((e) => e.kind === 'set-param')) return effects;
  // A value of another declared type is stored as that type writes it ('TRUE' as a boolean is 'true'):
  // one pgway reads so is noted, any other pins.
  const textStop = textEnd(buf, textAt, end);
  const typesAt = textStop + 1;
  return effects.map((e): SessionEffect => {
    if (e.kind !== 'set-param') return e;
    const type = declaredType(buf, typesAt, end, e.param - 1);
    // Undeclared, its type is the one the server infers from its first use, which may be another.
    if (type === 0 && paramUses(buf, textAt, textStop, e.param) > 1) return UNKNOWN_VALUE;
    if (TEXT_TYPES.has(type)) return e;
    return type === BOOL || INTEGERS.has(type) ? { ...e, type } : UNKNOWN_VALUE;
  });
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
