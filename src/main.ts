#!/usr/bin/env node
/**
 * pgway CLI.
 *   pgway [--config FILE]        run the gateway (default config: config/default.yaml)
 *   pgway check-config FILE      validate a config and print every error with file, line and field
 */
import { parseArgs } from 'node:util';
import { checkConfig } from './config/check.js';
import { ConfigError, loadConfig } from './config/load.js';
import { Gateway } from './gateway.js';

const USAGE = `usage: pgway [--config FILE]
       pgway check-config FILE`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'check-config') {
    const file = argv[1];
    if (!file) {
      console.error(USAGE);
      return 2;
    }
    const result = checkConfig(file);
    (result.ok ? console.log : console.error)(result.output);
    return result.ok ? 0 : 1;
  }
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  let config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.format());
      return 1;
    }
    throw err;
  }

  const gateway = new Gateway(config);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      gateway.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    gateway.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        gateway.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // An invalid new config is logged and refused inside reload(); the old one keeps running.
  process.on('SIGHUP', () => void gateway.reload().catch(() => undefined));

  const address = await gateway.start();
  if (gateway.sandboxCluster) {
    const user = config.auth.users.find((u) => !u.admin && u.password) ?? config.auth.users[0];
    const password = user?.password ? `:${encodeURIComponent(user.password)}` : '';
    const url = `postgres://${user?.name ?? 'postgres'}${password}@${address.host}:${address.port}/app`;
    console.log(`\npgway is running in front of the embedded sandbox PostgreSQL.\nConnect with:\n  psql "${url}"\nPress Ctrl-C to stop.\n`);
  }
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
