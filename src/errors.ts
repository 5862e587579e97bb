/**
 * The one registry of errors pgway itself reports to clients. Server errors are never wrapped:
 * they are forwarded byte for byte. Each class has a stable `code`, a SQLSTATE and a severity,
 * and turns itself into an ErrorResponse frame with `toFrame()`.
 */
import { errorResponse, type Severity } from './wire/messages.js';

export abstract class GatewayError extends Error {
  abstract readonly code: string;
  abstract readonly sqlstate: string;
  readonly severity: Severity = 'FATAL';
  readonly detail?: string;
  readonly hint?: string;

  constructor(message: string, options?: { cause?: unknown; detail?: string; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.detail !== undefined) this.detail = options.detail;
    if (options?.hint !== undefined) this.hint = options.hint;
  }

  toFrame(): Buffer {
    return errorResponse({
      severity: this.severity,
      sqlstate: this.sqlstate,
      message: this.message,
      detail: this.detail,
      hint: this.hint,
    });
  }
}

// --- protocol -----------------------------------------------------------------------------------

export class ProtocolViolationError extends GatewayError {
  readonly code = 'PGWAY_PROTOCOL_VIOLATION';
  readonly sqlstate = '08P01';
}

/** A message whose type byte the protocol does not have, at this point of the session. */
export class UnknownMessageTypeError extends ProtocolViolationError {
  constructor(readonly messageType: number) {
    super(`invalid frontend message type ${messageType}`);
  }
}

export class MessageTooLargeError extends GatewayError {
  readonly code = 'PGWAY_MESSAGE_TOO_LARGE';
  readonly sqlstate = '08P01';
  constructor(length: number, max: number) {
    super(`invalid message length: ${length} bytes exceeds the limit of ${max}`, {
      hint: 'Raise limits.max_message_bytes if such messages are expected.',
    });
  }
}

/**
 * Statement pooling refuses a transaction block, with PgBouncer's code and text (PgBouncer ends the
 * client with its default 08P01): clients that recognise PgBouncer's error recognise this one.
 */
export class TransactionBlockRefusedError extends GatewayError {
  readonly code = 'PGWAY_TRANSACTION_BLOCK_REFUSED';
  readonly sqlstate = '08P01';
  constructor() {
    super('transaction blocks not allowed in statement pooling mode');
  }
}

export class FeatureNotSupportedError extends GatewayError {
  readonly code = 'PGWAY_FEATURE_NOT_SUPPORTED';
  readonly sqlstate = '0A000';
}

export class InvalidParameterValueError extends GatewayError {
  readonly code = 'PGWAY_INVALID_PARAMETER_VALUE';
  readonly sqlstate = '22023';
}

/** The startup `options` are not a command line PostgreSQL reads (an unknown switch, a -c without =). */
export class InvalidStartupOptionsError extends GatewayError {
  readonly code = 'PGWAY_INVALID_STARTUP_OPTIONS';
  readonly sqlstate = '42601';
}

/** A startup parameter names a setting no session may change (is_superuser, server_version...). */
export class ReadOnlySettingError extends GatewayError {
  readonly code = 'PGWAY_READ_ONLY_SETTING';
  readonly sqlstate = '55P02';
  constructor(name: string) {
    super(`parameter "${name}" cannot be changed`);
  }
}

export class StartupTimeoutError extends GatewayError {
  readonly code = 'PGWAY_STARTUP_TIMEOUT';
  readonly sqlstate = '08P01';
}

// --- authentication and admission ---------------------------------------------------------------

export class InvalidPasswordError extends GatewayError {
  readonly code = 'PGWAY_INVALID_PASSWORD';
  readonly sqlstate = '28P01';
  constructor(user: string) {
    super(`password authentication failed for user "${user}"`);
  }
}

export class InvalidAuthorizationError extends GatewayError {
  readonly code = 'PGWAY_INVALID_AUTHORIZATION';
  readonly sqlstate = '28000';
}

export class UnknownDatabaseError extends GatewayError {
  readonly code = 'PGWAY_UNKNOWN_DATABASE';
  readonly sqlstate = '3D000';
  constructor(database: string) {
    super(`database "${database}" does not exist`, { hint: 'pgway serves only the databases named in its config.' });
  }
}

export class TooManyClientsError extends GatewayError {
  readonly code = 'PGWAY_TOO_MANY_CLIENTS';
  readonly sqlstate = '53300';
  constructor(max: number) {
    super(`sorry, too many clients already (max_client_conn is ${max})`);
  }
}

// --- pool and server side -----------------------------------------------------------------------

export class PoolTimeoutError extends GatewayError {
  readonly code = 'PGWAY_POOL_TIMEOUT';
  readonly sqlstate = '57P05';
  constructor(pool: string, waitedMs: number) {
    super(`no server connection available for ${pool} after ${waitedMs} ms (query_wait_timeout)`, {
      hint: 'The pool is exhausted: raise pool.size or shorten transactions.',
    });
  }
}

/** A cancel request for a statement still waiting (for a server connection, or a PAUSE for its drain): as PostgreSQL words it. */
export class QueryCanceledError extends GatewayError {
  readonly code = 'PGWAY_QUERY_CANCELED';
  readonly sqlstate = '57014';
  override readonly severity: Severity = 'ERROR';
  constructor() {
    super('canceling statement due to user request');
  }
}

export class IdleInTransactionTimeoutError extends GatewayError {
  readonly code = 'PGWAY_IDLE_IN_TRANSACTION_TIMEOUT';
  readonly sqlstate = '25P03';
  constructor(timeoutMs: number) {
    super(`terminating connection due to idle-in-transaction timeout (idle_transaction_timeout_ms is ${timeoutMs})`);
  }
}

export class ServerConnectError extends GatewayError {
  readonly code = 'PGWAY_SERVER_CONNECT';
  readonly sqlstate = '08006';
}

export class ServerAuthError extends GatewayError {
  readonly code = 'PGWAY_SERVER_AUTH';
  readonly sqlstate = '28000';
}

/**
 * The server refused pgway's login (wrong server password, no such role, no REPLICATION right...).
 * The client sees the server's own SQLSTATE and message; where the server is stays in the log.
 */
export class ServerRefusedError extends GatewayError {
  readonly code = 'PGWAY_SERVER_REFUSED';
  readonly sqlstate: string;
  constructor(sqlstate: string, message: string, options?: { detail?: string; hint?: string }) {
    super(message, options);
    this.sqlstate = sqlstate;
  }
}

export class ServerConnectionLostError extends GatewayError {
  readonly code = 'PGWAY_SERVER_LOST';
  readonly sqlstate = '08006';
  constructor(options?: { cause?: unknown }) {
    super('server connection lost; the current transaction is gone', options);
  }
}

export class ShuttingDownError extends GatewayError {
  readonly code = 'PGWAY_SHUTTING_DOWN';
  readonly sqlstate = '57P01';
  constructor() {
    super('terminating connection due to administrator command (pgway is shutting down)');
  }
}

/**
 * KILL, or a RELOAD that removed the client's database or user: the same SQLSTATE and wording as
 * pg_terminate_backend(), with what the administrator did (PgBouncer says "database removed").
 */
export class AdminTerminationError extends GatewayError {
  readonly code = 'PGWAY_ADMIN_TERMINATION';
  readonly sqlstate = '57P01';
  constructor(reason: string) {
    super(`terminating connection due to administrator command (${reason})`);
  }
}
