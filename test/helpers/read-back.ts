// The check most settings tests end with: another client takes the one server connection (pgway
// lays that client's settings on it, and the first client's again when it comes back), then the
// first client reads a setting back.
import type { RawClient } from './raw-client.js';
import { answers, Q } from './wire-script.js';

/** `other` sets work_mem on the shared connection; then `client` runs `read` (a Query) and gets its answer. */
export async function readBackAfterOther(client: RawClient, other: RawClient, read: string): Promise<string[]> {
  other.write(Q("SET work_mem = '7MB'"));
  await answers(other);
  client.write(Q(read));
  return answers(client).catch((e: Error) => [`timeout: ${e.message}`]);
}
