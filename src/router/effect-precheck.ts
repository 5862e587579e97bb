/**
 * A cheap, conservative test of whether SQL text can change session state, so that the parser
 * runs only for text that might. It tokenizes as PostgreSQL's scanner does (comments, string
 * and dollar quoting, quoted identifiers) without building anything, and answers true when a
 * statement starts with a session-changing command or any token names a session-changing
 * function or clause. `UPDATE t SET x = 1` has neither, so it never reaches the parser.
 *
 * It reads the UTF-8 bytes of the message as they arrived: every statement of the forwarding
 * path passes through here, and for nearly all of them no string is ever made. Bytes of
 * multibyte characters (128 and up) count as identifier characters, as in PostgreSQL's scanner.
 */

/** Commands that change session state when they start a statement. */
const STARTERS = ['set', 'reset', 'discard', 'prepare', 'execute', 'deallocate', 'listen', 'unlisten', 'declare', 'close', 'drop',
  // DDL changes what statements prepared after it mean (see schema in server-statements).
  'create', 'alter',
  // Savepoints decide which effects of a transaction survive (TransactionMarker); ROLLBACK TO is one.
  // ROLLBACK (ABORT) also ends a transaction whose state pins tentatively (SessionState.pinUndoneByRollback).
  'savepoint', 'release', 'rollback', 'abort'];
/**
 * Also starters in an extended-protocol Parse: there a COMMIT shares its request (up to the Sync)
 * with the statements around it, and where it stands decides which of them it commits (see
 * SessionState.settle). A Query's text of COMMIT alone is a request of its own, and its tag is enough.
 */
const COMMITS = ['commit', 'end'];
/** Tokens that can change session state wherever they stand. */
// A CASCADE may take temp relations with it (ALTER TABLE ... DROP COLUMN ... CASCADE). An UPDATE of
// pg_settings sets what it names (its rule calls set_config).
const ANYWHERE = ['set_config', 'temp', 'temporary', 'pg_temp', 'hold', 'execute', 'rename', 'cascade', 'pg_settings'];
/** Any identifier containing this may name an advisory-lock function. */
const ADVISORY = bytesOf('advisory');
/** A temp schema by its own name (pg_temp_3), as pg_my_temp_schema() gives it. */
const PG_TEMP_N = bytesOf('pg_temp_');

/** Keywords by length, as bytes, so a word is compared only with keywords of its own length. */
const STARTERS_BY_LENGTH = byLength(STARTERS);
const PARSE_STARTERS_BY_LENGTH = byLength([...STARTERS, ...COMMITS]);
const ANYWHERE_BY_LENGTH = byLength(ANYWHERE);

/** Byte classes, one table load per byte: bit 1 starts an identifier, bit 2 continues one. */
const IDENT_START = 1;
const IDENT_PART = 2;
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const start = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
  const part = start || (c >= 48 && c <= 57) || c === 36;
  CLASS[c] = (start ? IDENT_START : 0) | (part ? IDENT_PART : 0);
}
const isIdentStart = (c: number): boolean => (CLASS[c]! & IDENT_START) !== 0;
const isIdentPart = (c: number): boolean => (CLASS[c]! & IDENT_PART) !== 0;
const lower = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c);

/** False only when the text provably has no session effects. */
export function mayHaveSessionEffects(sql: string): boolean {
  const bytes = Buffer.from(sql);
  return mayHaveSessionEffectsIn(bytes, 0, bytes.length);
}

/**
 * As mayHaveSessionEffects, for the UTF-8 text in bytes [start, end) of `buf`; `parsed`: the text
 * of a Parse, where a COMMIT counts too (see COMMITS).
 */
export function mayHaveSessionEffectsIn(buf: Uint8Array, start: number, end: number, parsed = false): boolean {
  const starters = parsed ? PARSE_STARTERS_BY_LENGTH : STARTERS_BY_LENGTH;
  let i = start;
  let atStart = true;
  while (i < end) {
    const c = buf[i]!;
    if (c === 59 /* ; */) {
      atStart = true;
      i++;
    } else if (c <= 32) {
      i++;
    } else if (c === 45 /* - */ && i + 1 < end && buf[i + 1] === 45) {
      i = skipLineComment(buf, i, end);
    } else if (c === 47 /* / */ && i + 1 < end && buf[i + 1] === 42) {
      i = skipBlockComment(buf, i, end);
    } else if (c === 39 /* ' */) {
      i = skipQuoted(buf, i, end, 39, false);
      atStart = false;
    } else if (c === 34 /* " */) {
      const close = skipQuoted(buf, i, end, 34, false);
      // A quoted name is compared as written (no case folding); one with "" escapes goes to the parser.
      if (hasDoubledQuote(buf, i + 1, close - 1) || interesting(buf, i + 1, close - 1, atStart, false, starters)) return true;
      i = close;
      atStart = false;
    } else if (c === 36 /* $ */) {
      i = skipDollar(buf, i, end);
      atStart = false;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < end && isIdentPart(buf[j]!)) j++;
      const next = j < end ? buf[j]! : -1;
      const single = j === i + 1 ? lower(c) : 0;
      // U&'...' and U&"..." spell words with escapes the scan cannot read: let the parser decide.
      if (single === 117 /* u */ && next === 38 /* & */) return true;
      if (next === 39 && (single === 101 /* e */ || single === 120 /* x */ || single === 98 /* b */ || single === 110 /* n */)) {
        i = skipQuoted(buf, j, end, 39, single === 101);
      } else {
        if (interesting(buf, i, j, atStart, true, starters)) return true;
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

function interesting(buf: Uint8Array, from: number, to: number, atStart: boolean, fold: boolean, starters: Uint8Array[][]): boolean {
  const n = to - from;
  return (atStart && oneOf(starters[n], buf, from, fold)) ||
    oneOf(ANYWHERE_BY_LENGTH[n], buf, from, fold) ||
    (n >= ADVISORY.length && contains(buf, from, to, ADVISORY, fold)) ||
    (n > PG_TEMP_N.length && matchesAt(buf, from, PG_TEMP_N, fold));
}

function oneOf(candidates: Uint8Array[] | undefined, buf: Uint8Array, at: number, fold: boolean): boolean {
  if (!candidates) return false;
  for (const word of candidates) if (matchesAt(buf, at, word, fold)) return true;
  return false;
}

function matchesAt(buf: Uint8Array, at: number, word: Uint8Array, fold: boolean): boolean {
  for (let k = 0; k < word.length; k++) {
    const c = buf[at + k]!;
    if ((fold ? lower(c) : c) !== word[k]) return false;
  }
  return true;
}

function contains(buf: Uint8Array, from: number, to: number, word: Uint8Array, fold: boolean): boolean {
  for (let at = from; at + word.length <= to; at++) if (matchesAt(buf, at, word, fold)) return true;
  return false;
}

function hasDoubledQuote(buf: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k + 1 < to; k++) if (buf[k] === 34 && buf[k + 1] === 34) return true;
  return false;
}

/** A `--` comment ends at a newline or a carriage return, as PostgreSQL's lexer ends it. */
function skipLineComment(buf: Uint8Array, from: number, end: number): number {
  for (let i = from + 2; i < end; i++) if (buf[i] === 10 || buf[i] === 13) return i + 1;
  return end;
}

function skipBlockComment(buf: Uint8Array, from: number, end: number): number {
  let depth = 0;
  let i = from;
  while (i < end) {
    if (buf[i] === 47 && buf[i + 1] === 42 && i + 1 < end) {
      depth++;
      i += 2;
    } else if (buf[i] === 42 && buf[i + 1] === 47 && i + 1 < end) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return end;
}

/** Skips a quoted run starting at `from` (the opening quote); doubled quotes escape, and backslashes in E''. */
function skipQuoted(buf: Uint8Array, from: number, end: number, quote: number, backslashes: boolean): number {
  let i = from + 1;
  while (i < end) {
    const c = buf[i]!;
    if (backslashes && c === 92) {
      i += 2;
    } else if (c === quote) {
      if (i + 1 >= end || buf[i + 1] !== quote) return i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  return end;
}

/** `$tag$ ... $tag$` is skipped whole; `$1` (a parameter) is just a token. */
function skipDollar(buf: Uint8Array, from: number, end: number): number {
  let j = from + 1;
  const first = j < end ? buf[j]! : -1;
  if (first >= 48 && first <= 57) {
    while (j < end && buf[j]! >= 48 && buf[j]! <= 57) j++;
    return j;
  }
  while (j < end && isIdentPart(buf[j]!) && buf[j] !== 36) j++;
  if (j >= end || buf[j] !== 36) return from + 1;
  const tagLength = j + 1 - from;
  for (let at = j + 1; at + tagLength <= end; at++) {
    if (buf[at] === 36 && sameBytes(buf, at, from, tagLength)) return at + tagLength;
  }
  return end;
}

function sameBytes(buf: Uint8Array, a: number, b: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (buf[a + k] !== buf[b + k]) return false;
  return true;
}

function bytesOf(word: string): Uint8Array {
  return new TextEncoder().encode(word);
}

function byLength(words: readonly string[]): Uint8Array[][] {
  const table: Uint8Array[][] = [];
  for (const w of words) (table[w.length] ??= []).push(bytesOf(w));
  return table;
}
