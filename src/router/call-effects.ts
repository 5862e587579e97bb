/**
 * The session effects of function calls anywhere in a statement (set_config(), advisory locks) and
 * of EXECUTE nested in EXPLAIN or CREATE TABLE AS. Part of session-effects' classification.
 */
import type { FuncCall, Node, SelectStmt } from 'libpg-query';
import { parseBool } from './guc-value.js';
import { onSetConfig, pin, unpin, type SettingsOut } from './setting-effects.js';

/** Statements whose expressions are stored, not run, when the statement runs. */
const NOT_EXECUTING: ReadonlySet<string> = new Set([
  'PrepareStmt', 'CreateFunctionStmt', 'ViewStmt', 'RuleStmt', 'CreateTrigStmt', 'CreatePolicyStmt',
  'AlterPolicyStmt', 'CreateStmt', 'CreateDomainStmt', 'AlterDomainStmt', 'IndexStmt',
]);
const ADVISORY_LOCKS: ReadonlySet<string> = new Set([
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
]);
/** Calls after which the session may hold no advisory lock: an unlock, or a lock that may not have been taken. */
const ADVISORY_MAYBE_FREE: ReadonlySet<string> = new Set([
  'pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
]);

interface Found { calls: FuncCall[]; executes: { name: string; runs: boolean }[] }

/**
 * set_config() and advisory-lock calls anywhere in a statement that runs its expressions, plus
 * EXECUTE nested in EXPLAIN or CREATE TABLE AS. A session set_config() is tracked only where it runs
 * exactly once (a direct target of a top-level SELECT with no FROM, WHERE, LIMIT...); elsewhere it pins.
 * pg_advisory_unlock_all() unpins under the same rule; a lock pins wherever it appears.
 */
export function onCalls(node: Node, out: SettingsOut): void {
  const found: Found = { calls: [], executes: [] };
  walk(node, found);
  for (const { name, runs } of found.executes) out.effects.push({ kind: 'execute', name, runs });
  if (found.calls.length === 0) return;
  const once = 'SelectStmt' in node ? runsOnce(node.SelectStmt) : new Set<FuncCall>();
  let lock = false;
  let unlockAll = false;
  let maybeFree = false;
  for (const call of found.calls.sort((a, b) => (a.location ?? 0) - (b.location ?? 0))) {
    const fn = functionName(call);
    if (fn === 'set_config') {
      onSetConfig(call, once.has(call), out);
    } else if (fn === 'pg_advisory_unlock_all') {
      // Run other than exactly once (in a FROM, under a WHERE), it may or may not have run; by its
      // bare name, a function of that name in a schema the search_path puts before pg_catalog may
      // run instead: the server is asked.
      if (once.has(call) && call.funcname?.length === 2) unlockAll = true;
      else maybeFree = true;
    } else if (fn !== undefined && ADVISORY_LOCKS.has(fn)) {
      lock = true;
      // Under a WHERE, in a FROM, in a CASE branch (a job queue's lock of the row it found), it may
      // have taken nothing: the server is asked.
      if (!once.has(call)) maybeFree = true;
    }
    if (fn !== undefined && ADVISORY_MAYBE_FREE.has(fn)) maybeFree = true;
  }
  if (unlockAll) out.effects.push(unpin('advisory-lock'));
  if (lock) out.effects.push(pin('advisory-lock')); // after the unpin: when both appear, stay pinned
  if (maybeFree) out.effects.push({ kind: 'recheck', reason: 'advisory-lock' });
}

/** Iterative pre-order walk: expressions nest as deep as the SQL does (a || b || ... thousands deep). */
function walk(root: Node, found: Found): void {
  // explained: not executing only because an EXPLAIN without ANALYZE plans it.
  const stack: { key: string; value: unknown; executing: boolean; explained: boolean }[] = [{ key: '', value: root, executing: true, explained: false }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { key, value, executing, explained } = item;
    if (typeof value !== 'object' || value === null) continue;
    if (key === 'FuncCall' && executing) found.calls.push(value as FuncCall); // libpg-query's AST shape
    else if (key === 'ExecuteStmt' && 'name' in value && typeof value.name === 'string') found.executes.push({ name: value.name, runs: executing });
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ key: '', value: value[i] as unknown, executing, explained });
      continue;
    }
    const entries = Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [childKey, child] = entries[i] ?? ['', undefined];
      const plansOnly = childKey === 'ExplainStmt' && !explainAnalyzes(child);
      const runs = executing && !NOT_EXECUTING.has(childKey) && !plansOnly;
      const planned = (executing && plansOnly) || (explained && !NOT_EXECUTING.has(childKey));
      // EXPLAIN EXECUTE plans the statement, but evaluates the parameters it is given (ExplainExecuteQuery).
      if (key === 'ExecuteStmt' && childKey === 'params' && explained) stack.push({ key: childKey, value: child, executing: true, explained: false });
      else stack.push({ key: childKey, value: child, executing: runs, explained: planned });
    }
  }
}

function explainAnalyzes(explain: unknown): boolean {
  const options = typeof explain === 'object' && explain !== null && 'options' in explain && Array.isArray(explain.options) ? (explain.options as Node[]) : [];
  for (const option of options) {
    if (!('DefElem' in option) || option.DefElem.defname !== 'analyze') continue;
    const arg = option.DefElem.arg;
    if (arg === undefined) return true;
    if ('String' in arg) return parseBool(arg.String.sval ?? '') !== false;
    if ('Integer' in arg) return (arg.Integer.ival ?? 0) !== 0;
    return true;
  }
  return false;
}

/** Calls known to return one row, whose run once per row of a FROM-less SELECT is once (see runsOnce). */
const SCALAR_TARGETS: ReadonlySet<string> = new Set([
  'set_config', 'current_setting', 'pg_advisory_unlock_all', ...ADVISORY_LOCKS, ...ADVISORY_MAYBE_FREE,
]);

/**
 * The calls that run exactly once: direct targets of a SELECT without FROM, WHERE, GROUP, LIMIT, set
 * ops, and without any other call among its targets. Any other may return a set (generate_series(),
 * unnest(), a function of the client's), and PostgreSQL then evaluates the whole target list once
 * per row it yields: again at each Execute of a portal fetched a few rows at a time.
 */
function runsOnce(s: SelectStmt): Set<FuncCall> {
  const once = new Set<FuncCall>();
  const simple = s.fromClause === undefined && s.whereClause === undefined && s.groupClause === undefined &&
    s.havingClause === undefined && s.limitCount === undefined && s.limitOffset === undefined &&
    s.valuesLists === undefined && s.larg === undefined && (s.op ?? 'SETOP_NONE') === 'SETOP_NONE';
  if (!simple) return once;
  for (const target of s.targetList ?? []) {
    const val = 'ResTarget' in target ? target.ResTarget.val : undefined;
    if (val === undefined) continue;
    const call = 'FuncCall' in val ? val.FuncCall : undefined;
    const fn = call === undefined ? undefined : functionName(call);
    if (call !== undefined && fn !== undefined && SCALAR_TARGETS.has(fn) && !hasCall(call.args)) once.add(call);
    else if (hasCall(val)) return new Set();
  }
  return once;
}

/** Whether a function call appears anywhere under `root`. */
function hasCall(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null) continue;
    if ('FuncCall' in value) return true;
    for (const child of Object.values(value)) stack.push(child);
  }
  return false;
}

/** Bare or pg_catalog-qualified name of a call; undefined for other schemas. */
function functionName(call: FuncCall): string | undefined {
  const names = (call.funcname ?? []).map((n) => ('String' in n ? n.String.sval ?? '' : ''));
  if (names.length === 1) return names[0];
  return names.length === 2 && names[0] === 'pg_catalog' ? names[1] : undefined;
}
