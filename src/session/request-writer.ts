/**
 * Writes a client's held frames to its server connection: runs of contiguous frames as views in
 * one write; in pooled modes, named prepared statements renamed to their shared server-side names
 * and prepared where missing, SQL-level prepared statements defined where an EXECUTE needs them;
 * and the session effects of every statement staged when it runs (a Query, or an Execute of a
 * portal bound to a statement with effects, however often it runs). Every response pgway injects
 * or answers itself is registered in the server connection's expected-response FIFO. In statement
 * mode a request is written only once the one before it is answered (see oneAtATime).
 */
import type { PoolMode } from '../config/schema.js';
import { EXTENDED_SLOTS, Slot, type SlotUndo } from '../pool/expected-responses.js';
import type { Pool } from '../pool/pool.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { schema, schemaChanged, SQL_UNKNOWN } from '../pool/server-statements.js';
import { parsesInFailedBlock, type SessionEffect } from '../router/session-effects.js';
import { Backend, Frontend, TxStatus } from '../wire/codes.js';
import { readCString } from '../wire/decode.js';
import * as msg from '../wire/messages.js';
import { ddlText, effectsOfParse, effectsOfText, functionCallEffects, NO_EFFECTS, textOfParse, withBoundValues } from './frame-effects.js';
import { EffectsByName } from './named-effects.js';
import { cannotPlace, GroupPlacement, type OwnWrites } from './group-placement.js';
import type { HeldFrames } from './held-frames.js';
import { bindStatement, closeStatement, renameBind, targetOf, type ClientStatement, type PreparedStatements } from './prepared-statements.js';
import { alreadyExists, NO_DATA, NO_UNNAMED_STATEMENT, noSuchStatement, STALE_PLAN } from './statement-answers.js';
import { Next, StatementCopies } from './statement-copies.js';
import { BothUndone, DropAllTakeBack } from './statement-undos.js';
import type { SessionState } from './session-state.js';
import { namesSqlStatement } from './sql-placement.js';
import { sqlDefinition } from './sql-statements.js';
import { UnnamedStatement } from './unnamed-statement.js';

/** Whether a session effect changes the search_path, which decides the shared name of each statement. */
const changesSearchPath = (e: SessionEffect): boolean =>
  e.kind === 'reset-all' || ((e.kind === 'set' || e.kind === 'reset' || e.kind === 'set-param') && e.name === 'search_path');

/** What a client may send during a COPY from it (anything else makes the server end the session). */
const IN_COPY: Record<number, true> = {
  [Frontend.CopyData]: true, [Frontend.CopyDone]: true, [Frontend.CopyFail]: true, [Frontend.Flush]: true, [Frontend.Sync]: true, [Frontend.Terminate]: true,
};

/** DEALLOCATE ALL, DISCARD ALL: the client's statements and the shared copies go. */
const dropsAllStatements = (e: SessionEffect): boolean => e.kind === 'deallocate-all';


export class RequestWriter implements OwnWrites {
  /** More than one piece is being written: they go out in one writev. */
  private corked = false;
  private epoch = 0;
  private pool: Pool | undefined;
  /** pgway answered a message of the client with an error: its messages up to Sync are skipped, as the server would. */
  private skipUntilSync = false;
  /** Server connections are shared (transaction and statement modes). */
  private pooled = false;
  /** Statement mode: a request is written only once the one before it is answered (see oneAtATime). */
  private statementMode = false;
  /** Statement mode: a request has been written (or begun) whose answers are not all in (see allAnswered). */
  private unanswered = false;
  /** The client's unnamed statement: which connection holds it (pooled modes). */
  private readonly unnamed = new UnnamedStatement();
  /** The held frame being written waits for the answers to what was written before it (see waitForAnswers). */
  private stopBefore = false;
  /** The session effects of the portals bound from statements with effects. */
  private readonly portals = new EffectsByName();
  /**
   * Untracked named statements with session effects (session mode, max_prepared_statements 0):
   * staged where a portal of one runs, as a tracked statement's are.
   */
  private readonly untracked = new EffectsByName();
  /** The client's Syncs written: the number of its current extended-protocol group. */
  private syncs = 0;
  /** A message of the current extended-protocol group (up to its Sync) has been written. */
  private inGroup = false;
  /**
   * The SQL-level statements the current group names were laid on before its first message (see
   * GroupPlacement.placeForGroup): a simple Query of pgway's inside the group would commit what it
   * did so far.
   */
  private groupPlaced = false;
  /** The client has parsed a statement whose text names SQL-level statements (see GroupPlacement.placeForGroup). */
  private parsedSqlNames = false;
  /** The current group changed the client's or the connection's statements after its first message (see guess). */
  private guessed = false;
  /**
   * write() stopped after the Sync of a group whose changes an error may take back: the frames
   * after it (held) wait until the server has answered what was written, and so does the flow.
   */
  waitForAnswers = false;
  /**
   * write() stopped before a Bind or Describe of a statement prepared on the connection just now:
   * the frames from there wait until the server has described it (see StatementCopies.prepareFor).
   */
  waitForDescription = false;
  /** A request being written changes the client's search_path (see stopForPath). */
  private pathChanged = false;
  /** write() resumes where it stopped for a description (waitForDescription). */
  private resuming = false;

  /** The copies of the client's statements on the connection written to. */
  private readonly copies: StatementCopies;
  /** Lays on the SQL-level statements a request names, and holds what its scan of a group read for onParse. */
  private readonly placement: GroupPlacement;

  /**
   * `tracked`: the client's named statements are renamed and tracked (pooled, with
   * max_prepared_statements > 0), decided once at login. A RELOAD that changes the setting must
   * not change how the names the client has already prepared are written: renamed ones would be
   * sent under names the server never saw, and the others under names it never gave them (26000).
   */
  constructor(
    private readonly held: HeldFrames,
    private readonly statements: PreparedStatements,
    readonly tracked: boolean,
  ) {
    this.copies = new StatementCopies(statements, (server) => this.guess(server));
    this.placement = new GroupPlacement(held, statements, tracked, this);
  }

  /** The pool's plan epoch when the last request was written (see RequestFlow.onStalePlan). */
  get sentEpoch(): number {
    return this.epoch;
  }

  /** Writes and clears the held frames. */
  write(server: ServerConnection, session: SessionState, mode: PoolMode, pool: Pool): void {
    const held = this.held;
    const placement = this.placement;
    const pooled = mode !== 'session';
    this.corked = false;
    this.epoch = pool.planEpoch;
    this.pool = pool;
    this.pooled = pooled;
    this.statementMode = mode === 'statement';
    this.copies.begin(pool, this.resuming);
    if (this.resuming) {
      // Everything written before the stop has been answered: no change made there is a guess now.
      this.resuming = false;
      this.guessed = false;
    }
    // The client's Sync during a COPY an Execute began was ignored: its group goes on.
    if (!this.inGroup && server.groupOpen) this.inGroup = true;
    // A portal lasts until its transaction ends: with none open and nothing in flight, the client has none.
    if (this.portals.noted && !this.inGroup && !server.busy && server.txStatus === TxStatus.Idle) this.portals.clear();
    let written = held.count;
    // The write stopped after a CopyDone or CopyFail to wait for the answers: a Flush of pgway's asks for them.
    let flushAfterCopyEnd = false;
    for (let i = 0; i < held.count; i++) {
      const code = held.codes[i]!;
      const buf = held.bufs[i]!;
      const start = held.starts[i]!;
      const end = held.ends[i]!;
      if (this.skipUntilSync) {
        if (code !== Frontend.Sync) continue;
        this.skipUntilSync = false;
      }
      if (server.inCopyIn && code === Frontend.Sync) {
        // Ignored by the server inside the COPY: not passed on, and no request (see ServerConnection.syncInCopy).
        server.syncInCopy();
        continue;
      }
      if (server.inCopyIn && !IN_COPY[code]) {
        // Anything but COPY data, its end, Flush or Sync during a COPY from the client breaks the
        // protocol: it goes as it is, and the server ends the session, as it would directly. Nothing
        // of pgway's may wait for answers then, which the server gives only after the COPY.
        // Sent after the COPY failed (the error not read yet), it runs: pgway does not follow what
        // it does, so the client keeps this connection, which is closed after it
        // (ServerConnection.passUnseen). A Query or FunctionCall is a request all the same.
        this.stopFollowing(session);
        if (code === Frontend.Query || code === Frontend.FunctionCall) session.requestWritten();
        server.passUnseen(code, this.unnamed.written);
        held.emit(buf, start, end, server);
        continue;
      }
      let handled = false;
      if (this.pooled && !this.inGroup && !this.groupPlaced && EXTENDED_SLOTS[code] !== 0) {
        if (this.statementMode && this.oneAtATime()) {
          written = i;
          break;
        }
        const placed = placement.placeForGroup(server, session, i, this.parsedSqlNames, this.unnamed);
        if (placed === 'wait') {
          this.waitForAnswers = true;
          written = i;
          break;
        }
        if (placed === 'placed') this.groupPlaced = true;
        else if (placed !== undefined) {
          this.beforeOwnWrite(server);
          this.refuse(server, EXTENDED_SLOTS[code]!, placed);
          this.inGroup = true;
          continue;
        }
      }
      switch (code) {
        case Frontend.Query: {
          if (this.statementMode && !this.inGroup && this.oneAtATime()) {
            written = i;
            break;
          }
          // A COMMIT alone is followed too while a SET LOCAL ROLE is (see SessionState.followsCommits).
          const effects = effectsOfText(buf, start + 5, end, session.followsCommits);
          if (ddlText.written) this.ddlRuns(server);
          if (this.pooled && effects.some(namesSqlStatement)) {
            if (server.expected.length > 0) {
              // What the connection holds of the names, and whether a transaction block is failed,
              // depend on what is still unanswered: the text waits for it.
              this.waitForAnswers = true;
              written = i;
              break;
            }
            this.unnamed.queryWritten();
            if (server.busy && !server.skippingToSync) {
              // Inside a group the client has not synced: pgway's Query would commit what it did so
              // far. Refused, as a failing Query there is answered: the server's implicit transaction
              // fails with it (pgway's own failing Query), and the rest of the group runs. (Behind an
              // error the server skips it, and it goes as it is.)
              const misplaced = placement.placeWithinGroup(server, session, effects, false, true);
              if (misplaced !== undefined) {
                this.beforeOwnWrite(server);
                server.refuseQueryInGroup(misplaced);
                session.requestWritten();
                handled = true;
                break;
              }
            }
            const refused = server.busy ? undefined : placement.placeSqlPrepared(server, session, effects);
            if (refused !== undefined) {
              server.expectSynthesized(Slot.Query, Buffer.concat([cannotPlace(refused, 'failed-block'), msg.READY_FAILED]));
              session.requestWritten();
              handled = true;
              break;
            }
          } else {
            // Counted as written (a Query held back above counts when it goes): each drops the unnamed statement.
            this.unnamed.queryWritten();
          }
          this.stage(session, effects, true);
          if (this.tracked && effects.length > 0) this.closeDeallocated(session, effects);
          const dropsAll = this.pooled && effects.length > 0 && effects.some(dropsAllStatements);
          if (dropsAll) this.takeBackIfFails(session, this.dropAllStatements(server));
          session.requestWritten();
          // Behind an error the server skips it (and the request's Sync is what it waits for): nothing to wait for.
          const runs = !server.skippingToSync;
          if (dropsAll && runs && i + 1 < held.count) {
            // What the client and the connection hold after it depends on whether it ran: what
            // follows waits for its answer.
            this.waitForAnswers = true;
            written = i + 1;
          }
          if (this.tracked && effects.some(changesSearchPath)) this.pathChanged = true;
          if (this.pathChanged && runs && this.stopForPath(i)) written = i + 1;
          break;
        }
        case Frontend.Sync:
          this.unnamed.synced();
          this.syncs++;
          session.requestWritten();
          this.inGroup = false;
          this.groupPlaced = false;
          if (this.guessed) {
            this.guessed = false;
            this.waitForAnswers = true;
            written = i + 1;
          }
          if (this.pathChanged && this.stopForPath(i)) written = i + 1;
          break;
        case Frontend.FunctionCall: {
          if (this.statementMode && !this.inGroup && this.oneAtATime()) {
            written = i;
            break;
          }
          const effects = functionCallEffects(buf, start, end);
          this.stage(session, effects);
          session.requestWritten();
          if (this.tracked && effects.some(changesSearchPath)) this.pathChanged = true;
          if (this.pathChanged && !server.skippingToSync && this.stopForPath(i)) written = i + 1;
          break;
        }
        case Frontend.Parse:
          handled = this.onParse(server, session, buf, start, end, i + 1 < held.count && held.codes[i + 1] === Frontend.Describe, placement.parseEffects?.[i]);
          // Stopped before it (see unnamedWaits): nothing of it was written.
          if (this.stopBefore) written = i;
          else this.inGroup = true;
          break;
        case Frontend.Bind:
          handled = this.onBind(server, session, buf, start, end);
          if (this.stopBefore) {
            written = i;
            break;
          }
          this.inGroup = true;
          if (this.waitForDescription) written = i;
          break;
        case Frontend.Execute:
          handled = this.portals.any && this.onExecute(server, session, buf, start, end);
          if (this.stopBefore) {
            written = i;
            break;
          }
          this.inGroup = true;
          break;
        case Frontend.CopyDone:
        case Frontend.CopyFail:
          if (!server.inCopyIn && server.expected.executeOwed && this.requestAfter(i)) {
            // Sent before the server said whether a COPY began: if an Execute began one, PostgreSQL
            // ignored the Sync before its data, and what follows is still in that group (see
            // groupOpen); if not, that Sync ended it. What follows waits for the answers, which the
            // server keeps after a COPY's end until asked.
            flushAfterCopyEnd = true;
            this.waitForAnswers = true;
            written = i + 1;
          }
          break;
        case Frontend.Describe:
        case Frontend.Close:
          handled = pooled && this.onTarget(server, session, code, buf, start, end);
          if (this.stopBefore) {
            written = i;
            break;
          }
          this.inGroup = true;
          if (this.waitForDescription) written = i;
          break;
      }
      if (written === i) break;
      if (handled) continue;
      server.noteClientFrame(code, this.unnamed.written);
      held.emit(buf, start, end, server);
      if (written === i + 1) break;
    }
    held.flush(server);
    if (flushAfterCopyEnd) server.write(msg.FLUSH);
    this.stopBefore = false;
    // A group that goes on in a later write: placeForGroup did not see its later messages.
    this.groupPlaced = false;
    if (placement.parseEffects !== undefined && placement.parseEffects.length > 0) placement.parseEffects.length = 0;
    if (written === held.count) held.clear();
    else held.keepFrom(written);
    if (this.corked) server.uncork();
  }

  /**
   * Statement mode, at the first frame of a request (a Query, a FunctionCall, an extended-protocol
   * group up to its Sync, however many Flushes split it): true when the request before it is not
   * answered yet, and the write stops here. A transaction block that request opens is refused at
   * its ReadyForQuery (RequestFlow.serverReady) before anything behind it reaches the server, where
   * it would already run inside the block. A COPY's data and a group's later messages are no new
   * request, and go on.
   */
  private oneAtATime(): boolean {
    if (!this.unanswered) {
      this.unanswered = true;
      return false;
    }
    this.waitForAnswers = true;
    return true;
  }

  /** The server has answered everything written: in statement mode the next request may go (see oneAtATime). */
  allAnswered(): void {
    this.unanswered = false;
  }

  /**
   * The request ending at the `i`th held frame changes the client's search_path, which pgway takes
   * as the client's at its answer. A statement a later frame names must be shared under the path
   * it runs under, so when one does, the write stops here and the rest waits for the answer.
   */
  private stopForPath(i: number): boolean {
    this.pathChanged = false;
    if (!this.namesStatementAfter(i)) return false;
    this.waitForAnswers = true;
    return true;
  }

  /** Whether a held frame after the `i`th is part of a request (not a Flush, COPY data, or a frame that ends the session). */
  private requestAfter(i: number): boolean {
    const held = this.held;
    for (let j = i + 1; j < held.count; j++) {
      const code = held.codes[j]!;
      if (EXTENDED_SLOTS[code] !== 0 || code === Frontend.Sync || code === Frontend.Query || code === Frontend.FunctionCall) return true;
    }
    return false;
  }

  /** Whether a held frame after the `i`th names a statement (Parse, Bind, Describe). */
  private namesStatementAfter(i: number): boolean {
    const held = this.held;
    for (let j = i + 1; j < held.count; j++) {
      const code = held.codes[j]!;
      const [buf, start, end] = [held.bufs[j]!, held.starts[j]!, held.ends[j]!];
      if (code === Frontend.Parse && buf[start + 5] !== 0) return true;
      if (code === Frontend.Bind && bindStatement(buf, start, end)[0] !== '') return true;
      if (code === Frontend.Describe) {
        const [type, name] = targetOf(buf, start, end);
        if (type === 0x53 /* S */ && name !== '') return true;
      }
    }
    return false;
  }

  /**
   * The client's statements or the connection's change here, where the server may yet skip or
   * refuse the message: after other messages of the same group (an error in one of them), in an
   * aborted transaction block (25P02), or behind answers still owed (which may abort one). The
   * change is then taken back when the error arrives (SlotUndo, ServerConnection.notDone). A later
   * group must not be written on the guess that it happened: write() stops after this group's Sync.
   */
  private guess(server: ServerConnection): void {
    if (this.inGroup || server.busy || server.txStatus === TxStatus.Failed) this.guessed = true;
  }

  /** Flushes the frames held so far and corks the server socket before a rewritten or injected write. */
  beforeOwnWrite(server: ServerConnection): void {
    if (!this.corked) {
      server.cork();
      this.corked = true;
    }
    this.held.flush(server);
  }

  /** A statement with these effects runs: they are staged (see SessionState.stage). */
  private stage(session: SessionState, effects: readonly SessionEffect[], wholeText = false): void {
    if (effects.length === 0) return;
    session.stage(effects, wholeText);
    // SQL-level and protocol-level names are one namespace: a PREPARE or DEALLOCATE of a name ends an untracked statement's.
    if (this.untracked.any) for (const e of effects) this.forgetUntracked(e);
  }

  /** More statements or portals with effects than pgway follows: the client stays on its connection. */
  private stopFollowing(session: SessionState): void {
    session.stopFollowing();
  }

  /**
   * A DEALLOCATE ALL or DISCARD ALL of the client's runs: the client's protocol-level statements go
   * with its SQL-level ones (SessionState.stage), and so do the shared copies on the connection,
   * the statement that runs it included. Whether it ran is known only from its answer: the
   * returned change takes this back (a request that fails, or a skipped Execute: see onExecute),
   * and a later group waits for the answer (see guess).
   */
  private dropAllStatements(server: ServerConnection): SlotUndo {
    const serverUndo = server.statements.clearPrepared();
    const clientUndo = this.statements.clear();
    server.statements.deallocateAll = true;
    this.guess(server);
    return new DropAllTakeBack(clientUndo, serverUndo);
  }

  /**
   * DDL goes to `server`: a schema change for the statements its session prepares next, and, at
   * the end of its transaction, for the other sessions; what the connection prepares until then
   * may have read it (a temporary table's types).
   */
  private ddlRuns(server: ServerConnection): void {
    ddlText.written = false;
    schemaChanged();
    if (server.ddlFrom < 0) server.ddlFrom = schema.epoch;
  }

  /**
   * A Query's SQL DEALLOCATE of a statement the client made with a protocol Parse (Rails drops
   * those from its statement cache so): the client's name goes, unless the DEALLOCATE does not run
   * (sqlPlacement held the name on the server for it), and the shared statement stays for others.
   * What a DEALLOCATE ALL of the text drops goes with it (dropAllStatements).
   */
  private closeDeallocated(session: SessionState, effects: readonly SessionEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'deallocate-all') return;
      // Closed at its first DEALLOCATE: a second one in the text finds it gone, as the server does.
      if (e.kind !== 'deallocate' || this.statements.get(e.name) === undefined) continue;
      const change = this.statements.close(e.name);
      session.takeBackIfFails(() => change.undo(), e.name);
    }
  }

  /** A change a request makes: taken back if the request fails (a Query, an untracked Parse). */
  private takeBackIfFails(session: SessionState, change: SlotUndo): void {
    session.takeBackIfFails(() => change.undo());
  }

  /**
   * A Parse: its effects wait for the statement to run. In pooled modes a named statement is
   * renamed to its shared server-side name and prepared only where missing; a name the client
   * already uses is refused, as PostgreSQL refuses it. Returns true when the frame was handled here.
   */
  private onParse(
    server: ServerConnection,
    session: SessionState,
    buf: Buffer,
    start: number,
    end: number,
    describeNext: boolean,
    known: readonly SessionEffect[] | undefined,
  ): boolean {
    // After other messages of its group, behind another group's unnamed Parse still unanswered: if
    // the server skips this one, what it finds is that one's outcome. (One that begins its group is
    // skipped by nothing, and goes: pipelined groups that parse and bind the unnamed statement each.)
    if (buf[start + 5] === 0 && this.inGroup && this.unnamedWaits(server, false)) return true;
    const effects = known ?? effectsOfParse(buf, start, end);
    const ddl = ddlText.written;
    if (ddl) this.ddlRuns(server);
    if (!this.parsedSqlNames && effects.length > 0 && effects.some(namesSqlStatement)) this.parsedSqlNames = true;
    // A tracked named statement's SQL-level effects are placed where it is bound (onBind), which
    // may be another connection in a later request: parsing it changes nothing, as in PostgreSQL.
    const placesHere = buf[start + 5] === 0 || !this.tracked;
    const misplaced = this.pooled && placesHere && effects.length > 0
      ? this.placement.placeWithinGroup(server, session, effects, this.groupPlaced, this.inGroup)
      : undefined;
    if (misplaced) {
      this.beforeOwnWrite(server);
      // The client's unnamed statement is gone, as after a Parse the server fails: its old one must not run.
      return this.refuse(server, Slot.Parse, buf[start + 5] === 0 ? this.unnamed.parseRefused(misplaced) : misplaced);
    }
    if (buf[start + 5] === 0) {
      // The server may skip this Parse (an error earlier in its group) or refuse it: the statement
      // there is then not the one this Parse records (see UnnamedOwnerChange).
      const change = this.unnamed.parsed(server, this.inGroup, this.pooled, effects);
      if (change === undefined) return false;
      server.expectForwarded(Slot.Parse, change);
      this.held.emit(buf, start, end, server);
      return true;
    }
    if (!this.tracked) {
      // Untracked (session mode, or max_prepared_statements 0): the statement stays on this
      // connection as the client named it; its effects count where it is executed (onBind).
      const undo = this.changeEffects(session, this.untracked, readCString(buf, start + 5, end)[0], effects);
      if (undo !== undefined) {
        server.expectForwarded(Slot.Parse, undo);
        this.held.emit(buf, start, end, server);
        return true;
      }
      if (this.pooled && effects.length > 0 && effects.some(dropsAllStatements)) this.takeBackIfFails(session, this.dropAllStatements(server));
      return false;
    }
    const [name, stmt] = this.statements.onParse(buf, start, end, this.epoch, session.statementContext, effects, ddl)!;
    this.beforeOwnWrite(server);
    // Protocol and SQL names are one namespace in PostgreSQL.
    if (this.statements.get(name) || session.sqlPrepared.get(name) !== undefined) return this.refuse(server, Slot.Parse, alreadyExists(name));
    const copy = server.statements.prepared.get(stmt.serverName);
    if (copy !== undefined) {
      server.statements.prepared.delete(stmt.serverName);
      // Answered here only where the server would surely accept it: in an aborted transaction
      // block (or with earlier requests unanswered, which may abort one or end it) the server decides.
      // A copy prepared before a schema change the Parse comes after is made again (see schema).
      const current = stmt.schemaAt === 0 || !server.statements.preparedBefore(stmt.serverName, stmt.schemaAt);
      if (!describeNext && current && server.txStatus !== TxStatus.Failed && !server.busy) {
        server.statements.prepared.set(stmt.serverName, copy); // most recently used
        this.guess(server);
        server.expectSynthesized(Slot.Parse, this.statements.define(name, stmt, msg.PARSE_COMPLETE));
        return true;
      }
      if (server.txStatus === TxStatus.Failed && !server.busy && !parsesInFailedBlock(textOfParse(buf, start, end))) {
        // The server refuses it in the aborted block (25P02) before it looks at the name: sent as
        // it is, it fails as the client's would, defining nothing, and the copy stays for the
        // client's other names of the statement, which a Close first would take from them.
        server.statements.prepared.set(stmt.serverName, copy);
        server.write(stmt.parse);
        server.expectForwarded(Slot.Parse);
        return true;
      }
      // A client that describes the statement it just prepared (postgres.js, JDBC) must get a
      // description of a fresh plan: one made before DDL would fail the Describe, and a driver
      // that keeps the statement from its ParameterDescription would be left without columns.
      // Close then Parse: the Close works in an aborted block, where the Parse then fails as the client's would.
      server.write(closeStatement(stmt.serverName));
      server.expectSwallowed(Slot.Close, stmt.serverName);
    }
    this.copies.prepareOn(server, stmt, name);
    return true;
  }

  /**
   * A Bind: the portal takes the effects of its statement; a named statement is renamed to its
   * server-side name and prepared where missing. Returns true when the frame was handled here.
   */
  private onBind(server: ServerConnection, session: SessionState, buf: Buffer, start: number, end: number): boolean {
    this.followOverflow(session);
    let portal = '';
    let stmtAt = start + 6;
    if (buf[start + 5] !== 0) [portal, stmtAt] = readCString(buf, start + 5, end);
    if (buf[stmtAt] === 0) {
      if (this.unnamedWaits(server, true)) return true;
      const here = this.unnamed.here(server);
      if (this.pooled && !here) return this.refuseUnnamed(server, Slot.Bind);
      const effects = here ? server.statements.unnamedEffects : NO_EFFECTS;
      const unplaced = this.pooled && !this.groupPlaced ? this.placement.unnamedUnplaced(server, session, effects) : undefined;
      if (unplaced !== undefined) {
        this.beforeOwnWrite(server);
        return this.refuse(server, Slot.Bind, unplaced);
      }
      const undo = this.changeEffects(session, this.portals, portal, withBoundValues(effects, buf, stmtAt, end));
      return undo !== undefined && this.passAsIs(server, Slot.Bind, buf, start, end, undo);
    }
    const name = this.tracked || this.untracked.any ? readCString(buf, stmtAt, end)[0] : '';
    const stmt = this.tracked ? this.statementFor(session, name) : undefined;
    const effects = stmt?.effects ?? this.untracked.get(name) ?? NO_EFFECTS;
    if (!stmt) {
      if (this.tracked) return this.notOwnStatement(server, session, Slot.Bind, name);
      const undo = this.changeEffects(session, this.portals, portal, effects.length > 0 ? withBoundValues(effects, buf, stmtAt, end) : NO_EFFECTS);
      return undo !== undefined && this.passAsIs(server, Slot.Bind, buf, start, end, undo);
    }
    this.beforeOwnWrite(server);
    if (this.isStale(stmt)) return this.staleOnce(server, stmt);
    if (stmt.ddl) this.ddlRuns(server);
    const misplaced = stmt.effects.length > 0
      ? this.placement.placeWithinGroup(server, session, stmt.effects, this.groupPlaced, this.inGroup)
      : undefined;
    if (misplaced) return this.refuse(server, Slot.Bind, misplaced);
    const next = this.copies.prepareFor(server, stmt, buf, stmtAt, end);
    if (next !== Next.Send) return this.notSent(server, next, Slot.Bind);
    this.statements.bound(name, stmt);
    // The slot names the statement: a stale-plan error for this Bind says which one went stale.
    const undo = this.changeEffects(session, this.portals, portal, effects.length > 0 ? withBoundValues(effects, buf, stmtAt, end) : NO_EFFECTS, stmt.serverName);
    server.expectForwarded(Slot.Bind, undo ?? stmt.serverName);
    server.write(renameBind(buf, start, end, stmtAt, stmt.serverName));
    return true;
  }

  /** The client's statement `name`, as prepared under the context the client reads statements in now. */
  private statementFor(session: SessionState, name: string): ClientStatement | undefined {
    const stmt = this.statements.get(name);
    const context = session.statementContext;
    if (stmt === undefined || stmt.context === context) return stmt;
    return this.statements.forContext(name, stmt, context);
  }

  /** A PREPARE, DEALLOCATE or DEALLOCATE ALL staged: untracked statements of those names are gone. */
  private forgetUntracked(e: SessionEffect): void {
    if (e.kind === 'deallocate-all') this.untracked.clear();
    else if (e.kind === 'prepare' || e.kind === 'deallocate') this.untracked.forget(e.name);
  }

  /**
   * A Bind or Close gives a portal these effects, or a Parse an untracked named statement (`names`
   * says which: see EffectsByName.change). Past as many names as pgway follows, the client stays
   * on its connection.
   */
  private changeEffects(session: SessionState, names: EffectsByName, name: string, effects: readonly SessionEffect[], statement?: string): SlotUndo | undefined {
    const undo = names.change(name, effects, this.syncs, statement);
    this.followOverflow(session);
    return undo;
  }

  /** A client's Bind or Close goes as it is, with `undo` on its slot. */
  private passAsIs(server: ServerConnection, slot: Slot, buf: Buffer, start: number, end: number, undo: SlotUndo): true {
    this.beforeOwnWrite(server);
    server.expectForwarded(slot, undo);
    server.write(buf.subarray(start, end));
    return true;
  }

  /**
   * An Execute: the effects of the statement behind its portal are staged. A portal runs its
   * statement once: an Execute after the first fetches what is left of its rows (SELECT 0 for a
   * set_config) or is refused (a SET's portal "cannot be run"), so its effects are spent then,
   * unless the server skips or refuses this one. Returns true when the frame was written here.
   */
  private onExecute(server: ServerConnection, session: SessionState, buf: Buffer, start: number, end: number): boolean {
    this.followOverflow(session);
    const name = buf[start + 5] === 0 ? '' : readCString(buf, start + 5, end)[0];
    // A change of the portal in an earlier group, unanswered yet, may be refused: its answer decides what runs.
    const pending = this.portals.changedBefore(name, this.syncs);
    if (pending !== undefined && server.expected.holds(pending)) {
      this.waitForAnswers = true;
      this.stopBefore = true;
      return true;
    }
    const effects = this.portals.get(name);
    if (effects === undefined || effects.length === 0) return false;
    this.stage(session, effects);
    if (this.tracked && effects.some(changesSearchPath)) this.pathChanged = true;
    const spent = this.changeEffects(session, this.portals, name, NO_EFFECTS)!;
    let undo: SlotUndo = spent;
    if (this.pooled) {
      for (const e of effects) {
        // A bound PREPARE runs here (sqlPlacement left the name unknown at its Bind); if the request
        // fails, SqlStatements.settle makes the name unknown again.
        if (e.kind === 'prepare' && server.statements.sql.get(e.name) === SQL_UNKNOWN) {
          server.statements.sql.set(e.name, sqlDefinition(e.name, e.sql, e.paramTypes, session.readingContext));
        }
      }
      // DEALLOCATE ALL and DISCARD ALL are not transactional: once the Execute is answered, what it
      // dropped stays dropped whatever fails after it in the group. Taken back only if the server
      // refuses or skips this Execute.
      if (effects.some(dropsAllStatements)) undo = new BothUndone(spent, this.dropAllStatements(server));
    }
    server.expectForwarded(Slot.Execute, undo);
    this.held.emit(buf, start, end, server);
    return true;
  }

  /**
   * An undo of a change of portals or untracked statements pushed them past what pgway follows
   * (see EffectsByName.overflowed): it forgot what they run, and the client stays on its connection.
   */
  private followOverflow(session: SessionState): void {
    if (!this.portals.overflowed && !this.untracked.overflowed) return;
    this.portals.overflowed = false;
    this.untracked.overflowed = false;
    this.stopFollowing(session);
  }

  /**
   * A Describe or Close of a named statement: renamed, and prepared where missing; a client's
   * Close is answered by pgway, the shared statement staying for other clients. Returns true when
   * the frame was handled here.
   */
  private onTarget(server: ServerConnection, session: SessionState, code: number, buf: Buffer, start: number, end: number): boolean {
    const [type, name] = targetOf(buf, start, end);
    if (type === 0x50 /* P */) {
      // A WITH HOLD cursor is a portal too: a Close of it goes as a SQL CLOSE does.
      if (code === Frontend.Close && name !== '' && session.pins.has('hold-cursor')) this.stage(session, [{ kind: 'drop', reason: 'hold-cursor', name }]);
      const undo = code === Frontend.Close ? this.changeEffects(session, this.portals, name, NO_EFFECTS) : undefined;
      return undo !== undefined && this.passAsIs(server, Slot.Close, buf, start, end, undo);
    }
    if (name === '' && code === Frontend.Close) {
      // As a Bind: a Query owed since the statement was parsed decides whether there is one to close.
      if (this.unnamedWaits(server, true)) return true;
      if (!this.unnamed.here(server)) {
        // Another client's unnamed statement, or none: the client has none to close (CloseComplete, as PostgreSQL answers).
        this.beforeOwnWrite(server);
        server.expectSynthesized(Slot.Close, msg.CLOSE_COMPLETE);
        return true;
      }
    }
    const slot = code === Frontend.Close ? Slot.Close : Slot.Describe;
    if (type !== 0x53 /* S */) {
      this.beforeOwnWrite(server);
      return this.refuse(server, slot, msg.errorResponse({
        severity: 'ERROR', sqlstate: '08P01', message: `invalid ${code === Frontend.Close ? 'CLOSE' : 'DESCRIBE'} message subtype ${type}`,
      }));
    }
    if (name === '' && code === Frontend.Describe) {
      if (this.unnamedWaits(server, true)) return true;
      if (!this.unnamed.here(server)) return this.refuseUnnamed(server, Slot.Describe);
    }
    // An untracked statement closed: its effects go with it.
    if (!this.tracked && code === Frontend.Close && name !== '') this.untracked.forget(name);
    const stmt = name ? this.statementFor(session, name) : undefined;
    if (!stmt) return name !== '' && this.tracked && this.notOwnStatement(server, session, slot, name);
    this.beforeOwnWrite(server);
    if (code === Frontend.Close) {
      this.guess(server);
      server.expectSynthesized(Slot.Close, this.statements.close(name, msg.CLOSE_COMPLETE));
      return true;
    }
    if (this.isStale(stmt)) return this.staleOnce(server, stmt);
    if (server.txStatus === TxStatus.Failed && !server.busy && stmt.shape?.endsWith('/-') && !server.statements.prepared.has(stmt.serverName)) {
      return this.describeWithoutRows(server, stmt.shape);
    }
    const next = this.copies.prepareFor(server, stmt);
    if (next !== Next.Send) return this.notSent(server, next, Slot.Describe);
    server.noteClientFrame(code);
    server.write(renameBind(buf, start, end, start + 6, stmt.serverName));
    return true;
  }

  /**
   * A Describe, in an aborted transaction block, of a statement that returns no rows and that the
   * connection lacks: PostgreSQL describes it there (its parameters, then NoData), but refuses
   * pgway's Parse to prepare it, so pgway answers from the shape the client's statement has (see
   * ShapeCheck). One that returns rows is refused by PostgreSQL too (25P02), as the Parse is.
   */
  private describeWithoutRows(server: ServerConnection, shape: string): true {
    const params = Buffer.from(shape.slice(0, shape.indexOf('/')), 'hex');
    const description = new msg.MessageWriter(params.length + 5).bytes(params).frame(Backend.ParameterDescription);
    this.beforeOwnWrite(server);
    server.expectSynthesized(Slot.Describe, Buffer.concat([description, NO_DATA]));
    return true;
  }

  /**
   * Whether the client prepared `stmt` before DDL made its shared statement stale (the server's
   * error on another client's Bind). A statement whose shape the client knows is not refused for
   * that alone: every copy is prepared afresh since, and the one it runs on is compared with what
   * it returned (StatementCopies.prepareFor), each run.
   */
  private isStale(stmt: ClientStatement): boolean {
    const since = this.pool!.staleSince(stmt.serverName);
    if (since === undefined || stmt.epoch >= since) return false;
    if (stmt.shape === undefined) return true;
    stmt.epoch = this.epoch;
    return false;
  }

  /**
   * DDL changed what a statement the client prepared earlier returns, before pgway knew what it
   * returned (pgway answered its Parse, and it has not run since). Whether the client prepared it
   * before the DDL (PostgreSQL would refuse each run) or after (it would run) cannot be told: it
   * is refused once, and takes the shape of the next copy, as every copy is prepared afresh
   * (Pool.invalidateStatement). A statement whose shape is known is compared instead, each run.
   */
  private staleOnce(server: ServerConnection, stmt: ClientStatement): true {
    stmt.epoch = this.epoch;
    return this.refuse(server, Slot.Bind, STALE_PLAN);
  }

  /**
   * The client's Bind or Describe does not go out as it is: it waits for pgway's own description
   * of the copy just prepared (the frames from it stay held, and the flow resumes the write when
   * the description is in), or it is refused as PostgreSQL refuses a stale statement.
   */
  private notSent(server: ServerConnection, next: Next.Wait | Next.Refuse, kind: Slot): true {
    if (next === Next.Refuse) return this.refuse(server, kind, STALE_PLAN);
    this.waitForDescription = true;
    this.resuming = true;
    return true;
  }

  /**
   * A Bind, Describe or Close names a statement the client did not Parse. Server-side names are
   * shared by the protocol and SQL's PREPARE, so the connection may hold another client's statement
   * of that name: a name the client never prepared is answered as PostgreSQL answers a name it does
   * not have (26000; a Close of it does nothing). One the client PREPAREd in SQL is made to exist
   * here with its definition and goes on; a Close of it drops it. Returns true when handled here.
   */
  private notOwnStatement(server: ServerConnection, session: SessionState, kind: Slot, name: string): boolean {
    const def = session.sqlPrepared.get(name);
    this.beforeOwnWrite(server);
    if (def === undefined) {
      if (kind === Slot.Close) {
        server.expectSynthesized(Slot.Close, msg.CLOSE_COMPLETE);
        return true;
      }
      return this.refuse(server, kind, noSuchStatement(name));
    }
    if (kind === Slot.Close) {
      this.stage(session, [{ kind: 'deallocate', name }]);
      if (server.statements.sql.get(name) !== def) {
        server.expectSynthesized(Slot.Close, msg.CLOSE_COMPLETE);
        return true;
      }
      server.statements.sql.set(name, SQL_UNKNOWN); // as a DEALLOCATE: the Close may be skipped
      return false;
    }
    const misplaced = this.placement.placeWithinGroup(server, session, [{ kind: 'execute', name, runs: false }], this.groupPlaced, this.inGroup);
    return misplaced ? this.refuse(server, kind, misplaced) : false;
  }

  /**
   * Whether a Parse, Bind, Describe or Close of the unnamed statement (a Bind or Describe: `use`)
   * waits for answers owed first (see UnnamedStatement.mustWait): the write stops before it.
   */
  private unnamedWaits(server: ServerConnection, use: boolean): boolean {
    if (!this.unnamed.mustWait(server, use && this.pooled)) return false;
    this.waitForAnswers = true;
    this.stopBefore = true;
    return true;
  }

  /** A Query the client sent was skipped by the server (on `server`): it dropped no unnamed statement. */
  queryNotRun(server: ServerConnection | undefined, query: number): void {
    this.unnamed.queryNotRun(server, query);
  }

  /**
   * The unnamed statement on this connection, if any, is another client's (or was dropped since):
   * its Bind or Describe would run that client's statement. This client has none here, and hears
   * so as PostgreSQL says it (a client's unnamed statement stays on the connection it was parsed
   * on; see README).
   */
  private refuseUnnamed(server: ServerConnection, kind: Slot): true {
    this.beforeOwnWrite(server);
    return this.refuse(server, kind, NO_UNNAMED_STATEMENT);
  }

  /**
   * Answers the client's message with `error` where the server's answer would be, and makes the
   * server fail the request there too (see ServerConnection.abortRequest): what the request did
   * before it is rolled back and a transaction block aborted, as with the server's own error.
   */
  private refuse(server: ServerConnection, kind: Slot, error: Buffer | SlotUndo): true {
    server.expectSynthesized(kind, error);
    server.abortRequest();
    this.skipUntilSync = true;
    return true;
  }
}
