/**
 * The copies of a client's shared statements on the server connection its request is written to.
 * A copy is prepared where missing (the least recently used evicted past max_prepared_statements),
 * described by pgway where PostgreSQL would check its shape (see ShapeCheck), and compared with
 * the shape the client prepared the statement with before the client's Bind or Describe goes out.
 *
 * PostgreSQL refuses a statement whose result DDL changed since the session prepared it (0A000).
 * A connection that prepares the statement after the DDL gets the new plan without an error, so
 * pgway compares instead: the client hears 0A000 where it would on a direct connection.
 */
import { Slot, type SlotUndo } from '../pool/expected-responses.js';
import type { Pool } from '../pool/pool.js';
import type { ServerConnection } from '../pool/server-connection.js';
import { schema, SHAPE_PENDING, SHAPE_UNKNOWN } from '../pool/server-statements.js';
import { bindHasBinaryParameters } from '../wire/decode.js';
import * as msg from '../wire/messages.js';
import { closeStatement, learnShape, ShapeCheck, type ClientStatement, type PreparedStatements } from './prepared-statements.js';

/** What a Bind or Describe of a tracked statement does next (see StatementCopies.prepareFor). */
export const enum Next {
  /** It goes to the server. */
  Send,
  /** It waits for pgway's own Describe of the statement: the server was asked to answer (Flush). */
  Wait,
  /** It is refused with 0A000: the statement returns something else since the client prepared it. */
  Refuse,
}

/** Statements remembered as prepared in one request (see StatementCopies.fresh). */
const MAX_FRESH = 256;

/** Whether two statement shapes (see ShapeCheck) have the same columns, whatever their parameters. */
const sameColumns = (a: string, b: string): boolean => a.slice(a.indexOf('/')) === b.slice(b.indexOf('/'));

/** Closes a stale copy on `server`; one the server skips (an error before it) is still there, and stale. */
function closeStale(server: ServerConnection, name: string): void {
  server.write(closeStatement(name));
  server.expectSwallowed(Slot.Close, new StaleClose(server, name));
}

class StaleClose implements SlotUndo {
  constructor(
    private readonly server: ServerConnection,
    private readonly name: string,
  ) {}

  undo(): void {
    this.server.statements.stale.add(this.name);
  }
}

export class StatementCopies {
  /**
   * The statements prepared on `freshOn` in the request being written (and the one it resumes
   * after a description): their descriptions are the newest there are (see prepareFor). Made at
   * the first Parse pgway writes for the client: an empty Set costs an idle client 152 bytes.
   */
  private fresh: Set<string> | undefined;
  private freshOn: ServerConnection | undefined;
  private pool: Pool | undefined;
  private maxPrepared = 0;

  /**
   * `guess`: called when the connection's statements change, before pgway writes a Parse (see
   * RequestWriter.guess).
   */
  constructor(
    private readonly statements: PreparedStatements,
    private readonly guess: (server: ServerConnection) => void,
  ) {}

  /**
   * A request is written to a connection of `pool`. One that resumes after a description keeps
   * what it prepared: those copies are the freshest still.
   */
  begin(pool: Pool, resuming: boolean): void {
    this.pool = pool;
    // A client that tracks its statements keeps doing so after a RELOAD to 0 (see RequestWriter):
    // its copies need room for one, or prepareOn would evict from an empty connection forever.
    this.maxPrepared = Math.max(1, pool.settings.maxPreparedStatements);
    // Clearing a Set allocates a new table, even an empty one's.
    if (!resuming && this.fresh !== undefined && this.fresh.size > 0) this.fresh.clear();
  }

  /**
   * Makes `stmt` ready for the client's Bind or Describe on this connection (see ensurePrepared),
   * and checks that the copy there returns what the client prepared it to return. A connection
   * that prepares a statement after DDL gets the new plan without an error, where PostgreSQL
   * refuses the client's old statement (0A000) each time it runs while it returns something else,
   * and runs it again once it returns what it did: so does pgway (Next.Refuse), and the copies
   * that still have an old shape are dropped. A statement whose shape the client has not met yet
   * takes the copy's. `bind`: the Bind frame (statement name at `stmtAt`); none for a Describe,
   * which tells the client the copy's parameter types.
   */
  prepareFor(server: ServerConnection, stmt: ClientStatement, bind?: Buffer, stmtAt = 0, end = 0): Next {
    if (!this.ensurePrepared(server, stmt)) return Next.Wait;
    const copy = server.statements.prepared.get(stmt.serverName);
    if (copy === undefined || copy === SHAPE_PENDING) return Next.Send;
    const known = stmt.shape;
    if (copy === SHAPE_UNKNOWN) {
      // Its description failed, or the server skipped pgway's Close of it (an eviction, after an
      // error in the request): a copy that may predate DDL, which the client's shape must be compared
      // with. It is made again and described first, as one described before DDL is (below).
      if (!stmt.checked || known === undefined) return Next.Send;
      server.statements.markStale(stmt.serverName);
      return this.ensurePrepared(server, stmt) ? Next.Send : Next.Wait;
    }
    if (copy === known) {
      // With nothing of the client's in flight, the run that took this shape has been answered
      // without the server's stale-plan error (which drops a guess, see PreparedStatements.renew).
      if (stmt.shapeGuessed && !server.busy) stmt.shapeGuessed = false;
      return Next.Send;
    }
    if (known === undefined) {
      learnShape(stmt, copy, true);
      return Next.Send;
    }
    if (sameColumns(copy, known)) {
      // PostgreSQL keeps a statement's parameter types as they were prepared, where a fresh copy
      // infers them again: values sent as text read the same either way, binary ones do not.
      if (bind === undefined) learnShape(stmt, copy, stmt.shapeGuessed);
      if (bind === undefined || !bindHasBinaryParameters(bind, stmtAt, end)) return Next.Send;
    }
    if (this.freshOn !== server || this.fresh?.has(stmt.serverName) !== true) {
      // Described before DDL that came since, maybe (which may also have changed the tables back
      // to the client's shape): the copy is made again and described first, once per request.
      server.statements.markStale(stmt.serverName);
      return this.ensurePrepared(server, stmt) ? Next.Send : Next.Wait;
    }
    // The client keeps the shape it prepared the statement with, so its next run is compared
    // again. The fresh copy stays for the clients that prepared it since: one Parse per refused
    // run, never more, as a copy described in this request is not made again (see fresh).
    this.pool!.retireCopies(stmt.serverName, copy);
    return Next.Refuse;
  }

  /**
   * Sends a Parse for `stmt`, evicting the least recently used statement past the bound, and
   * pgway's own Describe of it where PostgreSQL would check its shape (see ShapeCheck); with
   * `clientName`, the client's own Parse defining that name. Returns whether a description is
   * on its way.
   */
  prepareOn(server: ServerConnection, stmt: ClientStatement, clientName?: string): boolean {
    // The server discards everything up to the client's Sync, this Parse too: nothing is prepared or evicted.
    if (server.skippingToSync) return false;
    this.guess(server);
    const max = this.maxPrepared;
    const { prepared, stale } = server.statements;
    // A stale copy holds its place on the server until closed: this statement's first, then the
    // others before any current one, so that the connection never holds more than the bound.
    if (stale.delete(stmt.serverName)) closeStale(server, stmt.serverName);
    while (prepared.size + stale.size >= max) {
      const staleOne = stale.values().next().value as string | undefined;
      if (staleOne !== undefined) {
        stale.delete(staleOne);
        closeStale(server, staleOne);
        continue;
      }
      const oldest = prepared.keys().next().value as string;
      prepared.delete(oldest);
      server.statements.since.delete(oldest);
      server.write(closeStatement(oldest));
      server.expectSwallowed(Slot.Close, oldest);
    }
    prepared.set(stmt.serverName, stmt.checked ? SHAPE_PENDING : SHAPE_UNKNOWN);
    server.statements.since.set(stmt.serverName, schema.epoch);
    const fresh = (this.fresh ??= new Set());
    if (this.freshOn !== server || fresh.size >= MAX_FRESH) {
      fresh.clear();
      this.freshOn = server;
    }
    fresh.add(stmt.serverName);
    server.write(stmt.parse);
    if (clientName !== undefined) server.expectForwarded(Slot.Parse, this.statements.define(clientName, stmt, undefined, stmt.serverName));
    else server.expectSwallowed(Slot.Parse, stmt.serverName);
    if (!stmt.checked) return false;
    return server.describeOwn(stmt.serverName, new ShapeCheck(server, stmt.serverName, clientName === undefined ? undefined : stmt));
  }

  /**
   * Makes `stmt` exist on the connection before the client's Bind or Describe of it; returns false
   * when that message must wait. A statement the connection lacks is prepared and described (see
   * prepareFor). A client that knows what its statement returns waits for the description, since
   * an Execute sent behind its Bind could not be taken back (an INSERT ... RETURNING): one round
   * trip per statement a connection prepares for such a Bind.
   */
  private ensurePrepared(server: ServerConnection, stmt: ClientStatement): boolean {
    let copy = server.statements.use(stmt.serverName);
    if (copy !== undefined && stmt.schemaAt !== 0 && server.statements.preparedBefore(stmt.serverName, stmt.schemaAt)) {
      // Prepared before a schema change the client's Parse came after: its parameter types, and
      // the relations its names mean, may be older than the client's (see schema).
      server.statements.markStale(stmt.serverName);
      copy = undefined;
    }
    if (copy !== undefined) {
      // Prepared earlier in this request (another name of the client's): its description is on its way.
      return copy !== SHAPE_PENDING || stmt.shape === undefined || this.awaitDescription(server);
    }
    if (!this.prepareOn(server, stmt) || stmt.shape === undefined) return true;
    return this.awaitDescription(server);
  }

  /**
   * The server is asked to answer what it has (Flush), and holds the client's cancels meanwhile
   * (ServerConnection.clientHeldBack): the client's next message waits for the description.
   */
  private awaitDescription(server: ServerConnection): false {
    server.write(msg.FLUSH);
    server.clientHeldBack = true;
    return false;
  }
}
