/**
 * The stack's orchestrator (`up` / `down` / `status` / env file) over fake local servers: small Node TCP
 * listeners behind the same LocalServer interface as MariaDB, Redis and kinesalite. No database: what is
 * checked is the lifecycle the orchestrator owns, the same for every server.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readEnvFile } from '../services/core/config.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { freePorts, portAnswers, portInUse } from '../services/stack/process.ts';
import type { LocalServer } from '../services/stack/server.ts';
import type { StackSettings } from '../services/stack/settings.ts';
import { stackDown, stackEnvironment, stackSettings, stackStatus, stackUp } from '../services/stack/stack.ts';

const LISTENER = `require('node:net').createServer().listen(Number(process.argv[1]), '127.0.0.1')`;
const log = createLogger({ service: 'stack-test' }, { level: 'error' });

interface FakeServer extends LocalServer {
  calls: string[];
}

/** A local server that is a Node listener on `port`, recording what the orchestrator asked of it. */
function fakeServer(name: string, port: number, over: Partial<LocalServer> = {}): FakeServer {
  const calls: string[] = [];
  return {
    calls,
    name,
    portVariable: `DRUGSYNC_${name.toUpperCase()}_PORT`,
    port: () => port,
    identity: (_s, f) => ({ marker: f.dir }),
    prepare: async (_ctx, f) => {
      calls.push('prepare');
      return {
        command: process.execPath,
        args: ['-e', LISTENER, String(port), f.dir],
        pidFileBy: 'launcher',
        ready: { answer: 'connection', timeoutMs: 20_000, probe: () => portAnswers(port) },
      };
    },
    configure: async () => void calls.push('configure'),
    health: async () => ({ healthy: true, version: `${name} 1.0`, detail: `${calls.length} calls` }),
    env: (_s, sec) => ({
      [`${name.toUpperCase()}_PORT`]: String(port),
      [`${name.toUpperCase()}_PASSWORD`]: sec.redisPassword,
    }),
    ...over,
  };
}

const stateDirs: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const d of stateDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function privateStack(servers: LocalServer[]): { s: StackSettings; envFile: string } {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-orchestrator-'));
  stateDirs.push(stateDir);
  const s = { ...stackSettings(), stateDir };
  cleanups.push(() => stackDown(log, s, { servers }));
  return { s, envFile: path.join(stateDir, 'stack.env') };
}

describe('stack orchestrator over fake servers', () => {
  it('starts each server once, reuses it on the next up, reports it, and stops exactly it', async () => {
    // Prepare
    const [pa, pb] = (await freePorts(2)) as [number, number];
    const servers = [fakeServer('alpha', pa), fakeServer('beta', pb)];
    const { s, envFile } = privateStack(servers);
    // Act
    const first = await stackUp(log, s, { servers, envFile });
    const second = await stackUp(log, s, { servers, envFile });
    const running = await stackStatus(s, { servers });
    const down = await stackDown(log, s, { servers });
    const stopped = await stackStatus(s, { servers });
    // Assess
    expect(first).toEqual([
      { service: 'alpha', action: 'started', port: pa },
      { service: 'beta', action: 'started', port: pb },
    ]);
    expect(second.map((r) => r.action)).toEqual(['already running', 'already running']);
    expect(servers.map((x) => x.calls)).toEqual([
      ['prepare', 'configure', 'configure'],
      ['prepare', 'configure', 'configure'],
    ]);
    expect(running.map((r) => [r.service, r.healthy, r.version, r.log])).toEqual([
      ['alpha', true, 'alpha 1.0', path.join(s.stateDir, 'logs', 'alpha.log')],
      ['beta', true, 'beta 1.0', path.join(s.stateDir, 'logs', 'beta.log')],
    ]);
    expect(down).toEqual([
      { service: 'beta', action: 'stopped', pid: running[1]?.pid },
      { service: 'alpha', action: 'stopped', pid: running[0]?.pid },
    ]);
    expect(stopped.map((r) => [r.running, r.healthy, r.detail])).toEqual([
      [false, false, 'not running'],
      [false, false, 'not running'],
    ]);
    expect([await portInUse(pa), await portInUse(pb)]).toEqual([false, false]);
    expect(fs.readdirSync(path.join(s.stateDir, 'run'))).toEqual([]);
  });

  it('writes every server’s settings, in server order, then the stack-wide ones', async () => {
    const [pa, pb] = (await freePorts(2)) as [number, number];
    const servers = [fakeServer('alpha', pa), fakeServer('beta', pb)];
    const { s, envFile } = privateStack(servers);
    await stackUp(log, s, { servers, envFile });
    const written = readEnvFile(envFile);
    expect(Object.keys(written)).toEqual([
      'ALPHA_PORT',
      'ALPHA_PASSWORD',
      'BETA_PORT',
      'BETA_PASSWORD',
      'EMBEDDING_PROVIDER',
      'EMBEDDING_DIMENSIONS',
    ]);
    expect(written).toEqual(stackEnvironment(s, { servers }));
    expect(written.ALPHA_PORT).toBe(String(pa));
  });

  it('refuses a taken port naming the server, its port variable and log, and starts nothing of it', async () => {
    // Prepare: beta's port is held by another process' listener
    const [pa, pb] = (await freePorts(2)) as [number, number];
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(pb, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const servers = [fakeServer('alpha', pa), fakeServer('beta', pb)];
    const { s, envFile } = privateStack(servers);
    // Act
    const e = await stackUp(log, s, { servers, envFile }).catch((err: unknown) => err);
    // Assess
    expect(isDrugsyncError(e, 'STACK_PORT_IN_USE')).toBe(true);
    const err = e as Error & { context: Record<string, unknown>; remedy: string };
    expect(err.message).toBe(`beta cannot start: port ${pb} is already taken by another process`);
    expect(err.context).toEqual({
      service: 'beta',
      port: pb,
      log: path.join(s.stateDir, 'logs', 'beta.log'),
    });
    expect(err.remedy).toContain('DRUGSYNC_BETA_PORT');
    expect(servers[1]?.calls).toEqual([]);
    expect(fs.existsSync(path.join(s.stateDir, 'run', 'beta.pid'))).toBe(false);
    expect(fs.existsSync(envFile)).toBe(false);
  });

  it('shows a running server that does not answer, and a failed set-up as a start failure', async () => {
    // Prepare
    const [pa, pb] = (await freePorts(2)) as [number, number];
    const mute = fakeServer('mute', pa, {
      health: async () => {
        throw new Error('connect ECONNRESET 127.0.0.1');
      },
    });
    const broken = fakeServer('broken', pb, {
      configure: async () => {
        throw new Error('Access denied for user root');
      },
    });
    const { s, envFile } = privateStack([mute, broken]);
    // Act
    await stackUp(log, s, { servers: [mute], envFile });
    const status = await stackStatus(s, { servers: [mute] });
    const e = await stackUp(log, s, { servers: [broken], envFile }).catch((err: unknown) => err);
    // Assess
    expect(status[0]).toMatchObject({
      running: true,
      healthy: false,
      detail: 'not answering: connect ECONNRESET 127.0.0.1',
    });
    expect(isDrugsyncError(e, 'STACK_START_FAILED')).toBe(true);
    expect((e as Error).message).toBe(`broken did not start on port ${pb}: Access denied for user root`);
  });

  it('leaves alone a process its stale pid file names, and removes the file', async () => {
    // Prepare: the pid file names this test's own process, whose command line does not name the server's directory
    const [pa] = (await freePorts(1)) as [number];
    const servers = [fakeServer('alpha', pa)];
    const { s } = privateStack(servers);
    const pidFile = path.join(s.stateDir, 'run', 'alpha.pid');
    fs.mkdirSync(path.dirname(pidFile), { recursive: true });
    fs.writeFileSync(pidFile, String(process.pid));
    // Act
    const status = await stackStatus(s, { servers });
    const down = await stackDown(log, s, { servers });
    // Assess
    expect(status[0]).toMatchObject({ pid: null, running: false });
    expect(down).toEqual([{ service: 'alpha', action: 'not running', pid: null }]);
    expect(fs.existsSync(pidFile)).toBe(false);
  });
});
