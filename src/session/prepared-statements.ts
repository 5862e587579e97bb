/**
 * Named prepared statements across pooled server connections. Each distinct (reading context, SQL,
 * parameter types) gets one server-side name shared by every client; a client's own names map
 * onto it. Whichever connection serves the client gets the statement prepared lazily, only when
 * missing. The reading context (SessionState.readingContext) is part of the key because PostgreSQL
 * reads a statement's text under the settings of whoever prepared it on that connection and keeps
 * that reading: the encoding of its bytes, the tables its path resolves to ("$user" by the current
 * role), the values of its literals (under TimeZone, DateStyle...). Two clients sharing one
 * statement under different settings would each get the other's reading.
 *
 * A client's Parse and Close change its names when they are written, so that the messages after
 * them in the same request see the change; each change is undone if the server skips or refuses
 * the message (see SlotUndo).
 */
import { createHash } from 'node:crypto';
import type { DescriptionWatcher, SlotUndo } from '../pool/expected-responses.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { schema, SHAPE_UNKNOWN } from '../pool/server-statements.js';
import type { SessionEffect } from '../router/session-effects.js';
import { Backend, Frontend } from '../wire/codes.js';
import { readCString } from '../wire/decode.js';
import { MessageWriter } from '../wire/messages.js';

export interface ClientStatement {
  serverName: string;
  /** The pool's plan epoch when the client prepared it: older than the statement's invalidation means stale. */
  epoch: number;
  /** The schema epoch when the client prepared it: a copy prepared before it does not serve it (see schema). */
  schemaAt: number;
  /** Its text changes the schema (see ddlText): each run of it counts as a change. */
  ddl: boolean;
  /** A Parse frame for `serverName`, ready to send to a connection that lacks the statement. */
  parse: Buffer;
  /** What running it does to the session (a SET, an advisory lock...): staged at each Execute. */
  effects: readonly SessionEffect[];
  /** The client's reading context it is prepared under (its shared name is that context's). */
  context: string;
  /**
   * PostgreSQL checks what the statement returns each time it runs it again, and refuses it
   * (0A000) when DDL changed that: true for plannable statements, false for utility ones (FETCH,
   * EXECUTE, SHOW...), which it never checks. pgway checks the same ones (see ShapeCheck).
   */
  checked: boolean;
  /**
   * What the statement takes and returns as the client prepared it: its parameter types and its
   * columns' types. PostgreSQL never changes it: once DDL makes the statement return something
   * else it refuses each run (0A000), until the tables have that shape again. Undefined until
   * known: a statement pgway answered the Parse of itself takes the shape of the first copy it
   * runs on (see shapeGuessed).
   */
  shape: string | undefined;
  /**
   * `shape` was taken from a copy described before the client's Parse, which pgway answered
   * itself, and the statement has not yet run on it: DDL between that description and the Parse
   * would make the copy's plan stale where the client's is not (see PreparedStatements.renew).
   */
  shapeGuessed: boolean;
  /**
   * The reading context the client prepared it under, and its shape there. PostgreSQL compares what
   * the statement returns under any path with what it returned when prepared: under another path
   * it refuses it each time that differs, and runs it again once the client is back.
   */
  homeContext: string;
  homeShape: string | undefined;
}

/** The client's statement is known to return `shape`, under the context it has now; `guessed`: see ClientStatement.shapeGuessed. */
export function learnShape(stmt: ClientStatement, shape: string | undefined, guessed = false): void {
  stmt.shape = shape;
  stmt.shapeGuessed = guessed;
  if (stmt.context === stmt.homeContext) stmt.homeShape = shape;
}

/**
 * Statements PostgreSQL analyses again when their plan is stale and whose result can change shape
 * (see ClientStatement.checked): its plannable ones and CALL. A `--` comment ends at a newline or a
 * carriage return, as PostgreSQL's lexer ends it.
 */
const CHECKED = /^(?:\s|--[^\n\r]*(?:[\n\r]|$)|\/\*[\s\S]*?\*\/|\()*(?:select|insert|update|delete|merge|with|values|table|call)\b/i;

/** Server-side statement names, by reading context and content, shared by all clients (bounded). */
const namesByContent = new Map<string, string>();

/**
 * A context is `\0name=value` pairs, never two NULs in a row nor one at its end: the first two in
 * a row end it, whatever the body holds.
 */
const CONTEXT_END = '\u0000\u0000';

function serverNameFor(body: Buffer, context: string): string {
  const key = `${context}${CONTEXT_END}${body.toString('latin1')}`;
  let name = namesByContent.get(key);
  if (!name) {
    name = `pgw_${createHash('sha1').update(context).update(CONTEXT_END).update(body).digest('hex').slice(0, 28)}`;
    if (namesByContent.size >= 10_000) namesByContent.clear();
    namesByContent.set(key, name);
  }
  return name;
}

/** Replaces the name (a cstring at `nameAt`) inside a frame; everything else is copied as is. */
function withName(frame: Buffer, start: number, end: number, nameAt: number, name: string): Buffer {
  const nameEnd = frame.indexOf(0, nameAt) + 1;
  const w = new MessageWriter(end - start + name.length + 8);
  w.bytes(frame.subarray(start + 5, nameAt)).cstring(name).bytes(frame.subarray(nameEnd, end));
  return w.frame(frame[start]!);
}

export class PreparedStatements {
  private readonly byClientName = new Map<string, ClientStatement>();
  /** The name and statement of the client's last Bind of a named statement (see clientNameOf). */
  private lastBoundName = '';
  private lastBound: ClientStatement | undefined;

  get size(): number {
    return this.byClientName.size;
  }

  get(name: string): ClientStatement | undefined {
    return this.byClientName.get(name);
  }

  delete(name: string): void {
    this.byClientName.delete(name);
  }

  /** The client binds its statement `name`. */
  bound(name: string, stmt: ClientStatement): void {
    this.lastBoundName = name;
    this.lastBound = stmt;
  }

  /**
   * The client's name for the shared statement `serverName`, which a Bind's error names: the name of
   * its last Bind (a failing Bind stops its group, and the client may have closed the name since
   * in it), or else the first of its names for it.
   */
  clientNameOf(serverName: string): string | undefined {
    if (this.lastBound?.serverName === serverName) return this.lastBoundName;
    for (const [name, stmt] of this.byClientName) if (stmt.serverName === serverName) return name;
    return undefined;
  }

  /**
   * Forgets every statement (DEALLOCATE ALL, DISCARD ALL); the function returned brings back those
   * not defined again since, for a request that failed before it ran.
   */
  clear(): () => void {
    const before = new Map(this.byClientName);
    this.byClientName.clear();
    return () => {
      for (const [name, stmt] of before) if (!this.byClientName.has(name)) this.byClientName.set(name, stmt);
    };
  }

  /**
   * The client has seen the server's stale-plan error of the shared statement `serverName`: its
   * names for it are current again. They keep the shape they were prepared with, so that each
   * copy prepared afresh is compared with it (StatementCopies.prepareFor), as PostgreSQL refuses
   * the statement each run while it returns something else. A shape guessed from the copy that
   * failed on its first run is dropped: the client may have prepared the statement after the DDL
   * (PostgreSQL would run it), so it takes the next copy's.
   */
  renew(serverName: string, epoch: number): void {
    for (const stmt of this.byClientName.values()) {
      if (stmt.serverName !== serverName) continue;
      stmt.epoch = epoch;
      if (stmt.shapeGuessed) learnShape(stmt, undefined);
    }
  }

  /**
   * The server-side name a named Parse maps to, when its name is new (such a Parse may be answered
   * without a server: parsing a statement changes no session state, whatever running it would do);
   * undefined otherwise.
   */
  serverNameOf(frame: Buffer, start: number, end: number, context: string): string | undefined {
    const [name, queryAt] = readCString(frame, start + 5, end);
    if (name === '' || this.byClientName.has(name)) return undefined;
    return serverNameFor(frame.subarray(queryAt, end), context);
  }

  /** A client's named Parse: its name and statement (not yet defined), or undefined for the unnamed one. */
  onParse(frame: Buffer, start: number, end: number, epoch: number, context: string, effects: readonly SessionEffect[], ddl = false): [string, ClientStatement] | undefined {
    const [name, queryAt] = readCString(frame, start + 5, end);
    if (name === '') return undefined;
    const serverName = serverNameFor(frame.subarray(queryAt, end), context);
    const checked = CHECKED.test(readCString(frame, queryAt, end)[0]);
    const parse = withName(frame, start, end, start + 5, serverName);
    return [name, { serverName, epoch, schemaAt: schema.epoch, ddl, parse, effects, context, checked, shape: undefined, shapeGuessed: false, homeContext: context, homeShape: undefined }];
  }

  /**
   * The client changed its reading context since it prepared `name`: from now on the statement runs
   * under the shared name of the context it has now, prepared under that context. For the path (and
   * the role "$user" resolves by) that is what PostgreSQL does: it analyses the statement again under
   * the path in force, and refuses it if it then returns something else. For the other settings it
   * would keep its first reading (see README). Either way a server name only ever holds a statement
   * read under exactly its context, which other clients share.
   */
  forContext(name: string, stmt: ClientStatement, context: string): ClientStatement {
    const body = stmt.parse.subarray(stmt.parse.indexOf(0, 5) + 1);
    const serverName = serverNameFor(body, context);
    // PostgreSQL checks what it returns under the new path against what it returned when prepared.
    const moved: ClientStatement = { ...stmt, serverName, context, parse: withName(stmt.parse, 0, stmt.parse.length, 5, serverName), shape: stmt.homeShape };
    this.byClientName.set(name, moved);
    return moved;
  }

  /**
   * Defines `name` as the message goes out. The change returned undoes it if the server skips
   * the Parse; `frame` is the response pgway synthesizes for it, `statement` the server-side
   * statement the Parse prepares, if it does.
   */
  define(name: string, stmt: ClientStatement, frame?: Buffer, statement?: string): SlotUndo {
    const change = new StatementChange(this.byClientName, name, this.byClientName.get(name), stmt, frame, statement);
    this.byClientName.set(name, stmt);
    return change;
  }

  /** Closes `name` as the Close (or SQL DEALLOCATE) goes out, answered with `frame`; undone if the server skips it. */
  close(name: string, frame?: Buffer): SlotUndo {
    const change = new StatementChange(this.byClientName, name, this.byClientName.get(name), undefined, frame);
    this.byClientName.delete(name);
    return change;
  }
}

class StatementChange implements SlotUndo {
  constructor(
    private readonly names: Map<string, ClientStatement>,
    private readonly name: string,
    private readonly before: ClientStatement | undefined,
    private readonly after: ClientStatement | undefined,
    readonly frame?: Buffer,
    readonly statement?: string,
  ) {}

  undo(): void {
    if (this.names.get(this.name) !== this.after) return; // changed again since: that change decides
    if (this.before) this.names.set(this.name, this.before);
    else this.names.delete(this.name);
  }
}

/**
 * pgway's Describe of a shared statement it has just prepared on a connection: records what the
 * copy takes and returns (ServerStatements.prepared), so that a client that prepared the statement
 * before DDL changed it is refused there as PostgreSQL would refuse it, not answered with rows of
 * another shape (StatementCopies.prepareFor). `own`: the client statement whose Parse it was.
 */
export class ShapeCheck implements DescriptionWatcher {
  private params = '';

  constructor(
    private readonly conn: ServerConnection,
    private readonly serverName: string,
    private readonly own?: ClientStatement,
  ) {}

  described(code: number, frame: Buffer, start: number, end: number): void {
    if (code === Backend.ParameterDescription) {
      this.params = frame.toString('hex', start + 5, end);
      return;
    }
    const shape = `${this.params}/${code === Backend.RowDescription ? columnTypes(frame, start, end) : '-'}`;
    this.conn.statements.described(this.serverName, shape);
    if (this.own && this.own.shape === undefined) learnShape(this.own, shape);
  }

  /** The Describe failed or was skipped: the copy's shape stays unknown (the Parse's failure drops the copy). */
  undo(): void {
    this.conn.statements.described(this.serverName, SHAPE_UNKNOWN);
  }
}

/**
 * A RowDescription's column types and type modifiers, as hex: what PostgreSQL compares when it
 * checks a plan's result type again (since version 17, not the column names).
 */
function columnTypes(frame: Buffer, start: number, end: number): string {
  const n = frame.readInt16BE(start + 5);
  let at = start + 7;
  let out = '';
  for (let i = 0; i < n && at < end; i++) {
    at = frame.indexOf(0, at) + 1 + 6; // past the name, the table's oid and the column's number
    out += `${frame.toString('hex', at, at + 4)}${frame.toString('hex', at + 6, at + 10)},`;
    at += 12; // type oid, length, modifier, format
  }
  return out;
}

/** The statement a Bind names, and where that name starts. */
export function bindStatement(frame: Buffer, start: number, end: number): [string, number] {
  const [, stmtAt] = readCString(frame, start + 5, end);
  const [name] = readCString(frame, stmtAt, end);
  return [name, stmtAt];
}

export function renameBind(frame: Buffer, start: number, end: number, stmtAt: number, serverName: string): Buffer {
  return withName(frame, start, end, stmtAt, serverName);
}

/** For Describe and Close: the target type ('S' or 'P') and the name. */
export function targetOf(frame: Buffer, start: number, end: number): [number, string] {
  const [name] = readCString(frame, start + 6, end);
  return [frame[start + 5]!, name];
}


export function closeStatement(serverName: string): Buffer {
  return new MessageWriter(32 + serverName.length).byte(0x53).cstring(serverName).frame(Frontend.Close);
}
