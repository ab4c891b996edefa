/**
 * A Redis of a test's own: the stack's Redis Stack binary on a free port, in a temporary directory, no
 * persistence, with the modules asked for; optionally TLS only (`port 0` + `tls-port`, a certificate of
 * ./certificates.ts) and a password for the default user (in a mode-600 config file, never on the command
 * line). Made of the local stack's blocks (services/stack/redis.ts: binaries, config text, /proc identity;
 * process.ts: free port, launch, readiness, stop). `stop()` ends exactly that server and removes its directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../services/core/log.ts';
import { freePort, launchServer, portAnswers } from '../../services/stack/process.ts';
import type { Readiness } from '../../services/stack/process.ts';
import { ensureRedisStack, redisConfig, redisIdentity, redisReadiness } from '../../services/stack/redis.ts';
import { stackSettings, toolsDir } from '../../services/stack/settings.ts';
import type { Certificates } from './certificates.ts';

export type RedisModule = 'search' | 'json';

export interface RedisServerOptions {
  /** the Redis Stack modules to load (default: search and JSON) */
  modules?: RedisModule[];
  /** TLS only, with this server certificate (clients are not asked for one) */
  tls?: Certificates;
  /** password of the default user */
  password?: string;
}

export interface RedisServer {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** The lines that make a server TLS only: the plain port closed, TLS on `port`. */
function tlsLines(port: number, tls: Certificates): string[] {
  return [
    'port 0',
    `tls-port ${port}`,
    `tls-cert-file ${tls.cert}`,
    `tls-key-file ${tls.key}`,
    `tls-ca-cert-file ${tls.ca}`,
    'tls-auth-clients no',
  ];
}

/** Ready once it answers PING; a TLS-only server once its port accepts connections (PING would need TLS). */
function readiness(port: number, o: RedisServerOptions): Readiness {
  if (!o.tls) return redisReadiness(port, o.password, 20_000);
  return { answer: 'a TLS listener', timeoutMs: 20_000, probe: () => portAnswers(port) };
}

export async function startRedisServer(o: RedisServerOptions = {}): Promise<RedisServer> {
  const rs = ensureRedisStack(toolsDir(stackSettings()), createLogger({ service: 'test-redis' }));
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-redis-'));
  const modules = (o.modules ?? ['search', 'json']).map((m) => rs[m]);
  const text = redisConfig({ port, dir, password: o.password, aof: false, modules });
  const conf = path.join(dir, 'redis.conf');
  fs.writeFileSync(conf, o.tls ? `${text}${tlsLines(port, o.tls).join('\n')}\n` : text, { mode: 0o600 });
  const server = await launchServer({
    name: 'test-redis',
    port,
    command: rs.server,
    args: [conf],
    logFile: path.join(dir, 'redis.log'),
    pidFile: path.join(dir, 'redis.pid'),
    pidFileBy: 'launcher',
    identity: redisIdentity(rs.server, port, dir),
    ready: readiness(port, o),
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
