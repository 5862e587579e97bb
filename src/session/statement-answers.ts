/**
 * PostgreSQL's own answers to a client's statement messages, for where pgway answers them itself:
 * worded as PostgreSQL words them (SQLSTATE, file and routine), so that a driver reacts to them as
 * it would to the server's.
 */
import { Backend } from '../wire/codes.js';
import * as msg from '../wire/messages.js';

/** As PostgreSQL words it; drivers such as postgres.js re-prepare when they see this routine. */
export const STALE_PLAN = msg.errorResponse({
  severity: 'ERROR',
  sqlstate: '0A000',
  message: 'cached plan must not change result type',
  file: 'plancache.c',
  routine: 'RevalidateCachedQuery',
});

export const alreadyExists = (name: string): Buffer => msg.errorResponse({
  severity: 'ERROR',
  sqlstate: '42P05',
  message: `prepared statement "${name}" already exists`,
  file: 'prepare.c',
  routine: 'StorePreparedStatement',
});

export const NO_DATA = new msg.MessageWriter(5).frame(Backend.NoData);

/** PostgreSQL's answer to a Bind or Describe of an unnamed statement the session does not have. */
export const NO_UNNAMED_STATEMENT = msg.errorResponse({
  severity: 'ERROR',
  sqlstate: '26000',
  message: 'unnamed prepared statement does not exist',
  file: 'postgres.c',
  routine: 'exec_bind_message',
});

/** PostgreSQL's answer to a Bind or Describe of a named statement the session does not have. */
export const noSuchStatement = (name: string): Buffer => msg.errorResponse({
  severity: 'ERROR',
  sqlstate: '26000',
  message: `prepared statement "${name}" does not exist`,
  file: 'prepare.c',
  routine: 'FetchPreparedStatement',
});
