/**
 * A client's SQL-level prepared statements in the pooled modes (PREPARE / EXECUTE / DEALLOCATE):
 * each name's definition, which GroupPlacement.placeSqlPrepared lays on whichever connection runs
 * the client's EXECUTE; what running it does to the session; and the PREPAREs and DEALLOCATEs
 * written and not yet answered, which a request that fails takes back unless they ran before the
 * failure (they are not transactional).
 */
import type { ServerConnection } from '../pool/server-connection.js';
import { SQL_UNKNOWN } from '../pool/server-statements.js';
import { quoteIdentifier } from '../router/guc-value.js';
import { classifySessionEffects, type SessionEffect } from '../router/session-effects.js';
import { quoteLiteral } from './startup-params.js';

/**
 * A SQL-level prepared statement's definition: the PREPARE, then the reading context it was read
 * under (SessionState.readingContext, `\0name=value` pairs). Two clients' PREPAREs of one text
 * under other settings are two definitions, as PostgreSQL keeps each one's reading.
 */
export function sqlDefinition(name: string, sql: string, paramTypes: readonly string[], context: string): string {
  const types = paramTypes.length ? `(${paramTypes.join(', ')})` : '';
  return `PREPARE ${quoteIdentifier(name)}${types} AS ${sql}${context}`;
}

/**
 * The text that lays definition `def` on a connection whose settings are those of context `now`,
 * and the definition the connection then holds. Where `def` was read under other settings, they
 * are set for pgway's Query alone (set_config local to its implicit transaction) so that the
 * PREPARE reads its text as the client's did. Not inside a transaction block, where they would
 * stay until its end: there it is read under the settings in force (see README), and held as such.
 * The client_encoding is left: pgway's Query is decoded as a whole in the one in force.
 */
export function layingOn(def: string, now: string, inBlock: boolean): [text: string, holds: string] {
  const at = def.indexOf('\u0000');
  const prepare = at < 0 ? def : def.slice(0, at);
  const then = at < 0 ? '' : def.slice(at);
  if (then === now) return [prepare, def];
  if (inBlock) return [prepare, prepare + now];
  const wanted = contextValues(then);
  const current = contextValues(now);
  const calls: string[] = [];
  for (const [name, value] of wanted) if (current.get(name) !== value) calls.push(localSetting(name, value));
  // A setting the client has now and had not then goes back to the server's default.
  for (const name of current.keys()) if (!wanted.has(name)) calls.push(localSetting(name, null));
  return [calls.length > 0 ? `SELECT ${calls.join(', ')}; ${prepare}` : prepare, def];
}

/** The settings of a context, except client_encoding (see layingOn). */
function contextValues(context: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const pair of context.split('\u0000')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq) !== 'client_encoding') values.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return values;
}

/** set_config local to the transaction; NULL resets the setting. */
function localSetting(name: string, value: string | null): string {
  return `pg_catalog.set_config(${quoteLiteral(name)}, ${value === null ? 'NULL' : quoteLiteral(value)}, true)`;
}

/**
 * A PREPARE or DEALLOCATE written in request `request` and not yet answered: what the name meant
 * `before`, and `after` it (undefined: deallocated). A DEALLOCATE ALL (or DISCARD ALL) is a change
 * per name, all of one `statement`, or a change of no name (`name` '') when the client had none.
 */
interface PendingChange {
  request: number;
  /** Which statement made the change, counted from 1 (see settle); 0 for one no statement's answer confirms. */
  statement: number;
  name: string;
  /** A change of a DEALLOCATE ALL's. */
  all?: true;
  /** Written in a failed block it does not end: the server refuses it, and nothing of pgway's was laid on for it. */
  asIs?: true;
  before: { def: string; body: readonly SessionEffect[] | undefined } | undefined;
  after: string | undefined;
  /** What else the request's failure takes back (the client's protocol-level statements a DEALLOCATE ALL dropped). */
  restore?: () => void;
}

export class SqlStatements {
  // Both maps are made at the first PREPARE: most clients never send one, and an empty Map costs
  // an idle client about 180 bytes (bench:idle).
  /** Name -> its definition (see sqlDefinition). */
  private defs: Map<string, string> | undefined;
  /** What running each statement does to the session, where it does anything. */
  private bodies: Map<string, readonly SessionEffect[]> | undefined;
  private readonly pending: PendingChange[] = [];
  /** Statements noted in `pending` so far (see PendingChange.statement). */
  private statements = 0;
  /** The request written in a failed block it does not end (see leftAsIs). */
  private asIsRequest = -1;

  get(name: string): string | undefined {
    return this.defs?.get(name);
  }

  /** How many statements the client has. */
  get size(): number {
    return this.defs?.size ?? 0;
  }

  /** What running `name` does to the session (a set_config, an advisory lock), if anything. */
  bodyOf(name: string): readonly SessionEffect[] | undefined {
    return this.bodies?.get(name);
  }

  /** Some PREPARE or DEALLOCATE awaits its answer (see settle). */
  get unsettled(): boolean {
    return this.pending.length > 0;
  }

  /**
   * A PREPARE written in request `request`. PostgreSQL refuses a name the session has (42P05), and
   * the first definition stays. (A request that names statements waits for what is unanswered
   * before it: RequestWriter.)
   */
  prepare(request: number, name: string, sql: string, paramTypes: readonly string[], context: string): void {
    if (this.defs?.has(name)) return;
    const def = sqlDefinition(name, sql, paramTypes, context);
    this.note(request, ++this.statements, name, def);
    (this.defs ??= new Map()).set(name, def);
    const { effects: body } = classifySessionEffects(sql);
    if (body.length > 0) (this.bodies ??= new Map()).set(name, body);
    else this.bodies?.delete(name);
  }

  deallocate(request: number, name: string): void {
    this.note(request, ++this.statements, name, undefined);
    this.defs?.delete(name);
    this.bodies?.delete(name);
  }

  deallocateAll(request: number): void {
    const statement = ++this.statements;
    if (this.defs) for (const name of this.defs.keys()) this.note(request, statement, name, undefined, true);
    else this.note(request, statement, '', undefined, true);
    this.defs = undefined;
    this.bodies = undefined;
  }

  /**
   * Request `request` is written in a failed transaction block it does not end: every statement
   * of it is refused, and the connection holds what it held (nothing was laid on for it).
   */
  leftAsIs(request: number): void {
    this.asIsRequest = request;
  }

  /**
   * `restore` runs if the request being written fails (see settle), unless it is part of what the
   * request's first DEALLOCATE of `name` (or DEALLOCATE ALL, when `name` is undefined) did, and that ran.
   */
  onTakeBack(restore: () => void, request: number, name?: string): void {
    const { pending } = this;
    let statement = 0;
    for (let i = pending.length - 1; i >= 0 && pending[i]!.request === request; i--) {
      const p = pending[i]!;
      if (p.restore === undefined && p.after === undefined && (name === undefined ? p.all === true : p.all === undefined && p.name === name)) statement = p.statement;
    }
    pending.push({ request, statement, name: '', before: undefined, after: undefined, restore });
  }

  /**
   * The PREPAREs and DEALLOCATEs of the requests answered (`upTo`, or every one written when
   * undefined), of which the server answered `ran` with their tag. If the requests `erred`, the
   * first `ran` statements stay, as PostgreSQL keeps them whatever follows (the server answers in
   * order, and stops a request at its error); the rest are taken back: PostgreSQL refused them (a
   * name in use, a table missing, an aborted transaction block) or never ran them, and the name
   * means what it meant before, unless a later one changed it since. What the connection holds of
   * those names is then unknown: the next statement laid on it that names one of them starts with a
   * DEALLOCATE ALL, and so does its next lease. (After a DEALLOCATE ALL or DISCARD ALL of the
   * client's, every name is in doubt.) Known limit: requests settled together (those whose
   * ReadyForQuery a COPY swallowed) are counted as one.
   */
  settle(server: ServerConnection, erred: boolean, ran: number, upTo?: number): void {
    const pending = this.pending;
    let n = 0;
    while (n < pending.length && (upTo === undefined || pending[n]!.request <= upTo)) n++;
    if (n === 0) return;
    const lastRan = erred ? this.lastRan(n, ran) : Infinity;
    for (let i = n - 1; i >= 0 && erred; i--) {
      const { name, restore, statement, asIs } = pending[i]!;
      if (statement !== 0 && statement <= lastRan) continue;
      this.takeBack(i, n);
      if (restore) server.statements.deallocateAll = true;
      else if (!asIs && name !== '') server.statements.sql.set(name, SQL_UNKNOWN);
    }
    this.forgetDropped(server, n, lastRan);
    pending.splice(0, n);
  }

  /**
   * The last of the first `n` pending changes' statements that ran, the server having confirmed
   * `ran` of them (statements are numbered in the order written, and answered so); 0 if none.
   */
  private lastRan(n: number, ran: number): number {
    let last = 0;
    for (let i = 0, seen = 0; i < n && seen < ran; i++) {
      const { statement, restore } = this.pending[i]!;
      if (restore || statement === last) continue;
      seen++;
      last = statement;
    }
    return last;
  }

  /**
   * A DEALLOCATE among the first `n` pending changes that ran (up to statement `lastRan`) left the
   * connection without the name (sqlPlacement marked it unknown until then), unless a later
   * change is pending for the name.
   */
  private forgetDropped(server: ServerConnection, n: number, lastRan: number): void {
    const { pending } = this;
    const { sql } = server.statements;
    for (let i = 0; i < n; i++) {
      const { name, after, all, restore, statement } = pending[i]!;
      if (after !== undefined || all === true || restore || statement > lastRan || sql.get(name) !== SQL_UNKNOWN) continue;
      if (!pending.some((p, j) => j > i && p.name === name)) sql.delete(name);
    }
  }

  /** Takes back pending change `i`; those from `firstLater` on are of requests still unanswered. */
  private takeBack(i: number, firstLater: number): void {
    const { name, before, after, restore } = this.pending[i]!;
    if (restore) {
      restore();
      return;
    }
    // A later PREPARE or DEALLOCATE of the name, still unanswered, started from this one's result.
    for (let j = firstLater; j < this.pending.length; j++) {
      const later = this.pending[j]!;
      if (later.name === name && later.before?.def === after) later.before = before;
    }
    if (this.defs?.get(name) !== after) return; // changed again since: that change decides
    if (before === undefined) {
      this.defs?.delete(name);
      this.bodies?.delete(name);
      return;
    }
    (this.defs ??= new Map()).set(name, before.def);
    if (before.body === undefined) this.bodies?.delete(name);
    else (this.bodies ??= new Map()).set(name, before.body);
  }

  private note(request: number, statement: number, name: string, after: string | undefined, all?: true): void {
    const def = this.defs?.get(name);
    const before = def === undefined ? undefined : { def, body: this.bodies?.get(name) };
    const change: PendingChange = { request, statement, name, before, after };
    if (all) change.all = all;
    if (request === this.asIsRequest) change.asIs = true;
    this.pending.push(change);
  }
}
