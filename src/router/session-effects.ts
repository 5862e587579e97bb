/**
 * Which statements change session state that transaction pooling must carry between server
 * connections: settings to replay (SET/RESET, set_config), SQL-level prepared statements to emulate
 * (PREPARE/EXECUTE/DEALLOCATE), and state that cannot move at all (pins). SQL is read with libpg-query,
 * PostgreSQL's own parser; results are cached by SQL text.
 *
 * Effects describe what the statements do when they succeed. SET, LISTEN, temp tables and hold cursors
 * are transactional, so a caller applies effects when the transaction commits and drops them on
 * rollback; PREPARE/DEALLOCATE, session advisory locks (taken or released) and the CLOSE of a hold
 * cursor are not rolled back. EXECUTE runs a stored statement: classify the SQL remembered from its
 * 'prepare' effect to learn what that run does. Effects hidden inside functions, DO blocks or
 * procedures are invisible here.
 */
import { LRUCache } from 'lru-cache';
import {
  loadModule, parseSync, scanSync,
  type AlterTableStmt, type DropStmt, type ExplainStmt, type Node, type PrepareStmt, type RangeVar, type RawStmt, type RenameStmt, type ScanToken,
} from 'libpg-query';
import { mayHaveSessionEffects, mayHaveSessionEffectsIn } from './effect-precheck.js';
import { onCalls } from './call-effects.js';
import { parseBool } from './guc-value.js';
import { onVariableSet, pin, unpin, type SettingsOut } from './setting-effects.js';

export type PinReason =
  | 'listen' | 'advisory-lock' | 'temp-table' | 'hold-cursor' | 'session-authorization'
  | 'unparseable-session-statement'; // a session setting whose value pgway cannot know or replay

export type SessionEffect =
  // replay with set_config(name, value, false); `unreported`: changed again later in its request
  // (see SessionState.apply), so the value the server reports at the request's end may not be this one's
  // `as`: made under a SET LOCAL ROLE of that role, staged in request `asSince` (see SessionState.stage)
  | { kind: 'set'; name: string; value: string; unreported?: true; as?: string; asSince?: number }
  // set_config(name, $param, false): the value comes with Bind, as text or, `type` declared by the
  // Parse, as that type writes it (see valueAsStored)
  | { kind: 'set-param'; name: string; param: number; type?: number }
  | { kind: 'reset'; name: string }
  | { kind: 'reset-all' } // RESET ALL leaves the settings in RESET_ALL_KEEPS alone
  // SET LOCAL, set_config(..., true) of a setting in READING_SETTINGS or one the server reports
  // (name '': one pgway cannot name): nothing is carried; of a reading setting, statements are
  // read otherwise until the transaction ends
  // `value`: a role's, where pgway can read it (a session SET made under it is laid on under it)
  | { kind: 'set-local'; name: string; value?: string }
  | { kind: 'prepare'; name: string; sql: string; paramTypes: string[] }
  | { kind: 'execute'; name: string; runs: boolean } // runs: false under EXPLAIN without ANALYZE, which only plans it
  | { kind: 'deallocate'; name: string }
  | { kind: 'deallocate-all' }
  | { kind: 'pin'; reason: PinReason; name?: string } // name: the temp relation or hold cursor; none: one pgway cannot name
  | { kind: 'unpin'; reason: PinReason } // every object of the kind: DISCARD TEMP, CLOSE ALL
  // DROP TABLE name, CLOSE name: the pin goes with the last one. A CASCADE may take temp relations
  // of any name (a view on the table), and comes from a DROP of any kind (name '' when not a relation's).
  | { kind: 'drop'; reason: NamedPin; name: string; cascade?: true }
  | { kind: 'rename'; reason: NamedPin; from: string; to: string } // ALTER TABLE from RENAME TO to
  // pg_advisory_unlock(), pg_try_advisory_lock(), UNLISTEN of one channel, SET SESSION AUTHORIZATION
  // (back to the login user?): whether any is left is for the server to say once the transaction is
  // over. A temp table ON COMMIT DROP ('temp-table') takes the temp objects made on it with it at COMMIT.
  | { kind: 'recheck'; reason: 'advisory-lock' | 'listen' | 'session-authorization' | 'temp-table' }
  | TransactionMarker;

/**
 * Transaction control, which decides what becomes of the effects staged before it: COMMIT/END (or
 * PREPARE TRANSACTION) keeps them, ROLLBACK drops them, ROLLBACK TO drops those since its savepoint,
 * RELEASE folds a savepoint into the one around it. A Query's text of COMMIT/END alone never reaches
 * the parser (effect-precheck): its tag is enough for SessionState.settle. A Parse's does: its
 * request may hold statements before and after it.
 */
export type TransactionMarker =
  // `own`: DISCARD ALL's, which commits only what it did itself, and never ends a transaction block
  // (it cannot run in one)
  | { kind: 'commit'; own?: true }
  | { kind: 'rollback' } // ROLLBACK / ABORT, not TO SAVEPOINT
  | { kind: 'savepoint'; name: string }
  | { kind: 'release'; name: string }
  | { kind: 'rollback-to'; name: string };

export function isTransactionMarker(e: SessionEffect): e is TransactionMarker {
  const k = e.kind;
  return k === 'commit' || k === 'rollback' || k === 'savepoint' || k === 'release' || k === 'rollback-to';
}

/** Pins held by named objects: released when the last object the client made goes. */
export type NamedPin = 'temp-table' | 'hold-cursor';

export interface Classification {
  readonly effects: readonly SessionEffect[];
  /** Some statement changed transaction-scoped state only (SET LOCAL, SET TRANSACTION, set_config(..., true)). */
  readonly local: boolean;
  /** Statements in the text; 0 when `parsed` is false. */
  readonly statements: number;
  /** False when the precheck proved there are no effects and the parser was not run. */
  readonly parsed: boolean;
  /** libpg-query rejected the text; PostgreSQL will report the error itself. */
  readonly parseError?: string;
  /** Some statement changes the schema (CREATE, ALTER, DROP of a relation, type, function...): see schema. */
  readonly ddl?: boolean;
}

/**
 * Statements that change what names mean or what types things have, by their node's name:
 * CREATE / ALTER / DROP / RENAME of anything, CREATE TYPE (DefineStmt, CompositeTypeStmt), views.
 * An index changes neither.
 */
const SCHEMA_CHANGE = /^(Create(?!Role|db)|Alter(?!Role|System|Database)|Drop(?!Role|db)|Rename|Define|View|CompositeType|ImportForeignSchema)/;
const changesSchema = (node: Node): boolean => SCHEMA_CHANGE.test(Object.keys(node)[0] ?? '');

const WALK_NEEDLES = ['set_config', 'advisory', 'execute', 'u&'];
const CURSOR_OPT_HOLD = 0x20; // parsenodes.h

const SKIPPED: Classification = Object.freeze({ effects: Object.freeze([]), local: false, statements: 0, parsed: false });

let ready = false;
let cache = newCache(10_000);

function newCache(entries: number): LRUCache<string, Classification> {
  // Bounded by entries and by text size (UTF-16 units); huge texts are classified but not kept.
  return new LRUCache<string, Classification>({
    max: entries, maxSize: 32 * 1024 * 1024, maxEntrySize: 256 * 1024, sizeCalculation: (_v, sql) => sql.length + 64,
  });
}

/** Loads the parser's WASM module once; classifySessionEffects() may be called after it resolves. */
export async function initSessionEffects(options: { cacheEntries?: number } = {}): Promise<void> {
  if (options.cacheEntries !== undefined) cache = newCache(options.cacheEntries);
  await loadModule();
  ready = true;
}

/** Session effects of one SQL text (one or many statements, as sent in a Query or Parse message), in order. */
export function classifySessionEffects(sql: string): Classification {
  return mayHaveSessionEffects(sql) ? classifyText(sql) : SKIPPED;
}

/**
 * As classifySessionEffects, for the UTF-8 text in bytes [start, end) of a message: no string is
 * made for text the precheck clears. `parsed`: a Parse's text, whose COMMIT is classified too.
 */
export function classifySessionEffectsIn(buf: Buffer, start: number, end: number, parsed = false): Classification {
  return mayHaveSessionEffectsIn(buf, start, end, parsed) ? classifyText(buf.toString('utf8', start, end)) : SKIPPED;
}

/**
 * Whether PostgreSQL goes on with a Parse of this text in an aborted transaction block: an empty
 * text, or one statement that ends the block (COMMIT, END, PREPARE TRANSACTION, ROLLBACK, ABORT,
 * ROLLBACK TO). Any other it refuses (25P02, or 42601) before it looks at the statement's name.
 */
export function parsesInFailedBlock(sql: string): boolean {
  if (sql === '') return true; // the parser refuses it ("Query cannot be empty")
  let stmts: RawStmt[];
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch {
    return false;
  }
  if (stmts.length === 0) return true;
  const node = stmts.length === 1 ? stmts[0]!.stmt : undefined;
  if (node === undefined || !('TransactionStmt' in node)) return false;
  const kind = node.TransactionStmt.kind;
  return kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_PREPARE' || kind === 'TRANS_STMT_ROLLBACK' || kind === 'TRANS_STMT_ROLLBACK_TO';
}

function classifyText(sql: string): Classification {
  const hit = cache.get(sql);
  if (hit !== undefined) return hit;
  if (!ready) throw new Error('classifySessionEffects() called before initSessionEffects() resolved');
  const result = deepFreeze(classifyUncached(sql));
  cache.set(sql, result);
  return result;
}


function classifyUncached(sql: string): Classification {
  let stmts: RawStmt[];
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch (err) {
    return { effects: [], local: false, statements: 0, parsed: true, parseError: err instanceof Error ? err.message : String(err) };
  }
  // The AST walk costs about as much as the parse; by the precheck's reasoning it can only find
  // something when one of these names is in the text.
  const lower = sql.toLowerCase();
  const walkCalls = WALK_NEEDLES.some((needle) => lower.includes(needle));
  const out: Collector = { effects: [], local: false, walkCalls, text: new SqlText(sql) };
  let ddl = false;
  for (const raw of stmts) {
    if (raw.stmt === undefined) continue;
    // DISCARD ALL cannot run in a transaction block, which a query string of several statements is
    // (implicitly): it fails there (25001), and nothing after it runs.
    if (stmts.length > 1 && isDiscardAll(raw.stmt)) break;
    onStatement(raw.stmt, raw, out);
    ddl ||= changesSchema(raw.stmt);
  }
  return ddl ? { effects: out.effects, local: out.local, statements: stmts.length, parsed: true, ddl }
    : { effects: out.effects, local: out.local, statements: stmts.length, parsed: true };
}

const isDiscardAll = (node: Node): boolean => 'DiscardStmt' in node && node.DiscardStmt.target === 'DISCARD_ALL';

interface Collector extends SettingsOut { readonly walkCalls: boolean; readonly text: SqlText }

function onStatement(node: Node, raw: RawStmt, out: Collector): void {
  if ('VariableSetStmt' in node) onVariableSet(node.VariableSetStmt, out);
  else if ('DiscardStmt' in node) {
    const target = node.DiscardStmt.target;
    if (target === 'DISCARD_ALL') {
      out.effects.push({ kind: 'reset-all' }, { kind: 'reset', name: 'role' }, { kind: 'deallocate-all' },
        unpin('listen'), unpin('advisory-lock'), unpin('temp-table'), unpin('hold-cursor'),
        unpin('session-authorization'), unpin('unparseable-session-statement'),
        // It commits on its own (first in an extended-protocol batch, an error after it keeps it).
        { kind: 'commit', own: true });
    } else if (target === 'DISCARD_TEMP') out.effects.push(unpin('temp-table'));
  } else if ('PrepareStmt' in node) out.effects.push(prepareEffect(node.PrepareStmt, raw, out.text));
  else if ('DeallocateStmt' in node) {
    const d = node.DeallocateStmt;
    out.effects.push(d.isall === true || d.name === undefined ? { kind: 'deallocate-all' } : { kind: 'deallocate', name: d.name });
  } else if ('ListenStmt' in node) out.effects.push(pin('listen'));
  else if ('UnlistenStmt' in node) {
    // UNLISTEN *, or of one channel, which may have been the last one listened to
    out.effects.push(node.UnlistenStmt.conditionname === undefined ? unpin('listen') : { kind: 'recheck', reason: 'listen' });
  } else if ('DeclareCursorStmt' in node) {
    const c = node.DeclareCursorStmt;
    if (((c.options ?? 0) & CURSOR_OPT_HOLD) !== 0) out.effects.push(pin('hold-cursor', c.portalname));
  } else if ('ClosePortalStmt' in node) {
    const name = node.ClosePortalStmt.portalname;
    out.effects.push(name === undefined ? unpin('hold-cursor') : { kind: 'drop', reason: 'hold-cursor', name }); // CLOSE ALL
  } else if ('TransactionStmt' in node) {
    const kind = node.TransactionStmt.kind;
    // PREPARE TRANSACTION keeps the session's SETs as COMMIT does.
    const name = node.TransactionStmt.savepoint_name ?? '';
    if (kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_PREPARE') out.effects.push({ kind: 'commit' });
    else if (kind === 'TRANS_STMT_ROLLBACK') out.effects.push({ kind: 'rollback' });
    else if (kind === 'TRANS_STMT_SAVEPOINT') out.effects.push({ kind: 'savepoint', name });
    else if (kind === 'TRANS_STMT_RELEASE') out.effects.push({ kind: 'release', name });
    else if (kind === 'TRANS_STMT_ROLLBACK_TO') out.effects.push({ kind: 'rollback-to', name });
  } else if ('UpdateStmt' in node && node.UpdateStmt.relation?.relname === 'pg_settings') {
    // The view's rule runs set_config(name, setting, false) for the rows the WHERE picks: which
    // settings change is known only at run time, so the client keeps its connection.
    out.effects.push(pin('unparseable-session-statement'));
  } else if ('DropStmt' in node) onDrop(node.DropStmt, out);
  else if ('RenameStmt' in node) onRename(node.RenameStmt, out);
  else if ('DropOwnedStmt' in node || ('AlterTableStmt' in node && dropsWithCascade(node.AlterTableStmt))) {
    // DROP OWNED drops the role's temp objects too; ALTER TABLE ... DROP COLUMN ... CASCADE a view on it.
    out.effects.push(CASCADE);
  }
  const temp = createdTempObject('ExplainStmt' in node && analyzes(node.ExplainStmt) ? node.ExplainStmt.query ?? node : node);
  if (temp !== undefined) out.effects.push(pin('temp-table', temp === null ? undefined : temp));
  else if (dropsAtCommit(node)) out.effects.push({ kind: 'recheck', reason: 'temp-table' });
  if (out.walkCalls) onCalls(node, out);
}

// --- PREPARE -------------------------------------------------------------------------------------

/**
 * PREPARE name [(types)] AS stmt. The AST keeps neither the inner statement's text nor the types as
 * written, so they are cut from the statement's tokens: the types between the parentheses, split at
 * top-level commas, and the body from the first token after AS to the last token that is not a comment.
 * The scanner is slower than the parser, so it reads only the head (up to the first located node of
 * the body) and the tail (from the last one); locations always fall on token starts.
 */
function prepareEffect(prepare: PrepareStmt, raw: RawStmt, text: SqlText): SessionEffect {
  const stmt = text.statement(raw);
  const base = raw.stmt_location ?? 0;
  const [first, last] = locationRange(prepare.query);
  const headEnd = first === undefined ? stmt.length : first - base;
  const head = scanSync(stmt.toString('utf8', 0, headEnd)).tokens;
  const code = head.filter(isCode);
  const paramTypes: string[] = [];
  let i = 2; // past PREPARE and the name
  if (code[i]?.text === '(') {
    let depth = 0;
    let start: ScanToken | undefined;
    let prev: ScanToken | undefined;
    for (i++; i < code.length; i++) {
      const t = code[i];
      if (t === undefined) break;
      if (depth === 0 && (t.text === ',' || t.text === ')')) {
        if (start !== undefined && prev !== undefined) paramTypes.push(stmt.toString('utf8', start.start, prev.end));
        start = undefined;
        if (t.text === ')') break;
      } else {
        start ??= t;
        if (t.text === '(' || t.text === '[') depth++;
        else if (t.text === ')' || t.text === ']') depth--;
      }
      prev = t;
    }
    i++;
  }
  const as = code[i];
  if (as === undefined || as.text.toLowerCase() !== 'as') return { kind: 'prepare', name: prepare.name ?? '', sql: '', paramTypes };
  // A comment right after AS belongs to the body: planner hints live there.
  const bodyStart = head.find((t) => t.start >= as.end)?.start ?? headEnd;
  const tailStart = last === undefined ? bodyStart : last - base;
  const tail = scanSync(stmt.toString('utf8', tailStart)).tokens.filter(isCode);
  const bodyEnd = tailStart + (tail[tail.length - 1]?.end ?? 0);
  return { kind: 'prepare', name: prepare.name ?? '', sql: stmt.toString('utf8', bodyStart, bodyEnd), paramTypes };
}

const isCode = (t: ScanToken): boolean => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT';

/** Smallest and largest byte location of any node under `root`. */
function locationRange(root: Node | undefined): [number | undefined, number | undefined] {
  let min: number | undefined;
  let max: number | undefined;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null) continue;
    if ('location' in value && typeof value.location === 'number' && value.location >= 0) {
      min = Math.min(min ?? value.location, value.location);
      max = Math.max(max ?? value.location, value.location);
    }
    for (const child of Object.values(value)) stack.push(child);
  }
  return [min, max];
}

/** The SQL text with libpg-query's byte offsets. */
class SqlText {
  private bytes: Buffer | undefined;
  constructor(private readonly sql: string) {}

  statement(raw: RawStmt): Buffer {
    this.bytes ??= Buffer.from(this.sql, 'utf8');
    const start = raw.stmt_location ?? 0;
    return this.bytes.subarray(start, raw.stmt_len ? start + raw.stmt_len : this.bytes.length);
  }
}

// --- temp objects --------------------------------------------------------------------------------

/**
 * The temp object a statement creates: its name for a temp table, view or sequence (what DROP
 * names), null for any other temp object (function, type), which only DISCARD TEMP releases.
 */
function createdTempObject(node: Node): string | null | undefined {
  if ('CreateStmt' in node) {
    return node.CreateStmt.oncommit !== 'ONCOMMIT_DROP' ? tempRelation(node.CreateStmt.relation) : undefined;
  }
  if ('CreateSeqStmt' in node) return tempRelation(node.CreateSeqStmt.sequence);
  if ('ViewStmt' in node) return tempRelation(node.ViewStmt.view);
  let into;
  if ('CreateTableAsStmt' in node) into = node.CreateTableAsStmt.into;
  else if ('SelectStmt' in node) into = node.SelectStmt.intoClause; // SELECT ... INTO TEMP t
  if (into !== undefined) {
    if (into.onCommit === 'ONCOMMIT_DROP' || !isTemp(into.rel)) return undefined;
    // CREATE TEMP MATERIALIZED VIEW is refused by PostgreSQL; anything not a table stays unnamed.
    return 'CreateTableAsStmt' in node && node.CreateTableAsStmt.objtype !== 'OBJECT_TABLE' ? null : into.rel?.relname ?? null;
  }
  return createsOtherTempObject(node) ? null : undefined;
}

/** A temp table made ON COMMIT DROP: its transaction's COMMIT drops what depends on it (a view, an owned sequence) too. */
function dropsAtCommit(node: Node): boolean {
  if ('CreateStmt' in node) return node.CreateStmt.oncommit === 'ONCOMMIT_DROP' && isTemp(node.CreateStmt.relation);
  const into = 'CreateTableAsStmt' in node ? node.CreateTableAsStmt.into : 'SelectStmt' in node ? node.SelectStmt.intoClause : undefined;
  return into?.onCommit === 'ONCOMMIT_DROP' && isTemp(into.rel);
}

function tempRelation(rel: RangeVar | undefined): string | null | undefined {
  return isTemp(rel) ? rel?.relname ?? null : undefined;
}

function createsOtherTempObject(node: Node): boolean {
  if ('CreateFunctionStmt' in node) return inTempSchema(node.CreateFunctionStmt.funcname);
  if ('CompositeTypeStmt' in node) return isTemp(node.CompositeTypeStmt.typevar);
  if ('CreateEnumStmt' in node) return inTempSchema(node.CreateEnumStmt.typeName);
  if ('CreateDomainStmt' in node) return inTempSchema(node.CreateDomainStmt.domainname);
  if ('CreateRangeStmt' in node) return inTempSchema(node.CreateRangeStmt.typeName);
  // Aggregates, operators, base types, collations, text search objects.
  if ('DefineStmt' in node) return inTempSchema(node.DefineStmt.defnames);
  if ('CreateConversionStmt' in node) return inTempSchema(node.CreateConversionStmt.conversion_name);
  if ('CreateStatsStmt' in node) return inTempSchema(node.CreateStatsStmt.defnames);
  if ('CreateOpClassStmt' in node) return inTempSchema(node.CreateOpClassStmt.opclassname);
  if ('CreateOpFamilyStmt' in node) return inTempSchema(node.CreateOpFamilyStmt.opfamilyname);
  return false;
}

/**
 * Temp tables, views and sequences share one namespace, and a DROP of the wrong kind fails (DROP
 * VIEW of a table), so one set of names serves all three.
 */
const TEMP_RELATION_KINDS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_SEQUENCE']);

/**
 * DROP TABLE (VIEW, SEQUENCE) of a name a temp relation may hold: unqualified (pg_temp comes first
 * in the search path for relations) or in pg_temp. Whether the client made such a relation is the
 * session's to judge.
 */
function onDrop(d: DropStmt, out: Collector): void {
  const cascade = d.behavior === 'DROP_CASCADE';
  let named = false;
  if (TEMP_RELATION_KINDS.has(d.removeType ?? '')) {
    for (const object of d.objects ?? []) {
      const name = 'List' in object ? tempRelationName(object.List.items) : undefined;
      if (name === undefined) continue;
      out.effects.push(cascade ? { kind: 'drop', reason: 'temp-table', name, cascade } : { kind: 'drop', reason: 'temp-table', name });
      named = true;
    }
  }
  if (cascade && !named) out.effects.push(CASCADE);
}

/** A CASCADE that names no temp relation may still take some with it. */
const CASCADE: SessionEffect = Object.freeze({ kind: 'drop', reason: 'temp-table', name: '', cascade: true });

function dropsWithCascade(a: AlterTableStmt): boolean {
  return (a.cmds ?? []).some((cmd) => 'AlterTableCmd' in cmd && cmd.AlterTableCmd.behavior === 'DROP_CASCADE');
}

/** EXPLAIN ANALYZE runs its statement (CREATE TEMP TABLE ... AS among them); a plain EXPLAIN does not. */
function analyzes(e: ExplainStmt): boolean {
  return (e.options ?? []).some((o) => 'DefElem' in o && o.DefElem.defname === 'analyze' && optionValue(o.DefElem.arg) !== false);
}

/** An option's boolean value as PostgreSQL's defGetBoolean reads it (no value: true); undefined when unreadable. */
function optionValue(arg: Node | undefined): boolean | undefined {
  if (arg === undefined) return true;
  if ('String' in arg) return parseBool(arg.String.sval ?? '');
  if ('Integer' in arg) return (arg.Integer.ival ?? 0) !== 0;
  if ('Boolean' in arg) return arg.Boolean.boolval ?? false;
  return undefined;
}

/** ALTER TABLE (VIEW, SEQUENCE) t RENAME TO u: a temp relation t goes on as u. */
function onRename(r: RenameStmt, out: Collector): void {
  const rel = r.relation;
  if (!TEMP_RELATION_KINDS.has(r.renameType ?? '') || rel?.relname === undefined || r.newname === undefined) return;
  if (rel.schemaname === undefined || isTempSchema(rel.schemaname)) {
    out.effects.push({ kind: 'rename', reason: 'temp-table', from: rel.relname, to: r.newname });
  }
}

function tempRelationName(items: Node[] | undefined): string | undefined {
  const names = (items ?? []).map((n) => ('String' in n ? n.String.sval : undefined));
  if (names.length === 1) return names[0];
  return names.length === 2 && isTempSchema(names[0]) ? names[1] : undefined;
}

function isTemp(rel: RangeVar | undefined): boolean {
  return rel !== undefined && (rel.relpersistence === 't' || isTempSchema(rel.schemaname));
}

function inTempSchema(names: Node[] | undefined): boolean {
  const first = names !== undefined && names.length > 1 ? names[0] : undefined;
  return first !== undefined && 'String' in first && isTempSchema(first.String.sval);
}

function isTempSchema(schema: string | undefined): boolean {
  return schema === 'pg_temp' || (schema?.startsWith('pg_temp_') ?? false);
}

function deepFreeze(c: Classification): Classification {
  for (const effect of c.effects) {
    if (effect.kind === 'prepare') Object.freeze(effect.paramTypes);
    Object.freeze(effect);
  }
  Object.freeze(c.effects);
  return Object.freeze(c);
}
