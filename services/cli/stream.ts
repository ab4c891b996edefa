/**
 * `drugsync stream`: runs the binlog reader and the embedder side by side (each its own process, as in
 * production, so one can die without the other), restarts a process that dies (with backoff, logged with
 * its exit), shows a live one-line status, and on Ctrl-C / SIGTERM stops both cleanly.
 *
 * `drugsync run`: the main job on the local stack, in one command: stack up, seed when the table is
 * missing or empty, backfill unless the reader already has a checkpoint (then it resumes), stream.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { RedisClient } from '../core/clients/redis.ts';
import { DrugsyncError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

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
      const child = spawn(process.execPath, [CLI, ...p.args], {
        env: { ...process.env, ...opts.env, LOG_FORMAT: 'json' },
        stdio: ['ignore', 'ignore', opts.stdio === 'inherit' ? 'inherit' : 'ignore'],
      });
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

/** The live status line, from the services' status hashes in Redis. */
export async function statusLine(
  redis: RedisClient,
  keys: Keys,
  prev: Record<string, number>,
): Promise<string> {
  const [reader, embedder, dlq] = await Promise.all([
    redis.hgetall(keys.serviceStatus('binlog-reader')),
    redis.hgetall(keys.serviceStatus('embedder')),
    redis.xlen(keys.deadLetters),
  ]);
  const now = Date.now();
  const num = (v: string | undefined) => (v === undefined || v === '' ? NaN : Number(v));
  const emb = num(embedder.embeddings_requested);
  const hits = num(embedder.cache_hits);
  const dt = (now - (prev.at ?? now)) / 1000;
  const embRate = dt > 0 && Number.isFinite(prev.emb) ? (emb - (prev.emb as number)) / dt : 0;
  prev.at = now;
  prev.emb = emb;
  const lastCommit = num(reader.last_commit_ts);
  const readerLag = Number.isFinite(lastCommit) ? `${((now - lastCommit) / 1000).toFixed(1)} s` : '?';
  const hitRate = emb + hits > 0 ? `${Math.round((hits / (emb + hits)) * 100)}%` : '—';
  const fmt = (v: string | undefined) => (v === undefined || v === '' ? '?' : v);
  return (
    `reader ${fmt(reader.events_per_sec)} ev/s, last commit ${readerLag} ago | ` +
    `embedder ${fmt(embedder.records_per_sec)} rec/s, latency p50 ${fmt(embedder.latency_p50_ms)} ms p99 ${fmt(embedder.latency_p99_ms)} ms | ` +
    `embeddings ${embRate.toFixed(1)}/s, cache hits ${hitRate} | dead letters ${dlq}`
  );
}

export function assertPositiveRate(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new DrugsyncError('CONFIG_INVALID', `--simulate-changes takes changes per second ≥ 0, got "${v}"`);
  return n;
}
