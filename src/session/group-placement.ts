/**
 * Lays a client's SQL-level prepared statements on a shared server connection where its request
 * needs them: before an extended-protocol group's first message for all the group's messages name
 * (a simple Query of pgway's inside the group would commit what the group did so far), and before a
 * Query's text; a message that needs one where nothing of pgway's can run first is refused. What
 * is laid on is decided by sqlPlacement; the RequestWriter says where in the group it is.
 */
import type { ServerConnection } from '../pool/server-connection.js';
import type { SessionEffect } from '../router/session-effects.js';
import { Frontend, TxStatus } from '../wire/codes.js';
import { readCString } from '../wire/decode.js';
import * as msg from '../wire/messages.js';
import { effectsOfParse, NO_EFFECTS } from './frame-effects.js';
import type { HeldFrames } from './held-frames.js';
import { bindStatement, targetOf, type PreparedStatements } from './prepared-statements.js';
import type { SessionState } from './session-state.js';
import type { UnnamedStatement } from './unnamed-statement.js';
import { endsFailedBlock, firstStatementName, namesSqlStatement, sqlPlacement } from './sql-placement.js';

/** A request that needs a SQL-level statement laid on where nothing of pgway's can run first. */
const CANNOT_PLACE = {
  'failed-block': ['inside a failed transaction block', 'End the failed transaction block in a query of its own, then run the rest.'],
  'mid-group': ['in the middle of an extended-protocol request', 'Send the messages that name it in one write, or after a Sync.'],
  // pgway's PREPARE, a simple Query, would drop the unnamed statement the Bind is for.
  unnamed: ['for the unnamed statement parsed in an earlier request', 'Parse the statement again in the request that binds it.'],
} as const;

export const cannotPlace = (name: string, where: keyof typeof CANNOT_PLACE): Buffer =>
  msg.errorResponse({
    severity: 'ERROR',
    sqlstate: '0A000',
    message: `pgway cannot prepare statement "${name}" on this connection ${CANNOT_PLACE[where][0]}`,
    hint: CANNOT_PLACE[where][1],
  });

/** What placing needs of the writer: pgway's own writes go after the client's frames held so far. */
export interface OwnWrites {
  beforeOwnWrite(server: ServerConnection): void;
}

export class GroupPlacement {
  /**
   * The effects of the held Parses placeForGroup read, by held index, for onParse (cleared after each
   * write); made at the first scan, so an idle client has none.
   */
  parseEffects: (readonly SessionEffect[] | undefined)[] | undefined;

  constructor(
    private readonly held: HeldFrames,
    private readonly statements: PreparedStatements,
    private readonly tracked: boolean,
    private readonly writes: OwnWrites,
  ) {}

  /** The effects of the client's statement `name`: as parsed earlier in the group being placed, or as the client has it. */
  private effectsOfStatement(name: string, parsedHere: ReadonlyMap<string, readonly SessionEffect[]> | undefined): readonly SessionEffect[] {
    return parsedHere?.get(name) ?? this.statements.get(name)?.effects ?? NO_EFFECTS;
  }

  /**
   * Before the first message of an extended-protocol group: lays on the SQL-level statements the
   * group's held messages name (Binds of statements whose text is EXECUTE/PREPARE/DEALLOCATE, and
   * unnamed Parses of such text; Binds and Describes of names the client PREPAREd in SQL), so that
   * no Query of pgway's runs inside the group. Returns
   * 'wait' when answers are owed first (what the connection holds depends on them, and whether a
   * name a Parse of the group reuses is still taken: the Parse that took it may yet fail), the
   * error for the name it could not place (see placeSqlPrepared, unnamedUnplaced), 'placed' when
   * the group's statements are laid on (the writer's groupPlaced), or undefined when it names none.
   * `parsedSqlNames`: the client has parsed a statement whose text names SQL-level statements;
   * `unnamed`: the client's unnamed statement, whose effects count where the group binds it unparsed.
   */
  placeForGroup(
    server: ServerConnection,
    session: SessionState,
    first: number,
    parsedSqlNames: boolean,
    unnamed: UnnamedStatement,
  ): Buffer | 'wait' | 'placed' | undefined {
    const held = this.held;
    let effects: SessionEffect[] | undefined;
    // Names in Binds and Describes are read only when they can matter (reading a name makes a string):
    // the client has SQL-level statements, or statements whose text names some.
    const sqlNames = session.sqlPrepared.size > 0;
    let bindNames = sqlNames || parsedSqlNames;
    const unanswered = this.tracked && server.busy;
    let unnamedParsed = false;
    let unnamedBound = false;
    /** Named statements parsed in the group whose text names SQL-level statements: placed if bound in it. */
    let parsedHere: Map<string, readonly SessionEffect[]> | undefined;
    for (let j = first; j < held.count && held.codes[j] !== Frontend.Sync; j++) {
      const code = held.codes[j]!;
      if (code !== Frontend.Parse && code !== Frontend.Close && !bindNames) continue;
      const buf = held.bufs[j]!;
      const start = held.starts[j]!;
      const end = held.ends[j]!;
      let name = '';
      if (code === Frontend.Close) {
        // pgway answers a Close of a statement and takes it back if the server skips the Close: not
        // while the Parse that defined the statement is unanswered, whose failure drops it first.
        if (unanswered && buf[start + 5] === 0x53 /* S */ && this.closesUnanswered(server, targetOf(buf, start, end)[1])) return 'wait';
        continue;
      }
      if (code === Frontend.Parse) {
        // PostgreSQL refuses a name in use (42P05).
        if (unanswered && buf[start + 5] !== 0 && this.statements.get(readCString(buf, start + 5, end)[0]) !== undefined) return 'wait';
        if (buf[start + 5] === 0) unnamedParsed = true;
        const parsed = effectsOfParse(buf, start, end);
        (this.parseEffects ??= [])[j] = parsed;
        // Nearly always NO_EFFECTS: iterating a frozen array is not inlined (V8's iterator builtin).
        if (parsed.length > 0 && parsed.some(namesSqlStatement)) {
          if (buf[start + 5] !== 0 && this.tracked) {
            (parsedHere ??= new Map()).set(readCString(buf, start + 5, end)[0], parsed);
            // Its Binds and Describes behind it in the group are placed (onParse notes it for later groups).
            bindNames = true;
          }
          else for (const e of parsed) if (namesSqlStatement(e)) (effects ??= []).push(e);
        }
      } else if (code === Frontend.Bind) {
        name = bindStatement(buf, start, end)[0];
        if (name === '' && !unnamedParsed) unnamedBound = true;
        else for (const e of this.effectsOfStatement(name, parsedHere)) if (namesSqlStatement(e)) (effects ??= []).push(e);
      } else if (code === Frontend.Describe && buf[start + 5] === 0x53 /* S */) {
        name = targetOf(buf, start, end)[1];
        // PostgreSQL describes a statement whose text is EXECUTE from the SQL-level statement the
        // connection holds under that name when the Describe runs (pgway's own Describe of a copy
        // it prepares too): the client's own is laid on first, and another client's dropped.
        for (const e of this.effectsOfStatement(name, parsedHere)) {
          if (e.kind === 'execute') (effects ??= []).push({ kind: 'execute', name: e.name, runs: false });
        }
      }
      if (sqlNames && name !== '' && this.statements.get(name) === undefined && session.sqlPrepared.get(name) !== undefined) {
        (effects ??= []).push({ kind: 'execute', name, runs: false });
      }
    }
    const unnamedEffects = unnamedBound ? unnamed.effects(server) : NO_EFFECTS;
    const namesSql = unnamedEffects.some(namesSqlStatement);
    if (effects === undefined && !namesSql) return undefined;
    if (server.busy) return 'wait';
    const unplaced = namesSql ? this.unnamedUnplaced(server, session, unnamedEffects) : undefined;
    if (unplaced !== undefined) return unplaced;
    if (effects === undefined) return 'placed';
    const refused = this.placeSqlPrepared(server, session, effects, true);
    return refused === undefined ? 'placed' : cannotPlace(refused, 'failed-block');
  }

  /** Whether the client's statement `name` may have been defined by a Parse the server has not answered yet. */
  private closesUnanswered(server: ServerConnection, name: string): boolean {
    return name !== '' && this.statements.get(name) !== undefined && server.expected.parseOwed;
  }

  /**
   * A Bind of the unnamed statement parsed in an earlier request (with these `effects`), whose text
   * names SQL-level statements the connection does not hold as the client does: refused (the error
   * is returned), as laying them on would drop the unnamed statement itself.
   */
  unnamedUnplaced(server: ServerConnection, session: SessionState, effects: readonly SessionEffect[]): Buffer | undefined {
    if (!effects.some(namesSqlStatement) || sqlPlacement(server, session, this.statements, effects, true).length === 0) return undefined;
    return cannotPlace(firstStatementName(effects), 'unnamed');
  }

  /**
   * A message inside a group names SQL-level statements: laid on before the group (placeForGroup).
   * In a group split across writes one may still be missing: the message is refused (the error to
   * answer it with is returned), as pgway's Query would commit what the group did so far.
   * `groupPlaced`, `inGroup`: the writer's (see RequestWriter).
   */
  placeWithinGroup(
    server: ServerConnection,
    session: SessionState,
    effects: readonly SessionEffect[],
    groupPlaced: boolean,
    inGroup: boolean,
  ): Buffer | undefined {
    if (groupPlaced || !effects.some(namesSqlStatement)) return undefined;
    if (!inGroup && !server.busy) {
      // The group's first message (a Bind of a protocol-level statement the scan did not look at).
      this.placeSqlPrepared(server, session, effects, true);
      return undefined;
    }
    if (sqlPlacement(server, session, this.statements, effects, true).length === 0) return undefined;
    return cannotPlace(firstStatementName(effects), 'mid-group');
  }

  /**
   * SQL-level PREPARE/EXECUTE/DEALLOCATE in transaction mode: before the client's statement runs,
   * the statements it names are (re)defined on this connection with the client's own definition,
   * and a same-named statement left by another client is dropped first (see sqlPlacement). Returns
   * the name it could not place: the text ends a failed transaction block, where nothing of
   * pgway's can run before it, and then needs a statement the connection does not hold.
   * `bound`: the effects are a group's (see sqlPlacement).
   */
  placeSqlPrepared(server: ServerConnection, session: SessionState, effects: readonly SessionEffect[], bound = false): string | undefined {
    if (server.txStatus === TxStatus.Failed) {
      // The client's statement fails (25P02) and pgway's would too: nothing is placed, and nothing
      // changes, unless the text ends the block first.
      if (!effects.some(endsFailedBlock)) {
        session.sqlLeftAsIs();
        return undefined;
      }
      if (sqlPlacement(server, session, this.statements, effects, true).length > 0) return firstStatementName(effects);
    }
    const inject = sqlPlacement(server, session, this.statements, effects, false, bound);
    if (inject.length === 0) return undefined;
    this.writes.beforeOwnWrite(server);
    server.write(msg.query(inject.join('; ')));
    server.expectSqlPrepared();
    return undefined;
  }
}
