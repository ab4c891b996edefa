/**
 * `drugsync stream`: runs the binlog reader and the embedder side by side (each its own process, as in
 * production, so one can die without the other), restarts a process that dies (with backoff, logged with
 * its exit), shows a live one-line status, and on Ctrl-C / SIGTERM stops both cleanly.
 *
 * `drugsync run`: the main job on the local stack, in one command: stack up, seed when the table is
 * missing or empty, backfill unless the reader already has a checkpoint (then it resumes), stream.
 *
 * No orphans: children are spawned with an IPC channel, and a child whose channel closes (the supervisor
 * died, even by kill -9) stops as on SIGTERM (services/cli/main.ts). One supervisor per pipeline: a lock
 * file in the state directory names its pid, command and start time; a second `run`/`stream` beside a live
 * one fails with SUPERVISOR_RUNNING, and a stale lock (dead pid, or a pid now used by another program) is
 * taken over with a log line.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { RedisClient } from '../core/clients/redis.ts';
import { DrugsyncError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT, STATE_DIR } from '../core/paths.ts';
import { embedderProgressAt, embedderStatus } from '../core/status/embedder.ts';
import type { EmbedderStatus } from '../core/status/embedder.ts';
import { readerProgressAt, readerStatus } from '../core/status/reader.ts';
import type { ReaderStatus } from '../core/status/reader.ts';

const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

export interface Supervised {
  name: string;
  args: string[];
  child: ChildProcess | null;
  restarts: number;
  lastExit: string | null;
}

export interface Supervisor {
  procs: Supervised[];
  stop(): Promise<void>;
  done: Promise<void>;
}

/** Runs each command as a child process and restarts it when it dies, until stop(). */
export function supervise(
  commands: { name: string; args: string[] }[],
  log: Logger,
  opts: { env?: NodeJS.ProcessEnv; maxBackoffMs?: number; stdio?: 'inherit' | 'ignore' } = {},
): Supervisor {
  let stopping = false;
  const procs: Supervised[] = commands.map((c) => ({ ...c, child: null, restarts: 0, lastExit: null }));
  const runOne = async (p: Supervised) => {
    let backoff = 500;
    while (!stopping) {
      const started = Date.now();
      // the IPC channel closes when this process dies, however it dies: the child then stops by itself
      const child = spawn(process.execPath, [CLI, ...p.args], {
        env: { ...process.env, ...opts.env, LOG_FORMAT: 'json' },
        stdio: ['ignore', 'ignore', opts.stdio === 'inherit' ? 'inherit' : 'ignore', 'ipc'],
      });
      child.channel?.unref();
      p.child = child;
      const exit = await new Promise<string>((resolve) =>
        child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)),
      );
      p.child = null;
      p.lastExit = exit;
      if (stopping) return;
      if (exit === 'code 2') {
        log.error(`${p.name} exited with a configuration error; not restarting`, { process: p.name, exit });
        return;
      }
      p.restarts++;
      if (Date.now() - started > 60_000) backoff = 500;
      log.warn(`${p.name} stopped (${exit}); restarting in ${backoff} ms from its checkpoint`, {
        process: p.name,
        exit,
        restarts: p.restarts,
      });
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(opts.maxBackoffMs ?? 10_000, backoff * 2);
    }
  };
  const done = Promise.all(procs.map(runOne)).then(() => undefined);
  return {
    procs,
    done,
    async stop() {
      stopping = true;
      for (const p of procs) p.child?.kill('SIGTERM');
      const killer = setTimeout(() => {
        for (const p of procs) p.child?.kill('SIGKILL');
      }, 15_000);
      await done;
      clearTimeout(killer);
    },
  };
}

/** What the live status line shows: the reader's and the embedder's status (decoded), dead letters. */
export interface LineSources {
  reader: Partial<ReaderStatus> | null;
  embedder: Partial<EmbedderStatus> | null;
  deadLetters: number;
}

/** The live status line, from the services' status hashes in Redis (read with their schemas). */
export async function statusLine(
  redis: RedisClient,
  keys: Keys,
  prev: Record<string, number>,
): Promise<string> {
  const [reader, embedder, deadLetters] = await Promise.all([
    redis.hgetall(keys.serviceStatus('binlog-reader')),
    redis.hgetall(keys.serviceStatus('embedder')),
    redis.xlen(keys.deadLetters),
  ]);
  const sources = {
    reader: readerStatus.decode(reader)?.value ?? null,
    embedder: embedderStatus.decode(embedder)?.value ?? null,
    deadLetters,
  };
  return statusLineOf(sources, prev, Date.now());
}

/** A number with `digits` decimals, `?` when unknown. */
function shown(v: number | null | undefined, digits = 0): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '?';
}

/**
 * The line itself (pure): rates, the reader's lag and stall and the embedder's stall as the metrics define
 * them (../core/metrics.ts; aged since the services wrote them), latency, embeddings, dead letters. `prev`
 * keeps the previous embeddings count between calls.
 */
export function statusLineOf(sources: LineSources, prev: Record<string, number>, now: number): string {
  const { reader, embedder } = sources;
  const emb = embedder?.embeddings_requested ?? NaN;
  const hits = embedder?.cache_hits ?? NaN;
  const embRate = counterRate(prev.emb, emb, (now - (prev.at ?? now)) / 1000);
  prev.at = now;
  prev.emb = emb;
  const rp = reader && readerProgressAt(reader, now);
  const ep = embedder && embedderProgressAt(embedder, now);
  const hitRate = emb + hits > 0 ? `${Math.round((hits / (emb + hits)) * 100)}%` : '—';
  return (
    `reader ${shown(reader?.events_per_sec, 1)} ev/s, lag ${shown(rp?.lagSeconds, 1)} s, stall ${shown(rp?.stallSeconds, 1)} s | ` +
    `embedder ${shown(embedder?.records_per_sec)} rec/s, stall ${shown(ep?.stallSeconds, 1)} s, ` +
    `latency p50 ${shown(embedder?.latency_p50_ms)} ms p99 ${shown(embedder?.latency_p99_ms)} ms | ` +
    `embeddings ${embRate.toFixed(1)}/s, cache hits ${hitRate} | dead letters ${sources.deadLetters}`
  );
}

/**
 * Per-second rate of a counter between two readings `seconds` apart. A counter that went down belongs to a
 * process that restarted (it counts from 0 again): its new value is the delta. Never negative; 0 when either
 * reading is missing.
 */
export function counterRate(before: number | undefined, after: number, seconds: number): number {
  if (before === undefined || !Number.isFinite(before) || !Number.isFinite(after) || seconds <= 0) return 0;
  const delta = after >= before ? after - before : after;
  return Math.max(0, delta) / seconds;
}

export interface SupervisorLockInfo {
  pid: number;
  command: string;
  started_at: string;
  /** the process' start time in clock ticks since boot (/proc/<pid>/stat), to tell a reused pid apart */
  proc_start: string | null;
}

export interface SupervisorLock {
  path: string;
  release(): void;
}

/** The start time of a process (field 22 of /proc/<pid>/stat), or null where /proc cannot tell. */
function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the process a lock names is still that supervisor (alive, and not a reused pid). */
function lockHolderAlive(info: SupervisorLockInfo): boolean {
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = procStart(info.pid);
  if (now !== null && info.proc_start !== null) return now === info.proc_start;
  return fs.existsSync('/proc') ? now !== null : true;
}

function readLock(file: string): SupervisorLockInfo | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as SupervisorLockInfo;
  } catch {
    return null; // missing, or half-written by a process that died: stale
  }
}

/** The lock file of one pipeline (stream + state prefix) in the state directory. */
export function supervisorLockPath(stream: string, statePrefix: string, dir = STATE_DIR): string {
  const id = `${stream}.${statePrefix}`.replace(/[^A-Za-z0-9._-]/g, '_');
  return path.join(dir, `supervisor.${id}.lock`);
}

/**
 * Takes the pipeline's supervisor lock or throws SUPERVISOR_RUNNING naming the live holder's pid. A stale
 * lock (its pid dead or reused by another program) is taken over with a log line. Released on exit.
 */
export function acquireSupervisorLock(file: string, command: string, log: Logger): SupervisorLock {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const mine: SupervisorLockInfo = {
    pid: process.pid,
    command,
    started_at: new Date().toISOString(),
    proc_start: procStart(process.pid),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine) + '\n', { flag: 'wx', mode: 0o644 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
    }
    const held = readLock(file);
    if (held && lockHolderAlive(held)) {
      throw new DrugsyncError(
        'SUPERVISOR_RUNNING',
        `drugsync ${held.command} is already running here (pid ${held.pid}, since ${held.started_at})`,
        {
          context: { pid: held.pid, command: held.command, started_at: held.started_at, lock: file },
          remedy: `stop it first (kill -TERM ${held.pid}, or Ctrl-C where it runs); it resumes from its checkpoints`,
        },
      );
    }
    log.warn('taking over a stale supervisor lock (its process is gone)', {
      lock: file,
      stale: held ?? 'unreadable',
    });
    fs.rmSync(file, { force: true });
  }
  const release = () => {
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.once('exit', release);
  return {
    path: file,
    release() {
      process.removeListener('exit', release);
      release();
    },
  };
}

export function assertPositiveRate(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new DrugsyncError('CONFIG_INVALID', `--simulate-changes takes changes per second ≥ 0, got "${v}"`);
  return n;
}
