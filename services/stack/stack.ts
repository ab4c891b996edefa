/**
 * The local stack: our own MariaDB (binlog on, ROW/FULL/FULL), Redis Stack (RedisJSON + RediSearch, password,
 * AOF) and kinesalite (data on disk, stream created), each in a project-local data directory under
 * `.drugsync/` and on ports that avoid the machine's own services. `up` installs what is missing, is
 * idempotent and waits until each service answers; `down` stops exactly the processes `up` started (pid
 * files, checked against /proc/<pid>/cmdline); `status` reports port, version and health; `env` the settings.
 *
 * This file runs those four over `SERVERS` and knows no server in particular: each is a `LocalServer`
 * (server.ts) in a module of its own (mariadb.ts, redis.ts, kinesis.ts).
 */
import fs from 'node:fs';
import { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { createLogger } from '../core/log.ts';
import { PROJECT_ROOT, DEFAULT_ENV_FILE } from '../core/paths.ts';
import { saveEnvFile } from './env-file.ts';
import { kinesalite } from './kinesis.ts';
import { mariadb } from './mariadb.ts';
import { launchServer, portInUse, runningPid as ourPid, startFailed, stopProcess } from './process.ts';
import { redisStack } from './redis.ts';
import { loadSecrets } from './secrets.ts';
import type { LocalServer, StackContext } from './server.ts';
import type { StackSettings } from './settings.ts';
import { serverFiles, stackSettings } from './settings.ts';

export type { StackSettings } from './settings.ts';
export { stackSettings } from './settings.ts';

/** The stack's servers, in start order (`down` stops them in reverse). */
export const SERVERS = [mariadb, redisStack, kinesalite] as const;
export type ServiceName = (typeof SERVERS)[number]['name'];
export const SERVICE_NAMES: readonly ServiceName[] = SERVERS.map((server) => server.name);

/** Settings of the stack as a whole, after every server's own. */
const STACK_WIDE_ENV = { EMBEDDING_PROVIDER: 'local', EMBEDDING_DIMENSIONS: '256' } as const;

/** Which servers (default: the stack's) and, for `up`, which env file (default: `.drugsync/stack.env`). */
export interface StackOptions {
  servers?: readonly LocalServer[];
  envFile?: string;
}

function context(s: StackSettings, log: Logger = createLogger({ service: 'stack' })): StackContext {
  return { settings: s, log, secrets: () => loadSecrets(s) };
}

function byName(svc: ServiceName): LocalServer {
  return SERVERS.find((server) => server.name === svc) as LocalServer;
}

export function logFile(s: StackSettings, svc: ServiceName): string {
  return serverFiles(s, svc).logFile;
}

function serverPid(settings: StackSettings, server: LocalServer): number | null {
  const files = serverFiles(settings, server.name);
  return ourPid(files.pidFile, server.identity(settings, files));
}

/** The pid of the stack's `svc` when it runs (its pid file names a live process of ours), else null. */
export function runningPid(s: StackSettings, svc: ServiceName): number | null {
  return serverPid(s, byName(svc));
}

/** The KEY=value settings every drugsync command uses to reach the local stack. */
export function stackEnvironment(
  settings: StackSettings = stackSettings(),
  { servers = SERVERS }: StackOptions = {},
): Record<string, string> {
  const sec = loadSecrets(settings);
  const env: Record<string, string> = {};
  for (const server of servers) Object.assign(env, server.env(settings, sec));
  return Object.assign(env, STACK_WIDE_ENV);
}

export function writeEnvFile(s: StackSettings = stackSettings(), file = DEFAULT_ENV_FILE): string {
  return saveEnvFile(file, stackEnvironment(s));
}

export interface UpResult {
  service: string;
  action: 'started' | 'already running';
  port: number;
}

async function start(ctx: StackContext, server: LocalServer): Promise<void> {
  const s = ctx.settings;
  const files = serverFiles(s, server.name);
  const ref = { name: server.name, port: server.port(s), logFile: files.logFile };
  if (await portInUse(ref.port)) {
    throw new DrugsyncError(
      'STACK_PORT_IN_USE',
      `${ref.name} cannot start: port ${ref.port} is already taken by another process`,
      {
        context: { service: ref.name, port: ref.port, log: ref.logFile },
        remedy: `stop whatever listens on ${ref.port}, or pick another port with ${server.portVariable}`,
      },
    );
  }
  ctx.log.info(`starting ${ref.name}`, { service: ref.name, port: ref.port, log: ref.logFile });
  try {
    fs.mkdirSync(files.dir, { recursive: true });
    const launch = await server.prepare(ctx, files);
    const identity = server.identity(s, files);
    await launchServer({
      ...ref,
      ...launch,
      pidFile: files.pidFile,
      identity,
      detached: true,
      cwd: PROJECT_ROOT,
    });
    await server.configure(ctx, files);
  } catch (e) {
    throw e instanceof DrugsyncError ? e : startFailed(ref, (e as Error).message, e);
  }
}

/** Starts every server that is not running. Idempotent. Throws on the first server that fails. */
export async function stackUp(
  log: Logger,
  settings: StackSettings = stackSettings(),
  { servers = SERVERS, envFile = DEFAULT_ENV_FILE }: StackOptions = {},
): Promise<UpResult[]> {
  fs.mkdirSync(settings.stateDir, { recursive: true });
  const ctx = context(settings, log);
  const results: UpResult[] = [];
  for (const server of servers) {
    const port = server.port(settings);
    if (serverPid(settings, server) !== null) {
      await server.configure(ctx, serverFiles(settings, server.name));
      results.push({ service: server.name, action: 'already running', port });
      log.info(`${server.name} already running`, { service: server.name, port });
      continue;
    }
    await start(ctx, server);
    results.push({ service: server.name, action: 'started', port });
  }
  saveEnvFile(envFile, stackEnvironment(settings, { servers }));
  return results;
}

export interface DownResult {
  service: string;
  action: 'stopped' | 'not running';
  pid: number | null;
}

/** Stops exactly the processes `up` started (their pid files, checked against their command lines). */
export async function stackDown(
  log: Logger,
  settings: StackSettings = stackSettings(),
  { servers = SERVERS }: StackOptions = {},
): Promise<DownResult[]> {
  const results: DownResult[] = [];
  for (const server of [...servers].reverse()) {
    const files = serverFiles(settings, server.name);
    const pid = serverPid(settings, server);
    if (pid !== null) {
      log.info(`stopping ${server.name}`, { service: server.name, pid });
      await stopProcess(pid, server.identity(settings, files), server.name, log);
    }
    fs.rmSync(files.pidFile, { force: true });
    results.push({ service: server.name, action: pid === null ? 'not running' : 'stopped', pid });
  }
  return results;
}

export interface ServiceStatus {
  service: string;
  port: number;
  pid: number | null;
  running: boolean;
  healthy: boolean;
  version: string | null;
  detail: string;
  log: string;
}

async function serverStatus(ctx: StackContext, server: LocalServer): Promise<ServiceStatus> {
  const s = ctx.settings;
  const files = serverFiles(s, server.name);
  const pid = serverPid(s, server);
  const base = { service: server.name, port: server.port(s), pid, running: pid !== null, log: files.logFile };
  if (pid === null) return { ...base, healthy: false, version: null, detail: 'not running' };
  try {
    return { ...base, ...(await server.health(ctx, files)) };
  } catch (e) {
    return { ...base, healthy: false, version: null, detail: `not answering: ${(e as Error).message}` };
  }
}

/** Port, pid, version and health of the stack's `svc`. */
export async function serviceStatus(s: StackSettings, svc: ServiceName): Promise<ServiceStatus> {
  return serverStatus(context(s), byName(svc));
}

export async function stackStatus(
  settings: StackSettings = stackSettings(),
  { servers = SERVERS }: StackOptions = {},
): Promise<ServiceStatus[]> {
  const ctx = context(settings);
  return Promise.all(servers.map((server) => serverStatus(ctx, server)));
}
