/**
 * What a server connection reported to its clients' requests, counted: errors, the command tags of
 * transaction control, and those that change the client's SQL-level prepared statements. A session
 * reads the counts when a request starts and again when it ends; the difference says whether the
 * request's effects committed (see SessionState.settle).
 */
export class ReportedCounts {
  /** ErrorResponses a client saw (not those of pgway's own statements). */
  errors = 0;
  /** CommandCompletes tagged ROLLBACK (including ROLLBACK TO SAVEPOINT and a COMMIT that rolled back). */
  rollbacks = 0;
  /** CommandCompletes tagged COMMIT or PREPARE TRANSACTION: the transaction's work committed (or is kept). */
  commits = 0;
  /** CommandCompletes tagged SAVEPOINT and RELEASE. */
  savepoints = 0;
  releases = 0;
  /**
   * CommandCompletes a client saw tagged PREPARE, DEALLOCATE (ALL) or DISCARD ALL: its SQL-level
   * statements that ran, kept whatever later statements of their request do (they are not transactional).
   */
  sqlNames = 0;

  copyFrom(other: ReportedCounts): void {
    this.errors = other.errors;
    this.rollbacks = other.rollbacks;
    this.commits = other.commits;
    this.savepoints = other.savepoints;
    this.releases = other.releases;
    this.sqlNames = other.sqlNames;
  }
}
