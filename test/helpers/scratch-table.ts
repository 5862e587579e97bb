// A table of the lab the app user may write (COPY into), made before a file's tests and dropped after.
import { afterAll, beforeAll } from 'vitest';
import { adminQuery } from '../harness/lab.js';

/** `name (a int)`, granted to app, for the file that calls this. */
export function scratchTable(name: string): void {
  beforeAll(async () => {
    await adminQuery(`DROP TABLE IF EXISTS ${name}`);
    await adminQuery(`CREATE TABLE ${name} (a int)`);
    await adminQuery(`GRANT ALL ON ${name} TO app`);
  });
  afterAll(async () => {
    await adminQuery(`DROP TABLE IF EXISTS ${name}`);
  });
}
