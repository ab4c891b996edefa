/**
 * The whole pipeline on the local stack for end-to-end tests: a seeded suite database, the backfill run as
 * a child process, then the binlog reader and the embedder as child processes (killable with -9), all
 * isolated by the suite's settings.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Connection } from 'mysql2/promise';
import type { Env } from '../../services/core/config.ts';
import { PROJECT_ROOT } from '../../services/core/paths.ts';
import type { Rndc14Row } from '../../services/core/rndc14.ts';
import { generateCatalogue, loadRows } from './factories.ts';
import { createSuiteDatabase, resetSuiteRedis, resetSuiteStream, suiteRedis } from './stack.ts';

export const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

export interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
  /** the last 8,000 characters of its log lines (EMF metric lines left out) */
  stderrTail(): string;
}

export function startProc(env: Env, args: string[]): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env, LOG_FORMAT: 'json', LOG_LEVEL: 'info' } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // the tail of its log: EMF metric lines (one per embedder batch) would push the log records out of it
  let err = '';
  let partial = '';
  child.stderr?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    const log = lines.filter((l) => !l.startsWith('{"_aws":'));
    if (log.length) err = (err + log.join('\n') + '\n').slice(-8000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderrTail: () => err + partial };
}

/** A CLI process with everything it printed kept. */
export interface CliProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

/** Starts the CLI with the suite's settings (then `over`), keeping its whole stdout and stderr. */
export function spawnCli(env: Env, args: string[], over: Env = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env, ...over } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/**
 * Runs a CLI command to completion without blocking this process' event loop (servers the test runs in
 * process, such as the fake Bedrock, must keep answering). The last stdout line is parsed as JSON.
 */
export async function runCli(env: Env, args: string[], timeoutMs = 300_000) {
  const p = spawnCli(env, args, { LOG_FORMAT: 'json' });
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const status = await p.exited;
  clearTimeout(timer);
  const stdout = p.stdout();
  const stderr = p.stderr().slice(-64_000);
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(last) as Record<string, unknown>;
  } catch {
    json = {}; // no JSON summary (the command failed before printing one): callers assert on status
  }
  return { status, stdout, stderr, json };
}

/** Seeds the suite database with `rows` synthetic rows and empties the suite's Redis keys and stream. */
export async function preparePipeline(
  env: Env,
  rows: number,
  seed = 1,
): Promise<{ admin: Connection; catalogue: Rndc14Row[] }> {
  const admin = await createSuiteDatabase(env);
  const catalogue = [...generateCatalogue({ rows, seed })];
  await loadRows(admin, catalogue, { schema: env.DB_NAME as string, table: 'rndc14' });
  const redis = suiteRedis(env);
  await resetSuiteRedis(env, redis);
  await redis.quit();
  await resetSuiteStream(env, 2);
  return { admin, catalogue };
}

/** The pipeline streaming as in production: the binlog reader and the embedder as child processes. */
export interface StreamingPipeline {
  admin: Connection;
  catalogue: Rndc14Row[];
  /** the backfill's `--json` summary */
  backfill: Record<string, unknown>;
  procs: { reader: Proc; embedder: Proc };
  /** kill -9 of one service, and the same command started again (it resumes from its checkpoint) */
  restart(which: 'reader' | 'embedder'): Promise<Proc>;
  /** SIGTERM to the services still running, SIGKILL after 15 s */
  stop(): Promise<void>;
}

/**
 * A seeded suite database (`rows` of catalogue `seed`), the backfill run to completion as a child process,
 * then the binlog reader and the embedder started from its snapshot: the state every streaming test starts
 * from.
 */
export async function startStreamingPipeline(
  env: Env,
  rows: number,
  seed: number,
): Promise<StreamingPipeline> {
  const { admin, catalogue } = await preparePipeline(env, rows, seed);
  const backfill = await runCli(env, ['backfill', '--json']);
  if (backfill.status !== 0 || backfill.json.completed !== true)
    throw new Error(
      `the backfill did not complete (exit ${backfill.status}): ${backfill.stderr.slice(-2000)}`,
    );
  const command = { reader: 'binlog-reader', embedder: 'embedder' } as const;
  const procs = { reader: startProc(env, [command.reader]), embedder: startProc(env, [command.embedder]) };
  return {
    admin,
    catalogue,
    backfill: backfill.json,
    procs,
    async restart(which) {
      procs[which].child.kill('SIGKILL');
      await procs[which].exited;
      procs[which] = startProc(env, [command[which]]);
      return procs[which];
    },
    stop: () => stopProcs(Object.values(procs)),
  };
}

/** SIGTERM to the processes still running, SIGKILL to those left after 15 s. */
export async function stopProcs(procs: readonly Proc[]): Promise<void> {
  const running = procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  for (const p of running) p.child.kill('SIGTERM');
  const killer = setTimeout(() => running.forEach((p) => p.child.kill('SIGKILL')), 15_000);
  await Promise.all(running.map((p) => p.exited));
  clearTimeout(killer);
}
