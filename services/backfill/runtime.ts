/**
 * The backfill's dependencies built from configuration: used by `drugsync backfill`, the benchmark and the
 * later one-command job. `openBackfillRuntime(env)` decodes the configuration once (every problem at once),
 * connects MySQL and Redis, and returns `runBackfill` / `retryFailed` bound to them plus `close()`.
 */
import path from 'node:path';
import { createMysqlPool, mysqlCredentials } from '../core/clients/mysql.ts';
import { openRedis, waitForRedis } from '../core/clients/redis.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import {
  configFields,
  decodeConfig,
  embeddingShape,
  generalShape,
  mysqlShape,
  redisShape,
} from '../core/config.ts';
import type { Decoded, Env } from '../core/config.ts';
import { createEmbeddingService } from '../core/embedding/service.ts';
import { makeKeys } from '../core/keys.ts';
import { createLogger } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import { STATE_DIR } from '../core/paths.ts';
import { createRedisDrugStore } from '../core/redis/drug-store.ts';
import { runBackfill } from './backfill.ts';
import type { BackfillDeps, BackfillOptions, BackfillSummary } from './backfill.ts';
import { retryFailed } from './retry.ts';
import type { RetrySummary } from './retry.ts';

export const backfillShape = {
  ...mysqlShape,
  ...redisShape,
  ...embeddingShape,
  ...generalShape,
  AWS_REGION: configFields.str('us-east-1'),
  /** local directory of the spool files (one sub-directory per part) */
  BACKFILL_SPOOL_DIR: configFields.str(path.join(STATE_DIR, 'backfill')),
  /** spool rows per window: a window's distinct texts are embedded together, its state saved after it */
  BACKFILL_WINDOW_ROWS: configFields.int(5_000, 1, 1_000_000),
  /** Redis pipelines (BATCH_SIZE documents each) in flight at once */
  BACKFILL_WRITE_CONCURRENCY: configFields.int(2, 1, 64),
  /** replaced by SNAPSHOT_METHOD (one setting for backfill, verify and re-sync): refused, never ignored */
  BACKFILL_SNAPSHOT_METHOD: configFields.optStr().refine((v) => v === undefined, {
    message: 'was renamed: set SNAPSHOT_METHOD instead (auto | binlog-snapshot | table-lock)',
  }),
};

export type BackfillConfig = Decoded<typeof backfillShape>;

export interface BackfillRuntime {
  config: BackfillConfig;
  deps: BackfillDeps;
  /** runs the backfill with the configured settings; `over` adds the command-line options */
  run(over?: Partial<BackfillOptions>): Promise<BackfillSummary>;
  retryFailed(): Promise<RetrySummary>;
  close(): Promise<void>;
}

/** Options of runBackfill as the configuration sets them. */
export function backfillOptions(cfg: BackfillConfig): BackfillOptions {
  return {
    maxDrugs: cfg.MAX_DRUGS,
    windowRows: cfg.BACKFILL_WINDOW_ROWS,
    batchSize: cfg.BATCH_SIZE,
    writeConcurrency: cfg.BACKFILL_WRITE_CONCURRENCY,
    snapshotMethod: cfg.SNAPSHOT_METHOD,
    spoolDir: cfg.BACKFILL_SPOOL_DIR,
    schema: cfg.DB_NAME,
    table: cfg.DB_TABLE,
  };
}

export async function openBackfillRuntime(env?: Env, log?: Logger): Promise<BackfillRuntime> {
  const config = env ? decodeConfig(backfillShape, env) : decodeConfig(backfillShape);
  const logger = log ?? createLogger({ service: 'backfill' });
  // both logins follow a rotation of their secrets (core/clients/credentials.ts)
  const mysql = createMysqlPool(config, mysqlCredentials(config, { region: config.AWS_REGION, log: logger }));
  let redis: RedisClient | null = null;
  let deps: BackfillDeps;
  try {
    redis = await openRedis(config, {}, { log: logger });
    await waitForRedis(redis);
    const keys = makeKeys(config);
    deps = {
      mysql,
      redis,
      keys,
      log: logger,
      store: createRedisDrugStore(redis, keys, config, { log: logger }),
      embeddings: createEmbeddingService(config, redis, keys, { logger }),
    };
  } catch (e) {
    // a failed start (Redis, or an embedder that cannot be built) closes what it opened, or the command
    // would log its error and never exit
    await mysql.end();
    redis?.disconnect();
    throw e;
  }
  return {
    config,
    deps,
    run: (over = {}) => runBackfill(deps, { ...backfillOptions(config), ...over }),
    retryFailed: () => retryFailed(deps),
    close: async () => {
      await mysql.end();
      deps.redis.disconnect();
    },
  };
}
