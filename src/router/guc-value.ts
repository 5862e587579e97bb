/**
 * How PostgreSQL turns the arguments of SET and set_config() into the setting string it stores, so
 * that set_config(name, value, false) on another server connection gives exactly the same setting.
 */
import { scanSync, type A_Const, type Node } from 'libpg-query';

/**
 * GUCs flagged GUC_LIST_QUOTE, whose SET arguments PostgreSQL quotes as identifiers when it flattens
 * them (flatten_set_variable_args). Not in any catalog: pg_dump keeps the same list (dumputils.c).
 */
const LIST_QUOTE_GUCS: ReadonlySet<string> = new Set([
  'search_path', 'temp_tablespaces', 'local_preload_libraries', 'session_preload_libraries',
  'shared_preload_libraries', 'unix_socket_directories',
]);

/**
 * The string PostgreSQL's flatten_set_variable_args() builds from SET's arguments, so that
 * set_config(name, value, false) later gives the same setting: items joined with ', ', integers in
 * decimal, numerics as written, strings as-is except for GUC_LIST_QUOTE settings, whose items are quoted
 * as identifiers when needed (`SET search_path = "My Schema", public` -> `"My Schema", public`).
 * undefined when the value cannot be reproduced here.
 */
export function flattenSetArgs(name: string, args: Node[]): string | undefined {
  const quote = LIST_QUOTE_GUCS.has(name);
  const parts: string[] = [];
  for (const arg of args) {
    if ('TypeCast' in arg) {
      // Only SET TIME ZONE INTERVAL '...' [HOUR [TO MINUTE] | (p)]. Without a typmod, the time zone
      // check hook parses INTERVAL '<text>' exactly as the SET did; a typmod changes how the text is
      // read, which only interval_in knows, so those are not reproduced.
      const cast = arg.TypeCast;
      const text = cast.arg !== undefined && 'A_Const' in cast.arg ? cast.arg.A_Const.sval?.sval ?? '' : undefined;
      if (text === undefined || (cast.typeName?.typmods?.length ?? 0) > 0 || text.includes("'")) return undefined;
      parts.push(`INTERVAL '${text}'`);
      continue;
    }
    if (!('A_Const' in arg)) return undefined;
    const c: A_Const = arg.A_Const;
    if (c.ival !== undefined) parts.push(String(c.ival.ival ?? 0));
    else if (c.fval !== undefined) parts.push(c.fval.fval ?? '0');
    else if (c.sval !== undefined) parts.push(quote ? quoteIdentifier(c.sval.sval ?? '') : c.sval.sval ?? '');
    else return undefined;
  }
  return parts.join(', ');
}

/** PostgreSQL's quote_identifier(): bare only for [a-z_][a-z0-9_]* that is not a non-unreserved keyword. */
export function quoteIdentifier(ident: string): string {
  let safe = ident.length > 0;
  for (let i = 0; safe && i < ident.length; i++) {
    const c = ident.charCodeAt(i);
    safe = (c >= 0x61 && c <= 0x7a) || c === 0x5f || (i > 0 && c >= 0x30 && c <= 0x39);
  }
  if (safe) {
    const tokens = scanSync(ident).tokens;
    safe = !(tokens.length === 1 && (tokens[0]?.keywordKind ?? 0) > 1); // 1 = unreserved keyword
  }
  return safe ? ident : `"${ident.replaceAll('"', '""')}"`;
}

/** Old names PostgreSQL still takes for settings that were renamed (map_old_guc_names in guc.c). */
const OLD_GUC_NAMES: ReadonlyMap<string, string> = new Map([
  ['sort_mem', 'work_mem'],
  ['vacuum_mem', 'maintenance_work_mem'],
]);

/**
 * A setting's name as PostgreSQL looks it up: case-insensitive over ASCII only
 * (guc_name_compare), and an old name as the setting's current one.
 */
export function foldGucName(name: string): string {
  let upper = false;
  for (let i = 0; i < name.length && !upper; i++) upper = name.charCodeAt(i) >= 0x41 && name.charCodeAt(i) <= 0x5a;
  let out = name;
  if (upper) {
    out = '';
    for (const ch of name) out += ch >= 'A' && ch <= 'Z' ? String.fromCharCode(ch.charCodeAt(0) + 32) : ch;
  }
  return OLD_GUC_NAMES.get(out) ?? out;
}

/** A string constant (possibly cast to a text type), null for NULL, undefined when not constant. */
export function constText(node: Node): string | null | undefined {
  const { c, type } = constant(node);
  if (c === undefined || (type !== undefined && type !== 'text')) return undefined;
  if (c.isnull === true) return null;
  return c.sval === undefined ? undefined : c.sval.sval ?? '';
}

/** A boolean constant as PostgreSQL would read it; NULL counts as false (set_config's rule). */
export function constBool(node: Node): boolean | undefined {
  const { c, type } = constant(node);
  if (c === undefined || (type !== undefined && type !== 'bool')) return undefined;
  if (c.isnull === true) return false;
  if (c.boolval !== undefined) return c.boolval.boolval ?? false;
  if (c.sval !== undefined) return parseBool(c.sval.sval ?? '');
  if (c.ival !== undefined && type === 'bool') return (c.ival.ival ?? 0) !== 0;
  return undefined;
}

/** A parameter's number: $n, bare or cast to text; undefined for anything else. */
export function paramNumber(node: Node): number | undefined {
  const { arg, type } = uncast(node);
  if (arg === undefined || !('ParamRef' in arg) || (type !== undefined && type !== 'text')) return undefined;
  const n = arg.ParamRef.number ?? 0;
  return n > 0 ? n : undefined;
}

function constant(node: Node): { c?: A_Const; type?: string } {
  const { arg, type } = uncast(node);
  return arg !== undefined && 'A_Const' in arg ? { c: arg.A_Const, type } : {};
}

/** What a cast casts, and to which type (boolean as bool, '?' when unnamed); a node not cast is its own arg. */
function uncast(node: Node): { arg: Node | undefined; type?: string } {
  if (!('TypeCast' in node)) return { arg: node };
  const names = node.TypeCast.typeName?.names ?? [];
  const last = names[names.length - 1];
  const type = last !== undefined && 'String' in last ? last.String.sval : undefined;
  return { arg: node.TypeCast.arg, type: type === 'boolean' ? 'bool' : type ?? '?' };
}

/** PostgreSQL's parse_bool(): a unique prefix of true/false/yes/no/on/off, or 1/0, trimmed, any case. */
export function parseBool(text: string): boolean | undefined {
  const v = text.trim().toLowerCase();
  if (v.length === 0) return undefined;
  if (v === '1') return true;
  if (v === '0') return false;
  for (const [word, value, min] of [['true', true, 1], ['yes', true, 1], ['on', true, 2], ['false', false, 1], ['no', false, 1], ['off', false, 2]] as const) {
    if (v.length >= min && word.startsWith(v)) return value;
  }
  return undefined;
}

/**
 * Whether CREATE without TEMP creates in the session's temp schema under this search_path: it
 * creates in the first schema listed that exists. pg_temp listed first counts, and so does pg_temp
 * after "$user" only (a role seldom has a schema of its own name); pgway does not ask which other
 * schemas exist ('public, pg_temp', the usual safe order, counts only where public was dropped).
 */
export function createsInTempSchema(searchPath: string): boolean {
  for (const item of searchPath.split(',')) {
    const schema = item.trim().toLowerCase();
    if (schema === '"$user"' || schema === '$user') continue;
    return schema === 'pg_temp' || schema === '"pg_temp"' || schema.startsWith('pg_temp_');
  }
  return false;
}

/**
 * PostgreSQL's client-only encodings (SJIS, SHIFT_JIS_2004, BIG5, GBK, GB18030, UHC, JOHAB, by
 * all their names, as PostgreSQL matches them: letters and digits only, any case): a character's
 * second byte may be ASCII, a backslash or a letter, so pgway's reading of the text as UTF-8 may
 * end a string or an identifier where the server does not.
 */
const CLIENT_ONLY_ENCODINGS = /^(?:sjis|mskanji|shiftjis|win932|windows932|shiftjis2004|big5|win950|windows950|gbk|win936|windows936|gb18030|uhc|win949|windows949|johab)$/;

export function clientOnlyEncoding(name: string): boolean {
  return CLIENT_ONLY_ENCODINGS.test(name.replace(/[^A-Za-z0-9]/g, '').toLowerCase());
}
