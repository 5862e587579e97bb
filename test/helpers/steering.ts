// Steering a client onto a chosen one of a transaction-mode pool's two server connections, so that
// a test can make its requests run where it wants them: two holder clients keep one connection each
// in a transaction, and let go of the one the client is to get. They run BEGIN and COMMIT as named
// statements: a simple Query (or an unnamed Parse) of theirs would drop the unnamed statement on the
// connection it ran on.
import type { RawClient } from './raw-client.js';
import { answers, B, cat, E, P, rawTargets, S, type Target } from './wire-script.js';

const { raw } = rawTargets();
const BEGIN = cat(B('steer_begin'), E(''), S);
const COMMIT = cat(B('steer_commit'), E(''), S);

export interface Steering {
  /** Leaves only connection `n` idle (1 or 2): the next request the steered client sends runs there. */
  to(n: 1 | 2): Promise<void>;
  /** Lets go of both connections. */
  done(): Promise<void>;
}

/** Two holders on `t`, each in a transaction on a connection of its own (1 and 2): both busy. */
export async function twoConnectionSteering(t: Target): Promise<Steering> {
  const holders: RawClient[] = [await raw(t), await raw(t)];
  const holding = [false, false];
  const run = async (i: number, request: Buffer): Promise<void> => {
    holders[i]!.write(request);
    await answers(holders[i]!, 1, 3000);
  };
  for (const h of holders) {
    h.write(cat(P('steer_begin', 'BEGIN'), P('steer_commit', 'COMMIT'), S));
    await answers(h, 1, 3000);
  }
  for (let i = 0; i < 2; i++) {
    await run(i, BEGIN);
    holding[i] = true;
  }
  return {
    async to(n) {
      const [mine, other] = n === 1 ? [0, 1] : [1, 0];
      // The other takes the connection left idle (the one it let go of before), then this one lets go of its own.
      if (!holding[other]) await run(other, BEGIN);
      holding[other] = true;
      if (holding[mine]) await run(mine, COMMIT);
      holding[mine] = false;
    },
    async done() {
      for (let i = 0; i < 2; i++) if (holding[i]) await run(i, COMMIT);
      holding.fill(false);
    },
  };
}
