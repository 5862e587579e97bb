// (Regression test; the failure below is fixed.) A request pipelined behind the StartupMessage, then a frame of a type PostgreSQL does not accept,
// in one write. PostgreSQL logs the client in, runs the request, answers it, then ends the session
// (FATAL 08P01), as 042c5bf makes pgway do for the same bytes sent after login. Here the bytes after
// the StartupMessage do not go through onData's new try/catch: in onStartupBytes the scanner's error
// reaches the outer catch (fail at once), and while a session-mode login waits for its server
// (state 'connecting') the error is rethrown too. The request is dropped unanswered.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './harness/gateway.js';
import { answersWithin, RawClient, startupPacket, typedMessage } from './helpers/raw-client.js';
import { cat, Q } from './helpers/wire-script.js';

const BAD = typedMessage('z', Buffer.from('abc'));

for (const mode of ['transaction', 'session'] as const) {
  describe(`${mode} mode: StartupMessage + Query + bad frame in one write`, () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startGateway({ pool: `{ mode: ${mode}, size: 3, query_wait_timeout_ms: 3000 }` });
      // The pool knows its server's parameters and has an idle connection.
      const warm = new pg.Client({ connectionString: gw.url('trustuser', 'app', '') });
      await warm.connect();
      await warm.query('SELECT 1');
      await warm.end();
    });
    afterAll(async () => {
      await gw?.stop();
    });

    it('the login is answered, the query runs and is answered, then FATAL 08P01', async () => {
      const c = await RawClient.connect({ host: gw.host, port: gw.port });
      c.write(cat(startupPacket({ user: 'trustuser', database: 'app' }), Q('SELECT 1'), BAD));
      const got = (await answersWithin(c, 3000)).filter((t) => t !== 'K');
      c.destroy();
      // pgway (both modes): ['R', 'Z', 'FATAL 08P01']: the SELECT never ran
      expect(got).toEqual(['R', 'Z', 'T', 'D', 'C', 'Z', 'FATAL 08P01']);
    });
  });
}
