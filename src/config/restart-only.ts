/**
 * Settings fixed when pgway starts: where it listens (clients and HTTP) and the sandbox it runs. A
 * RELOAD keeps their running values, as PgBouncer keeps its own restart-only settings, so that
 * SHOW CONFIG shows what is in effect; the caller logs what was left for a restart.
 */
import type { Config } from './schema.js';

/** SHOW CONFIG keys (paths in Config) a RELOAD cannot change; a prefix covers its section. */
export const RESTART_ONLY_KEYS = ['listen.host', 'listen.port', 'listen.unixSocketDir', 'http', 'sandbox'];

export const isRestartOnly = (key: string): boolean =>
  RESTART_ONLY_KEYS.some((k) => key === k || key.startsWith(`${k}.`));

/** `next` with the restart-only settings of `running`, and the keys whose new values wait for a restart. */
export function keepRestartOnly(running: Config, next: Config): { config: Config; deferred: string[] } {
  const { host, port, unixSocketDir } = running.listen;
  const listen = { ...next.listen, host, port, unixSocketDir };
  if (unixSocketDir === undefined) delete listen.unixSocketDir;
  const deferred = RESTART_ONLY_KEYS.filter((key) => JSON.stringify(valueAt(running, key)) !== JSON.stringify(valueAt(next, key)));
  return { config: { ...next, listen, http: running.http, sandbox: running.sandbox }, deferred };
}

function valueAt(config: Config, key: string): unknown {
  return key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
}
