/**
 * Where a client's SQL-level prepared statements (PREPARE / EXECUTE / DEALLOCATE) must be laid on
 * a shared server connection before its request: the statements that make the connection hold the
 * client's own definitions, and the records of what it holds, changed as if they ran.
 */
import type { ServerConnection } from '../pool/server-connection.js';
import { SQL_UNKNOWN } from '../pool/server-statements.js';
import { TxStatus } from '../wire/codes.js';
import { quoteIdentifier } from '../router/guc-value.js';
import type { SessionEffect } from '../router/session-effects.js';
import type { PreparedStatements } from './prepared-statements.js';
import type { SessionState } from './session-state.js';
import { layingOn, sqlDefinition } from './sql-statements.js';

/** Whether a session effect ends or rescues an aborted transaction block. */
export const endsFailedBlock = (e: SessionEffect): boolean =>
  e.kind === 'rollback' || (e.kind === 'commit' && e.own !== true) || e.kind === 'rollback-to';
/** Effects that name SQL-level prepared statements, which pgway may have to lay on the connection. */
export const namesSqlStatement = (e: SessionEffect): boolean =>
  e.kind === 'prepare' || e.kind === 'execute' || e.kind === 'deallocate' || e.kind === 'deallocate-all';
/** The SQL-level prepared statement an effect names, if one. */
const sqlStatementOf = (e: SessionEffect): string | undefined =>
  e.kind === 'prepare' || e.kind === 'execute' || e.kind === 'deallocate' ? e.name : undefined;
/** The first SQL-level statement effects name (for an error about them). */
export const firstStatementName = (effects: readonly SessionEffect[]): string => effects.map(sqlStatementOf).find((n) => n !== undefined) ?? '';

/** A statement held under `name` only so that the name is taken on the server. */
const placeholderStatement = (name: string): string => `PREPARE ${quoteIdentifier(name)} AS SELECT NULL`;

/**
 * The statements that make the connection hold what `effects` need, and (unless `dry`) the
 * records of the connection and the client changed as if they ran. What the connection holds
 * may be unknown (a statement of pgway's or a client's failed, a client's DEALLOCATE may not
 * have run): it is cleared with DEALLOCATE ALL first. `bound`: the effects are those of an
 * extended-protocol group's statements, which run only where an Execute of theirs does.
 */
export function sqlPlacement(
  server: ServerConnection,
  session: SessionState,
  clientStatements: PreparedStatements,
  effects: readonly SessionEffect[],
  dry: boolean,
  bound = false,
): string[] {
  const held = dry ? new Map(server.statements.sql) : server.statements.sql;
  const context = session.readingContext;
  const inBlock = server.txStatus !== TxStatus.Idle;
  const inject: string[] = [];
  if (server.statements.deallocateAll || effects.some((e) => held.get(sqlStatementOf(e) ?? '') === SQL_UNKNOWN)) {
    inject.push('DEALLOCATE ALL');
    held.clear();
    if (!dry) server.statements.forgetAll();
  }
  const definedHere = new Set<string>();
  // Names the text DEALLOCATEs before it PREPAREs them again: the client has them no more.
  const droppedHere = new Set<string>();
  let allDropped = false;
  /** The client's definition of `name` at this point of the text. */
  const clientDef = (name: string): string | undefined =>
    definedHere.has(name) || droppedHere.has(name) || allDropped ? undefined : session.sqlPrepared.get(name);
  /** Drops what the connection holds under `name` (another client's statement, or a stale one). */
  const drop = (name: string): void => {
    if (held.has(name)) inject.push(`DEALLOCATE ${quoteIdentifier(name)}`);
    held.delete(name);
  };
  /** Makes the connection hold `def` under `name` (see layingOn), or `statement` when told, and records what it holds. */
  const hold = (name: string, def: string, statement?: string): void => {
    if (held.get(name) === def || (statement !== undefined && held.get(name) === statement)) return;
    drop(name);
    const [text, holds] = statement === undefined ? layingOn(def, context, inBlock) : [statement, statement];
    inject.push(text);
    held.set(name, holds);
  };
  for (const e of effects) {
    if (e.kind === 'prepare') {
      // Defined earlier in the text (a second Bind of one PREPARE statement): the server refuses this one (42P05).
      if (definedHere.has(e.name)) continue;
      const own = clientDef(e.name);
      // The client has a statement of that name: PostgreSQL refuses the PREPARE (42P05) and keeps
      // the first. The server needs the name only (and nothing after the error runs): a placeholder
      // takes it where the first is not held, as the first may no longer prepare (a table dropped).
      if (own !== undefined) {
        hold(e.name, own, placeholderStatement(e.name));
        continue;
      }
      if (!allDropped && !definedHere.has(e.name) && !droppedHere.has(e.name) && clientStatements.get(e.name) !== undefined) {
        // A statement the client prepared through the protocol (renamed on the server) takes the
        // name all the same: a statement held under it makes the server refuse the PREPARE (42P05).
        const placeholder = placeholderStatement(e.name);
        hold(e.name, placeholder, placeholder);
        continue;
      }
      // The client has no statement of that name: nor may the connection (another client's, even
      // one alike), unless the text's own DEALLOCATE before it drops it.
      if (!droppedHere.has(e.name)) drop(e.name);
      definedHere.add(e.name);
      // A bound PREPARE may never run (a Bind with no Execute, an Execute skipped after an error):
      // whether the connection holds it is known only from its answer, as for a DEALLOCATE below.
      held.set(e.name, bound ? SQL_UNKNOWN : sqlDefinition(e.name, e.sql, e.paramTypes, context));
    } else if (e.kind === 'execute' || e.kind === 'deallocate') {
      // After the text's own DEALLOCATE of the name, the server answers as it would the client.
      if (!definedHere.has(e.name) && !droppedHere.has(e.name)) {
        const def = clientDef(e.name);
        // A DEALLOCATE needs the name, not the statement, which may no longer prepare (a table dropped).
        if (def !== undefined) hold(e.name, def, e.kind === 'execute' ? undefined : placeholderStatement(e.name));
        else if (e.kind === 'deallocate' && !bound && !allDropped && clientStatements.get(e.name) !== undefined) {
          // A statement the client prepared through the protocol (Rails' statement cache drops those
          // with a SQL DEALLOCATE in a Query): the server finds the name held, and the client's name
          // goes if the DEALLOCATE runs (RequestWriter.closeDeallocated), the shared statement staying.
          const placeholder = placeholderStatement(e.name);
          hold(e.name, placeholder, placeholder);
        }
        // Another client's statement of that name must not answer for this client's statement.
        else drop(e.name);
      }
      if (e.kind === 'deallocate') {
        // Whether it runs is known only from its answer (an error before it in the text, a Parse never executed).
        held.set(e.name, SQL_UNKNOWN);
        definedHere.delete(e.name);
        droppedHere.add(e.name);
      }
    } else if (e.kind === 'deallocate-all') {
      // DEALLOCATE ALL and DISCARD ALL drop the shared statements too, and the client's own, when
      // they run (RequestWriter.dropAllStatements). The connection's next placement starts from a
      // DEALLOCATE ALL of its own, whether this one ran or not. A group's runs only if an Execute
      // of its statement does, which says so itself: until then each name held is unknown, and
      // nothing else changes (a parsed DEALLOCATE ALL drops nothing, and with
      // max_prepared_statements 0 the statements on the connection are clients' own).
      if (bound) {
        for (const name of held.keys()) held.set(name, SQL_UNKNOWN);
      } else {
        held.clear();
        if (!dry) server.statements.deallocateAll = true;
      }
      definedHere.clear();
      allDropped = true;
    }
  }
  return inject;
}
