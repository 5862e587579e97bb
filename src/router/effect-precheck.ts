/**
 * A cheap, conservative test of whether SQL text can change session state, so that the parser
 * runs only for text that might. It tokenizes as PostgreSQL's scanner does (comments, string
 * and dollar quoting, quoted identifiers) without building anything, and answers true when a
 * statement starts with a session-changing command or any token names a session-changing
 * function or clause. `UPDATE t SET x = 1` has neither, so it never reaches the parser.
 */

/** Commands that change session state when they start a statement. */
const STARTERS = new Set(['set', 'reset', 'discard', 'prepare', 'execute', 'deallocate', 'listen', 'unlisten', 'declare', 'close']);
/** Tokens that can change session state wherever they stand. */
const ANYWHERE = new Set(['set_config', 'temp', 'temporary', 'pg_temp', 'hold', 'execute']);

const isIdentStart = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
const isIdentPart = (c: number): boolean => isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;

function interesting(word: string, atStart: boolean): boolean {
  return (atStart && STARTERS.has(word)) || ANYWHERE.has(word) || word.includes('advisory');
}

/** False only when the text provably has no session effects. */
export function mayHaveSessionEffects(sql: string): boolean {
  const n = sql.length;
  let i = 0;
  let atStart = true;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 59 /* ; */) {
      atStart = true;
      i++;
    } else if (c <= 32) {
      i++;
    } else if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42) {
      i = skipBlockComment(sql, i);
    } else if (c === 39 /* ' */) {
      i = skipQuoted(sql, i, 39, false);
      atStart = false;
    } else if (c === 34 /* " */) {
      const end = skipQuoted(sql, i, 34, false);
      if (interesting(sql.slice(i + 1, end - 1).replaceAll('""', '"'), atStart)) return true;
      i = end;
      atStart = false;
    } else if (c === 36 /* $ */) {
      i = skipDollar(sql, i);
      atStart = false;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      const word = sql.slice(i, j).toLowerCase();
      const next = sql.charCodeAt(j);
      // U&'...' and U&"..." spell words with escapes the scan cannot read: let the parser decide.
      if (word === 'u' && next === 38 /* & */) return true;
      if (next === 39 && (word === 'e' || word === 'x' || word === 'b' || word === 'n')) {
        i = skipQuoted(sql, j, 39, word === 'e');
      } else {
        if (interesting(word, atStart)) return true;
        i = j;
      }
      atStart = false;
    } else {
      // Punctuation and numbers; '(' keeps a statement's start, e.g. "(SELECT ...)".
      if (c !== 40) atStart = false;
      i++;
    }
  }
  return false;
}

function skipBlockComment(sql: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < sql.length) {
    if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
      depth++;
      i += 2;
    } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** Skips a quoted run starting at `from` (the opening quote); doubled quotes escape, and backslashes in E''. */
function skipQuoted(sql: string, from: number, quote: number, backslashes: boolean): number {
  let i = from + 1;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (backslashes && c === 92) {
      i += 2;
    } else if (c === quote) {
      if (sql.charCodeAt(i + 1) !== quote) return i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** `$tag$ ... $tag$` is skipped whole; `$1` (a parameter) is just a token. */
function skipDollar(sql: string, from: number): number {
  let j = from + 1;
  const first = sql.charCodeAt(j);
  if (first >= 48 && first <= 57) {
    while (j < sql.length && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++;
    return j;
  }
  while (j < sql.length && isIdentPart(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
  if (sql.charCodeAt(j) !== 36) return from + 1;
  const tag = sql.slice(from, j + 1);
  const close = sql.indexOf(tag, j + 1);
  return close < 0 ? sql.length : close + tag.length;
}
