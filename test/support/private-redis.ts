/**
 * A Redis of a test's own: the Redis Stack binary with only the modules asked for, on a free port, no password
 * and no persistence, in a temporary directory. Made of services/stack/redis.ts's blocks (binaries, config
 * file, PONG readiness, /proc identity) and process.ts's launch and stop: the stack's Redis, minus what the
 * test does not want. `stop()` ends exactly that server and removes its directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/core/log.ts';
import { freePort, launchServer } from '../../services/stack/process.ts';
import { ensureRedisStack, redisConfig, redisIdentity, redisReadiness } from '../../services/stack/redis.ts';
import { stackSettings, toolsDir } from '../../services/stack/settings.ts';

export interface PrivateRedis {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startPrivateRedis(modules: ('search' | 'json')[]): Promise<PrivateRedis> {
  const rs = ensureRedisStack(toolsDir(stackSettings()), createLogger({ service: 'private-redis' }));
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-private-redis-'));
  const conf = path.join(dir, 'redis.conf');
  fs.writeFileSync(conf, redisConfig({ port, dir, aof: false, modules: modules.map((m) => rs[m]) }));
  const server = await launchServer({
    name: 'private-redis',
    port,
    command: rs.server,
    args: [conf],
    logFile: path.join(dir, 'redis.log'),
    pidFile: path.join(dir, 'redis.pid'),
    pidFileBy: 'launcher',
    identity: redisIdentity(rs.server, port, dir),
    ready: redisReadiness(port, undefined, 20_000),
    detached: false,
  });
  return {
    port,
    pid: server.pid,
    stop: async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
