/**
 * The session effects of statements that change settings: SET and RESET (also SET LOCAL, SET
 * SESSION CHARACTERISTICS, SET SESSION AUTHORIZATION) and set_config() calls, and which settings
 * decide how PostgreSQL reads a statement's text. Part of session-effects' classification.
 */
import type { FuncCall, Node, VariableSetStmt } from 'libpg-query';
import { clientOnlyEncoding, constBool, constText, createsInTempSchema, flattenSetArgs, foldGucName, paramNumber, parseBool } from './guc-value.js';
import type { PinReason, SessionEffect } from './session-effects.js';

/** Where a statement's effects are collected (see session-effects' Collector). */
export interface SettingsOut {
  effects: SessionEffect[];
  /** Some statement changed transaction-scoped state only (see Classification.local). */
  local: boolean;
}

/**
 * Settings that decide how PostgreSQL reads a statement's text when it prepares it, which it keeps
 * for as long as the statement lives: the encoding the bytes are decoded in, how the lexer takes
 * quotes and backslashes, the names a path resolves ("$user" by the current role), and the values
 * literals turn into at analysis (dates, times, intervals, money, arrays, xml, `= NULL`). Also those
 * the output functions PostgreSQL takes for immutable read, whose results it folds into a cached
 * plan as constants: a float's digits, bytea's format, xml's binary encoding, identifier quoting.
 */
export const READING_SETTINGS = [
  'search_path', 'role', 'client_encoding', 'standard_conforming_strings', 'backslash_quote',
  'timezone', 'timezone_abbreviations', 'datestyle', 'intervalstyle', 'lc_monetary',
  'array_nulls', 'transform_null_equals', 'xmloption',
  'extra_float_digits', 'bytea_output', 'xmlbinary', 'quote_all_identifiers',
] as const;
const READS: ReadonlySet<string> = new Set(READING_SETTINGS);
/**
 * Settings a client can change that the server reports (ParameterStatus) beyond READING_SETTINGS:
 * a SET LOCAL of one is followed too, as the value reported at the end of its request may be the
 * local one (see SessionState.apply).
 */
const REPORTED: ReadonlySet<string> = new Set(['application_name', 'default_transaction_read_only', 'scram_iterations']);

/** Whether an effect changes how the session reads statement text (see READING_SETTINGS) once it runs. */
export const changesReading = (e: SessionEffect): boolean =>
  e.kind === 'reset-all' || ((e.kind === 'set' || e.kind === 'reset') && READS.has(e.name)) ||
  (e.kind === 'set-local' && (e.name === '' || e.name === 'session_authorization' || READS.has(e.name)));

/**
 * Settings not laid on again when the client moves. seed is an action, not state: SET seed reseeds
 * random() once, and laid on again at each move it would restart random()'s sequence. temp_buffers
 * cannot be changed on a connection where a temporary table was used with another value: laid on
 * there, it would end the client (22023) for a setting that matters only to its own temporary tables,
 * which pin it to the connection where it set it.
 */
export const NOT_CARRIED: ReadonlySet<string> = new Set(['seed', 'temp_buffers']);

/** Settings RESET ALL does not touch (GUC_NO_RESET_ALL). DISCARD ALL resets role explicitly. */
export const RESET_ALL_KEEPS: ReadonlySet<string> = new Set(['role', 'session_authorization']);

/** Settings that only exist per transaction: a session-level SET of them changes the current transaction only. */
const TRANSACTION_SCOPED: ReadonlySet<string> = new Set(['transaction_isolation', 'transaction_read_only', 'transaction_deferrable']);
const SESSION_CHARACTERISTICS: Readonly<Record<string, string>> = {
  transaction_isolation: 'default_transaction_isolation',
  transaction_read_only: 'default_transaction_read_only',
  transaction_deferrable: 'default_transaction_deferrable',
};

/** The effect that pins a client for `reason` (`name`: the object holding it), and the one releasing every such pin. */
export const pin = (reason: PinReason, name?: string): SessionEffect => (name === undefined ? { kind: 'pin', reason } : { kind: 'pin', reason, name });
export const unpin = (reason: PinReason): SessionEffect => ({ kind: 'unpin', reason });

/** SET, RESET, SET LOCAL, SET SESSION CHARACTERISTICS. */
export function onVariableSet(s: VariableSetStmt, out: SettingsOut): void {
  if (s.is_local === true) {
    const name = foldGucName(s.name ?? '');
    const read = name === 'search_path' || name === 'standard_conforming_strings' || name === 'role' || name === 'client_encoding';
    localSetting(name, read ? flattenSetArgs(name, s.args ?? []) : undefined, out);
    return;
  }
  switch (s.kind) {
    case 'VAR_SET_VALUE': {
      const name = foldGucName(s.name ?? '');
      const value = flattenSetArgs(name, s.args ?? []);
      if (value === undefined) out.effects.push(pin('unparseable-session-statement'));
      else setting(name, value, out);
      return;
    }
    case 'VAR_SET_DEFAULT': // SET x TO DEFAULT, SET TIME ZONE LOCAL/DEFAULT
    case 'VAR_RESET':
      setting(foldGucName(s.name ?? ''), null, out);
      return;
    case 'VAR_RESET_ALL':
      out.effects.push({ kind: 'reset-all' });
      return;
    case 'VAR_SET_MULTI':
      if (s.name === 'SESSION CHARACTERISTICS') onSessionCharacteristics(s.args ?? [], out);
      else out.local = true; // SET TRANSACTION ..., SET TRANSACTION SNAPSHOT
      return;
    default: // VAR_SET_CURRENT: the value is whatever the server has now
      out.effects.push(pin('unparseable-session-statement'));
  }
}

/** SET SESSION CHARACTERISTICS AS TRANSACTION ... sets the default_transaction_* settings. */
function onSessionCharacteristics(items: Node[], out: SettingsOut): void {
  for (const item of items) {
    const def = 'DefElem' in item ? item.DefElem : undefined;
    const name = def?.defname === undefined ? undefined : SESSION_CHARACTERISTICS[def.defname];
    const value = name === undefined || def?.arg === undefined ? undefined : flattenSetArgs(name, [def.arg]);
    if (name === undefined || value === undefined) out.effects.push(pin('unparseable-session-statement'));
    else setting(name, value, out);
  }
}

/** One session-level setting change; null means back to the default. */
function setting(name: string, value: string | null, out: SettingsOut): void {
  if (NOT_CARRIED.has(name)) return;
  if (TRANSACTION_SCOPED.has(name)) {
    out.local = true; // as SET TRANSACTION: replaying it elsewhere would fail outside a fresh transaction
  } else if (name === 'session_authorization') {
    // Changing the session user also resets the role; the new identity cannot be re-created elsewhere.
    // One that names the login user is none: the server is asked.
    if (value === null) out.effects.push(unpin('session-authorization'));
    else out.effects.push(pin('session-authorization'), { kind: 'recheck', reason: 'session-authorization' });
    out.effects.push({ kind: 'reset', name: 'role' });
  } else if (value === null) out.effects.push({ kind: 'reset', name });
  else out.effects.push({ kind: 'set', name, value });
}

/**
 * SET LOCAL, set_config(..., true): not carried anywhere, but statements prepared until the
 * transaction ends are read under it where it is a reading setting (the session user decides what
 * "$user" means too), and a CREATE under a local search_path that lists pg_temp first lands in the
 * temp schema (see createsInTempSchema).
 */
function localSetting(name: string, value: string | undefined, out: SettingsOut): void {
  out.local = true;
  if (name === 'role') out.effects.push(value === undefined ? { kind: 'set-local', name } : { kind: 'set-local', name, value });
  else if (name === '' || name === 'session_authorization' || READS.has(name) || REPORTED.has(name)) out.effects.push({ kind: 'set-local', name });
  if (name === 'search_path' && createsInTempSchema(value ?? '')) out.effects.push(pin('temp-table'));
  // A backslash escapes a quote for the rest of the transaction: what follows may not read as pgway reads it.
  if (name === 'standard_conforming_strings' && value !== undefined && parseBool(value) === false) out.effects.push(pin('unparseable-session-statement'));
  // So does a client-only encoding (a character's second byte may be a backslash).
  if (name === 'client_encoding' && value !== undefined && clientOnlyEncoding(value)) out.effects.push(pin('unparseable-session-statement'));
}

/** set_config(setting_name, new_value, is_local): a NULL value resets, a NULL is_local means false. */
export function onSetConfig(call: FuncCall, once: boolean, out: SettingsOut): void {
  const args = setConfigArgs(call.args ?? []);
  const isLocal = args === undefined ? undefined : constBool(args[2]);
  const name = args === undefined ? undefined : constText(args[0]);
  const value = args === undefined ? undefined : constText(args[1]);
  const param = value === undefined && args !== undefined ? paramNumber(args[1]) : undefined;
  if (once && isLocal === false && typeof name === 'string' && param !== undefined) out.effects.push({ kind: 'set-param', name: foldGucName(name), param });
  else setConfigEffect(name, value, isLocal, once, out);
}

/** set_config() of these arguments (undefined: not known to pgway), run exactly once where `once`. */
function setConfigEffect(name: string | null | undefined, value: string | null | undefined, isLocal: boolean | undefined, once: boolean, out: SettingsOut): void {
  if (isLocal === true) {
    localSetting(name == null ? '' : foldGucName(name), value ?? undefined, out);
    return;
  }
  if (name === null) return; // fails at run time: "SET requires parameter name"
  if (!once || isLocal === undefined || name === undefined || value === undefined) out.effects.push(pin('unparseable-session-statement'));
  else setting(foldGucName(name), value, out);
}

/** set_config(text, text, boolean) in pg_catalog: the OIDs of built-in functions are fixed (pg_proc.dat). */
export const SET_CONFIG_OID = 2078;

/**
 * The session effects of a FunctionCall (protocol 'F') of set_config, SET_CONFIG_OID, with these
 * arguments (undefined: unreadable): those of SELECT set_config() of the same constants.
 */
export function setConfigCallEffects(name: string | null | undefined, value: string | null | undefined, isLocal: boolean | undefined): readonly SessionEffect[] {
  const out: SettingsOut = { effects: [], local: false };
  setConfigEffect(name, value, isLocal, true, out);
  return out.effects;
}

function setConfigArgs(args: Node[]): [Node, Node, Node] | undefined {
  const slots: (Node | undefined)[] = [undefined, undefined, undefined];
  const named = ['setting_name', 'new_value', 'is_local'];
  for (const [i, arg] of args.entries()) {
    const slot = 'NamedArgExpr' in arg ? named.indexOf(arg.NamedArgExpr.name ?? '') : i;
    const value = 'NamedArgExpr' in arg ? arg.NamedArgExpr.arg : arg;
    if (slot < 0 || slot > 2 || slots[slot] !== undefined || value === undefined) return undefined;
    slots[slot] = value;
  }
  const [a, b, c] = slots;
  return args.length === 3 && a !== undefined && b !== undefined && c !== undefined ? [a, b, c] : undefined;
}
