/**
 * Writes a client's held frames to its server connection: runs of contiguous frames as views in
 * one write; in pooled modes, named prepared statements renamed to their shared server-side names
 * and prepared where missing, SQL-level prepared statements defined where an EXECUTE needs them;
 * and the session effects of every statement text staged. Every response pgway injects or
 * answers itself is registered in the server connection's expected-response FIFO.
 */
import { Slot } from '../pool/expected-responses.js';
import type { Pool } from '../pool/pool.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { classifySessionEffectsIn, type PinReason, type SessionEffect } from '../router/session-effects.js';
import { Frontend } from '../wire/codes.js';
import * as msg from '../wire/messages.js';
import type { HeldFrames } from './held-frames.js';
import { bindStatement, closeStatement, renameBind, targetOf, type ClientStatement, type PreparedStatements } from './prepared-statements.js';
import { prepareStatement, quoteIdent, type SessionState } from './session-state.js';

/** As PostgreSQL words it; drivers such as postgres.js re-prepare when they see this routine. */
const STALE_PLAN = msg.errorResponse({
  severity: 'ERROR',
  sqlstate: '0A000',
  message: 'cached plan must not change result type',
  file: 'plancache.c',
  routine: 'RevalidateCachedQuery',
});

/** What write() returns when nothing pinned the client, nearly always: no array per request. */
const NO_PINS: readonly PinReason[] = Object.freeze([]);

export class RequestWriter {
  /** More than one piece is being written: they go out in one writev. */
  private corked = false;
  private maxPrepared = 0;
  private epoch = 0;
  private pins: readonly PinReason[] = NO_PINS;
  /** A stale-plan error was answered for the client: its messages up to Sync are skipped, as the server would. */
  private skipUntilSync = false;

  constructor(
    private readonly held: HeldFrames,
    private readonly statements: PreparedStatements,
  ) {}

  /** Writes and clears the held frames; returns the reasons the client became pinned, if any. */
  write(server: ServerConnection, session: SessionState, pooled: boolean, pool: Pool): readonly PinReason[] {
    const held = this.held;
    this.corked = false;
    this.maxPrepared = pool.settings.maxPreparedStatements;
    this.epoch = pool.planEpoch;
    this.pins = NO_PINS;
    for (let i = 0; i < held.count; i++) {
      const code = held.codes[i]!;
      const buf = held.bufs[i]!;
      const start = held.starts[i]!;
      const end = held.ends[i]!;
      if (this.skipUntilSync) {
        if (code !== Frontend.Sync) continue;
        this.skipUntilSync = false;
      }
      if (code === Frontend.Query || code === Frontend.Parse) this.onStatementText(server, session, code, buf, start, end, pooled);
      if (pooled && this.maxPrepared > 0 && this.rewrite(server, code, buf, start, end)) continue;
      server.noteClientFrame(code);
      held.emit(buf, start, end, server);
    }
    held.flush(server);
    held.clear();
    if (this.corked) server.uncork();
    return this.pins;
  }

  /** Flushes the frames held so far and corks the server socket before a rewritten or injected write. */
  private beforeOwnWrite(server: ServerConnection): void {
    if (!this.corked) {
      server.cork();
      this.corked = true;
    }
    this.held.flush(server);
  }

  /**
   * A statement that may change session state is on its way: its effects are staged, and in
   * pooled modes the SQL-level prepared statements it uses are made to exist on this connection.
   */
  private onStatementText(server: ServerConnection, session: SessionState, code: number, buf: Buffer, start: number, end: number, pooled: boolean): void {
    let textAt = start + 5;
    if (code === Frontend.Parse) textAt = buf.indexOf(0, textAt) + 1;
    const nul = buf.indexOf(0, textAt);
    const { effects } = classifySessionEffectsIn(buf, textAt, nul < 0 || nul > end ? end : nul);
    if (effects.length === 0) return;
    if (pooled) this.placeSqlPrepared(server, session, effects);
    const pins = session.stage(effects);
    if (pins.length > 0) this.pins = [...this.pins, ...pins];
  }

  /**
   * SQL-level PREPARE/EXECUTE/DEALLOCATE in transaction mode: before the client's statement runs,
   * the statements it names are (re)defined on this connection with the client's own definition,
   * and a same-named statement left by another client is dropped first.
   */
  private placeSqlPrepared(server: ServerConnection, session: SessionState, effects: readonly SessionEffect[]): void {
    const definedHere = new Set<string>();
    const inject: string[] = [];
    for (const e of effects) {
      if (e.kind === 'prepare') {
        const def = prepareStatement(e.name, e.sql, e.paramTypes);
        if (server.sqlPrepared.has(e.name) && server.sqlPrepared.get(e.name) !== def) inject.push(`DEALLOCATE ${quoteIdent(e.name)}`);
        definedHere.add(e.name);
        server.sqlPrepared.set(e.name, def);
      } else if (e.kind === 'execute' || e.kind === 'deallocate') {
        const def = session.sqlPrepared.get(e.name);
        if (!definedHere.has(e.name) && !def && server.sqlPrepared.has(e.name)) {
          // Another client's statement of that name must not answer for this client's EXECUTE.
          inject.push(`DEALLOCATE ${quoteIdent(e.name)}`);
          server.sqlPrepared.delete(e.name);
        }
        if (!definedHere.has(e.name) && def && server.sqlPrepared.get(e.name) !== def) {
          if (server.sqlPrepared.has(e.name)) inject.push(`DEALLOCATE ${quoteIdent(e.name)}`);
          inject.push(def);
          server.sqlPrepared.set(e.name, def);
        }
        if (e.kind === 'deallocate') server.sqlPrepared.delete(e.name);
      } else if (e.kind === 'deallocate-all') {
        server.sqlPrepared.clear();
      }
    }
    if (inject.length === 0) return;
    this.beforeOwnWrite(server);
    server.write(msg.query(inject.join('; ')));
    server.expectSwallowed(Slot.Query);
  }

  /**
   * Transaction mode: named statements are renamed to their shared server-side names, prepared
   * on this connection when missing, and a client's Parse or Close of them is answered by pgway
   * when the server needs no such message. Returns true when the frame was handled here.
   */
  private rewrite(server: ServerConnection, code: number, buf: Buffer, start: number, end: number): boolean {
    switch (code) {
      case Frontend.Parse: {
        const stmt = this.statements.onParse(buf, start, end, this.epoch);
        if (!stmt) return false;
        this.beforeOwnWrite(server);
        if (server.prepared.has(stmt.serverName)) {
          server.prepared.delete(stmt.serverName);
          server.prepared.set(stmt.serverName, true);
          server.expectSynthesized(Slot.Parse, msg.PARSE_COMPLETE);
        } else {
          this.prepareOn(server, stmt, true);
        }
        return true;
      }
      case Frontend.Bind: {
        const [name, stmtAt] = bindStatement(buf, start, end);
        const stmt = name ? this.statements.get(name) : undefined;
        if (!stmt) return false;
        this.beforeOwnWrite(server);
        if (stmt.epoch < this.epoch) return this.staleOnce(server, stmt);
        this.ensurePrepared(server, stmt);
        server.noteClientFrame(code);
        server.write(renameBind(buf, start, end, stmtAt, stmt.serverName));
        return true;
      }
      case Frontend.Describe:
      case Frontend.Close: {
        const [type, name] = targetOf(buf, start, end);
        const stmt = type === 0x53 && name ? this.statements.get(name) : undefined;
        if (!stmt) return false;
        this.beforeOwnWrite(server);
        if (code === Frontend.Close) {
          // The shared statement stays on the server for other clients; the client hears it closed.
          this.statements.delete(name);
          server.expectSynthesized(Slot.Close, msg.CLOSE_COMPLETE);
          return true;
        }
        if (stmt.epoch < this.epoch) return this.staleOnce(server, stmt);
        this.ensurePrepared(server, stmt);
        server.noteClientFrame(code);
        server.write(renameBind(buf, start, end, start + 6, stmt.serverName));
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * DDL changed what a statement the client prepared earlier returns. On a direct connection the
   * client would hear so once and prepare again; it hears it here too, once per statement.
   */
  private staleOnce(server: ServerConnection, stmt: ClientStatement): true {
    stmt.epoch = this.epoch;
    server.expectSynthesized(Slot.Bind, STALE_PLAN);
    this.skipUntilSync = true;
    return true;
  }

  private ensurePrepared(server: ServerConnection, stmt: ClientStatement): void {
    if (server.prepared.has(stmt.serverName)) {
      server.prepared.delete(stmt.serverName);
      server.prepared.set(stmt.serverName, true);
      return;
    }
    this.prepareOn(server, stmt, false);
  }

  /** Sends a Parse for `stmt`, evicting the least recently used statement past the bound. */
  private prepareOn(server: ServerConnection, stmt: ClientStatement, clientAsked: boolean): void {
    const max = this.maxPrepared;
    while (server.prepared.size >= max) {
      const oldest = server.prepared.keys().next().value as string;
      server.prepared.delete(oldest);
      server.write(closeStatement(oldest));
      server.expectSwallowed(Slot.Close);
    }
    server.prepared.set(stmt.serverName, true);
    server.write(stmt.parse);
    if (clientAsked) server.expectForwarded(Slot.Parse, stmt.serverName);
    else server.expectSwallowed(Slot.Parse, stmt.serverName);
  }
}
