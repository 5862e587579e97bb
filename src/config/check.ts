// `pgway check-config my.yaml`: validate a config without starting anything, and say what it would run.
import { accessSync, constants } from 'node:fs';
import { ConfigError, formatIssue, loadConfig, type ConfigIssue, type Env } from './load.js';
import type { Config, DatabaseConfig, ServerTarget, UserConfig } from './schema.js';

export function checkConfig(path: string, env: Env = process.env): { ok: boolean; output: string } {
  let config: Config;
  try {
    config = loadConfig(path, env);
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, output: err.format() };
    throw err;
  }
  // Loading never touches the files a config names (a reload must not depend on them); a check should.
  const missing = unreadableFiles(config).map(([field, file, reason]): ConfigIssue => ({ file: path, field, message: `cannot read ${file}: ${reason}` }));
  if (missing.length > 0) return { ok: false, output: missing.map(formatIssue).join('\n') };
  return { ok: true, output: summary(path, config) };
}

function unreadableFiles(config: Config): [field: string, file: string, reason: string][] {
  const files: [string, string | undefined][] = [
    ['listen.tls.cert', config.listen.tls?.cert],
    ['listen.tls.key', config.listen.tls?.key],
    ['listen.tls.ca', config.listen.tls?.ca],
  ];
  for (const db of config.databases) {
    files.push([`databases.${db.name}.primary.sslrootcert`, db.primary.sslrootcert]);
    db.replicas.forEach((r, i) => files.push([`databases.${db.name}.replicas[${i}].sslrootcert`, r.sslrootcert]));
  }
  const problems: [string, string, string][] = [];
  for (const [field, file] of files) {
    if (file === undefined || file === 'system') continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      problems.push([field, file, err instanceof Error && 'code' in err ? String(err.code) : String(err)]);
    }
  }
  return problems;
}

function summary(path: string, config: Config): string {
  const { listen, http } = config;
  const listenParts = [address(listen.host, listen.port)];
  if (listen.unixSocketDir !== undefined) listenParts.push(`unix socket ${listen.unixSocketDir}/.s.PGSQL.${listen.port}`);
  if (listen.tls) listenParts.push(`TLS ${listen.tls.mode}`);
  const databases = config.databases.length > 0
    ? config.databases.map(describeDatabase)
    : [`none: runs the embedded sandbox in ${config.sandbox.dataDir}`];
  const users = config.auth.users.length > 0 ? config.auth.users.map(describeUser).join(', ') : 'none';
  return [
    `${path}: OK`,
    `  listen     ${listenParts.join(', ')}`,
    `  http       ${http.enabled ? address(http.host, http.port) : 'disabled'}`,
    ...databases.map((d, i) => `  ${i === 0 ? 'databases ' : '          '} ${d}`),
    `  users      ${users}`,
    `  pool       ${config.pool.mode}, size ${config.pool.size}`,
    `  cache      ${config.cache.enabled ? `on${config.cache.redis ? ' + redis' : ' (in-process only)'}` : 'off'}`
      + `, analyzer ${config.analyzer.enabled ? `on (slow >= ${config.analyzer.slowThresholdMs} ms)` : 'off'}`,
  ].join('\n');
}

function address(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === 0 ? `${h}:<any free port>` : `${h}:${port}`;
}

function target(t: ServerTarget): string {
  return `${t.host.startsWith('/') ? `${t.host}:${t.port}` : address(t.host, t.port)}/${t.dbname}`;
}

function describeDatabase(db: DatabaseConfig): string {
  const replicas = db.replicas.length === 0 ? '' : `, replicas ${db.replicas.map(target).join(' ')}`;
  return `${db.name} -> primary ${target(db.primary)}${replicas} (pool ${db.pool.mode}, size ${db.pool.size})`;
}

function describeUser(u: UserConfig): string {
  return `${u.name} (${[u.method, ...(u.admin ? ['admin'] : []), ...(u.poolMode ? [`${u.poolMode} pooling`] : [])].join(', ')})`;
}
