/**
 * The stack's process building blocks without a database: knowing our process by /proc/<pid>/cmdline, pid
 * files that name a dead or foreign process, launching a server until it answers, failing with its log when it
 * does not, and stopping it. The "server" is a small Node TCP listener whose command line names its directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isDrugsyncError } from '../services/core/errors.ts';
import type { LaunchSpec, ServerProcess } from '../services/stack/process.ts';
import {
  freePort,
  freePorts,
  isOurProcess,
  launchServer,
  matchesIdentity,
  portAnswers,
  portInUse,
  runningPid,
} from '../services/stack/process.ts';

const LISTENER = `require('node:net').createServer().listen(Number(process.argv[1]), '127.0.0.1')`;
const EXITS = `console.error('fatal: cannot open the data directory ' + process.argv[2]); process.exit(3)`;

const started: ServerProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function spec(script: string, over: Partial<LaunchSpec> = {}): Promise<LaunchSpec> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-proc-'));
  dirs.push(dir);
  const port = await freePort();
  return {
    name: 'listener',
    port,
    logFile: path.join(dir, 'logs', 'listener.log'),
    pidFile: path.join(dir, 'run', 'listener.pid'),
    pidFileBy: 'launcher',
    command: process.execPath,
    args: ['-e', script, String(port), dir],
    identity: { marker: dir },
    ready: { answer: 'connection', timeoutMs: 20_000, probe: () => portAnswers(port) },
    detached: false,
    ...over,
  };
}

describe('matchesIdentity', () => {
  const redis = {
    marker: '/srv/.drugsync/redis',
    retitled: { exe: 'redis-server', title: '127.0.0.1:16379' },
  };
  const exe = (p: string) => () => p;

  it('knows a process by the data directory its command line names', () => {
    const cmdline = '/usr/sbin/mariadbd --no-defaults --datadir=/srv/.drugsync/mariadb/data --port=13306 ';
    expect(matchesIdentity(cmdline, exe('/usr/sbin/mariadbd'), { marker: '/srv/.drugsync/mariadb' })).toBe(
      true,
    );
    expect(matchesIdentity(cmdline, exe('/usr/sbin/mariadbd'), { marker: '/tmp/other/mariadb' })).toBe(false);
  });

  it('knows a retitled redis-server by its binary and the port in its title', () => {
    const title = '/srv/.drugsync/tools/redis-stack/bin/redis-server 127.0.0.1:16379            ';
    expect(matchesIdentity(title, exe('/srv/.drugsync/tools/redis-stack/bin/redis-server'), redis)).toBe(
      true,
    );
    expect(matchesIdentity(title.replace('16379', '16380'), exe('/x/redis-server'), redis)).toBe(false);
    expect(matchesIdentity(title, exe('/usr/bin/node'), redis)).toBe(false);
  });

  it('takes an empty command line (a zombie) for not ours', () => {
    expect(matchesIdentity('', exe('/usr/sbin/mariadbd'), { marker: '' })).toBe(false);
  });
});

describe('runningPid', () => {
  it('is null for a missing, garbled or foreign pid file', () => {
    // Prepare
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-pid-'));
    dirs.push(dir);
    const file = path.join(dir, 'server.pid');
    const id = { marker: dir };
    // Act
    const missing = runningPid(file, id);
    fs.writeFileSync(file, 'not a pid\n');
    const garbled = runningPid(file, id);
    fs.writeFileSync(file, String(process.pid)); // alive, but its command line does not name `dir`
    const foreign = runningPid(file, id);
    // Assess
    expect([missing, garbled, foreign]).toEqual([null, null, null]);
  });
});

describe('freePorts', () => {
  it('hands out distinct ports nothing listens on', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
    for (const port of ports) expect(await portInUse(port)).toBe(false);
  });
});

describe('launchServer', () => {
  it('starts a server, knows it by its pid file and stops exactly it', async () => {
    // Prepare
    const s = await spec(LISTENER);
    // Act
    const server = await launchServer(s);
    const pidInFile = runningPid(s.pidFile, s.identity);
    const listening = await portInUse(s.port);
    await server.stop();
    // Assess
    expect(pidInFile).toBe(server.pid);
    expect(listening).toBe(true);
    expect(isOurProcess(server.pid, s.identity)).toBe(false);
    expect(await portInUse(s.port)).toBe(false);
  });

  it('leaves the pid file to a server that writes its own', async () => {
    const s = await spec(LISTENER, { pidFileBy: 'server' });
    const server = await launchServer(s);
    started.push(server);
    expect(fs.existsSync(s.pidFile)).toBe(false);
    expect(fs.existsSync(path.dirname(s.pidFile))).toBe(true);
  });

  it('fails naming the server, its port and its log, with the log lines, when it exits before answering', async () => {
    // Prepare
    const s = await spec(EXITS);
    // Act
    const e = await launchServer(s).catch((err: unknown) => err);
    // Assess
    expect(isDrugsyncError(e, 'STACK_START_FAILED')).toBe(true);
    const err = e as Error & { context: Record<string, unknown>; remedy: string };
    expect(err.message).toMatch(
      new RegExp(`^listener did not start on port ${s.port}: the process \\(pid \\d+\\) exited`),
    );
    expect(err.context).toMatchObject({ service: 'listener', port: s.port, log: s.logFile });
    expect(err.remedy).toContain(`fatal: cannot open the data directory ${s.args[3]}`);
  });

  it('stops a test server that never becomes ready', async () => {
    // Prepare: it listens, but the probe waits for an answer it never gets
    const s = await spec(LISTENER, { ready: { answer: 'PONG', timeoutMs: 1000, probe: async () => false } });
    // Act
    const e = await launchServer(s).catch((err: unknown) => err);
    const pid = Number(fs.readFileSync(s.pidFile, 'utf8'));
    // Assess
    expect((e as Error).message).toBe(`listener did not start on port ${s.port}: no PONG within 1 s`);
    expect(isOurProcess(pid, s.identity)).toBe(false);
  });
});
