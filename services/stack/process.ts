/**
 * The processes of the servers we start, for the stack and for tests that start a server of their own on
 * their own port: spawn one with its output appended to its log, wait until it answers, know it again by
 * `/proc/<pid>/cmdline` (a pid file alone may name a process that has since died and been replaced), stop it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

/** How `/proc` shows a server we started. */
export interface ProcessIdentity {
  /** a path its command line names (its data directory) */
  marker: string;
  /**
   * For a server that rewrites its command line (redis-server shows "<binary> 127.0.0.1:<port>"): the file name
   * of its executable and a text its new title keeps.
   */
  retitled?: { exe: string; title: string };
}

/** Whether a process with this command line (NULs as spaces) and executable is ours. An empty one is a zombie. */
export function matchesIdentity(cmdline: string, exe: () => string, id: ProcessIdentity): boolean {
  if (cmdline.trim() === '') return false;
  if (cmdline.includes(id.marker)) return true;
  if (!id.retitled) return false;
  return cmdline.includes(id.retitled.title) && path.basename(exe()) === id.retitled.exe;
}

/** True when `pid` is alive and is our process. */
export function isOurProcess(pid: number, id: ProcessIdentity): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return matchesIdentity(cmdline, () => fs.readlinkSync(`/proc/${pid}/exe`), id);
  } catch {
    return false; // the process is gone, or not ours to inspect
  }
}

export function readPidFile(file: string): number | null {
  if (!fs.existsSync(file)) return null;
  const pid = Number(fs.readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** The pid in `pidFile` when that process is alive and ours, else null. */
export function runningPid(pidFile: string, id: ProcessIdentity): number | null {
  const pid = readPidFile(pidFile);
  return pid !== null && isOurProcess(pid, id) ? pid : null;
}

/** True when something already listens on 127.0.0.1:`port` (we cannot bind it). */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(true));
    srv.once('listening', () => srv.close(() => resolve(false)));
    srv.listen(port, '127.0.0.1');
  });
}

/**
 * `n` distinct ports free on 127.0.0.1 when asked, as the kernel hands them out (listen on port 0, all held until
 * each is known, then closed): for a server started on a port of its own beside other stacks. Another process
 * may still take one before the server binds it: a launch that fails on it can retry on a new one.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0] as number;
}

/** True when a TCP connection to 127.0.0.1:`port` is accepted. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

/** Polls `what` every 200 ms until it is true (→ true), `alive` turns false or the time is up (→ false). */
export async function waitUntil(
  what: () => Promise<boolean>,
  timeoutMs: number,
  alive?: () => boolean,
): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await what().catch(() => false)) return true;
    if (alive && !alive()) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

export function logTail(file: string, lines = 15): string {
  if (!fs.existsSync(file)) return '(no log yet)';
  return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** A server as its errors name it. */
export interface ServerRef {
  name: string;
  port: number;
  logFile: string;
}

export function startFailed(server: ServerRef, why: string, cause?: unknown): DrugsyncError {
  const { name, port, logFile } = server;
  return new DrugsyncError('STACK_START_FAILED', `${name} did not start on port ${port}: ${why}`, {
    context: { service: name, port, log: logFile },
    remedy: `read ${logFile}; last lines:\n${logTail(logFile)}`,
    cause,
  });
}

/** When a started server is ready: `probe` true within `timeoutMs` ("no <answer> within N s" otherwise). */
export interface Readiness {
  answer: string;
  timeoutMs: number;
  probe(): Promise<boolean>;
}

export interface LaunchSpec extends ServerRef {
  command: string;
  args: string[];
  pidFile: string;
  /** 'server': it writes `pidFile` itself (mariadbd --pid-file); 'launcher': written here with the child's pid */
  pidFileBy: 'server' | 'launcher';
  identity: ProcessIdentity;
  ready: Readiness;
  /**
   * true: it outlives this process (the stack's servers, stopped by `stack down`); false: a test's server, in
   * this process' group, stopped again when it does not become ready.
   */
  detached: boolean;
  cwd?: string;
}

/** A server this process launched. */
export interface ServerProcess extends ServerRef {
  pid: number;
  /** SIGTERM, then SIGKILL when it is still ours 30 s later; resolves once it is gone. */
  stop(log?: Logger): Promise<void>;
}

function spawnServer(spec: LaunchSpec): number {
  fs.mkdirSync(path.dirname(spec.logFile), { recursive: true });
  fs.mkdirSync(path.dirname(spec.pidFile), { recursive: true });
  const out = fs.openSync(spec.logFile, 'a');
  const child = spawn(spec.command, spec.args, {
    detached: spec.detached,
    stdio: ['ignore', out, out],
    cwd: spec.cwd,
  });
  fs.closeSync(out);
  child.once('error', () => undefined); // a failed spawn leaves no pid: reported just below
  if (spec.detached) child.unref();
  if (child.pid === undefined) throw startFailed(spec, `could not spawn ${spec.command}`);
  if (spec.pidFileBy === 'launcher') fs.writeFileSync(spec.pidFile, String(child.pid));
  return child.pid;
}

/** Spawns the server and waits until it is ready; STACK_START_FAILED (with its log's last lines) otherwise. */
export async function launchServer(spec: LaunchSpec): Promise<ServerProcess> {
  const pid = spawnServer(spec);
  const server: ServerProcess = {
    name: spec.name,
    port: spec.port,
    logFile: spec.logFile,
    pid,
    stop: (log) => stopProcess(pid, spec.identity, spec.name, log),
  };
  const alive = () => isOurProcess(pid, spec.identity);
  if (await waitUntil(spec.ready.probe, spec.ready.timeoutMs, alive)) return server;
  const why = alive()
    ? `no ${spec.ready.answer} within ${spec.ready.timeoutMs / 1000} s`
    : `the process (pid ${pid}) exited before it answered`;
  if (!spec.detached) await server.stop();
  throw startFailed(spec, why);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: it is gone already
  }
}

/** Stops our process `pid`: SIGTERM, SIGKILL if it is still ours after 30 s; resolves once it is gone. */
export async function stopProcess(
  pid: number,
  id: ProcessIdentity,
  name: string,
  log?: Logger,
): Promise<void> {
  const gone = async () => !isOurProcess(pid, id);
  if (await gone()) return;
  signal(pid, 'SIGTERM');
  if (await waitUntil(gone, 30_000)) return;
  log?.warn(`${name} did not stop after SIGTERM within 30 s; sending SIGKILL`, { service: name, pid });
  signal(pid, 'SIGKILL');
  await waitUntil(gone, 10_000);
}
