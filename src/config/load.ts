// Reads the YAML config: parse with positions, interpolate ${VAR} in string values, validate with schema.ts,
// and report every problem with the file, line, column and dotted field it concerns.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { validateConfig, type Config, type PathIssue } from './schema.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigIssue {
  file: string;
  line?: number;
  column?: number;
  /** Dotted path as written in the YAML, e.g. `databases.app.pool.size` or `auth.users[1].name`; '' for the whole file. */
  field: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(formatIssues(issues));
    this.issues = issues;
  }

  /** One line per issue: `my.yaml:12:5 databases.app.pool.size: expected an integer >= 1, got "x"`. */
  format(): string {
    return formatIssues(this.issues);
  }
}

export function formatIssue(issue: ConfigIssue): string {
  let where = issue.file;
  if (issue.line !== undefined) where += `:${issue.line}${issue.column === undefined ? '' : `:${issue.column}`}`;
  return issue.field ? `${where} ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map(formatIssue).join('\n');
}

/** Loads `path`, or with no path the package's `config/default.yaml`, or all defaults when that is missing too. */
export function loadConfig(path?: string, env: Env = process.env): Config {
  const file = path ?? shippedDefaultPath();
  if (file === undefined) return defaultConfig();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, field: '', message: `cannot read the config file: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  return parseConfig(text, file, env);
}

let defaults: Config | undefined;

/** Every field at its default: no databases (so the sandbox runs), no users. */
export function defaultConfig(): Config {
  defaults ??= parseConfig('', '<defaults>', {});
  return defaults;
}

/** Parses config text; `source` names it in errors and is the base for relative paths (a `<name>` means the cwd). */
export function parseConfig(text: string, source: string, env: Env = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  // Syntax errors first: the tree may be partial, so nothing after this would be trustworthy.
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ file: source, ...at(e.pos[0]), field: '', message: e.message })));
  }

  const issues: ConfigIssue[] = interpolate(doc, env).map((i) => ({ file: source, ...at(i.offset), field: i.field, message: i.message }));

  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    // e.g. too many alias expansions (a "billion laughs" document)
    throw new ConfigError([{ file: source, field: '', message: err instanceof Error ? err.message : String(err) }]);
  }

  // Validate even when a variable is missing, so one run reports everything; a field whose placeholder
  // failed is reported once, for the variable, not again for the leftover `${...}` text.
  const result = validateConfig(value, source);
  if (result.ok && issues.length === 0) return result.config;
  const unresolved = new Set(issues.map((i) => i.field));
  for (const i of result.ok ? [] : result.issues) {
    const field = fieldName(i.path);
    if (!unresolved.has(field)) issues.push({ file: source, ...at(offsetOf(doc, i)), field, message: i.message });
  }
  throw new ConfigError(sortByLine(issues));
}

function sortByLine(issues: ConfigIssue[]): ConfigIssue[] {
  const key = (i: ConfigIssue) => (i.line ?? Infinity) * 1e6 + (i.column ?? 0);
  return issues.map((issue, index) => ({ issue, index }))
    .sort((a, b) => key(a.issue) - key(b.issue) || a.index - b.index)
    .map((e) => e.issue);
}

export function fieldName(path: readonly (string | number)[]): string {
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

/** The source offset of the node a path names: its value, or its key when asked or when the key has no value.
 * A path that leaves the document (a required field that is missing) stops at the deepest node that exists. */
function offsetOf(doc: Document, issue: PathIssue): number | undefined {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0];
  for (const [i, seg] of issue.path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      node = pair.value;
      const valueOffset = isScalar(node) || isMap(node) || isSeq(node) || isAlias(node) ? node.range?.[0] : undefined;
      const last = i === issue.path.length - 1;
      offset = (last && issue.atKey) || valueOffset === undefined ? keyOffset : valueOffset;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      if (!(isScalar(node) || isMap(node) || isSeq(node) || isAlias(node))) break;
      offset = node.range?.[0];
    } else {
      break;
    }
  }
  return offset;
}

// ---- ${VAR} and ${VAR:-default} ----

interface EnvIssue { offset?: number; field: string; message: string }

// `$${` is a literal `${`; `${NAME}`, `${NAME:-default}` (default when unset or empty); anything else is an error.
const PLACEHOLDER = /\$\$\{|\$\{([^}]*)(\}?)/g;
const BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Replaces placeholders in every string value (never in keys) in place, and returns what could not be resolved. */
function interpolate(doc: Document, env: Env): EnvIssue[] {
  const issues: EnvIssue[] = [];
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const field = fieldName(pathOf([...ancestors, node]));
      const report = (message: string) => issues.push({ offset: node.range?.[0], field, message });
      node.value = node.value.replace(PLACEHOLDER, (match, body: string | undefined, close: string | undefined) => {
        if (match === '$${') return '${';
        const parts = close ? BODY.exec(body ?? '') : null;
        if (!parts) {
          report(`malformed placeholder "${match}": expected \${NAME} or \${NAME:-default}`);
          return match;
        }
        const [, name = '', fallback] = parts;
        const value = env[name];
        if (fallback !== undefined && (value === undefined || value === '')) return fallback;
        if (value === undefined) {
          report(`environment variable ${name} is not set (write \${${name}:-default} to give it a default)`);
          return match;
        }
        return value;
      });
    },
  });
  return issues;
}

function pathOf(chain: readonly unknown[]): (string | number)[] {
  const path: (string | number)[] = [];
  for (const [i, node] of chain.entries()) {
    if (isPair(node)) path.push(isScalar(node.key) ? String(node.key.value) : '?');
    else if (isSeq(node)) path.push(node.items.indexOf(chain[i + 1] as never));
  }
  return path;
}

function shippedDefaultPath(): string | undefined {
  // Walk up from this module to the package root: the same code runs from src/ (tsx) and dist/src/ (built).
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const file = join(dir, 'config', 'default.yaml');
      return existsSync(file) ? file : undefined;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
