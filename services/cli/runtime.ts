/**
 * What the operator commands (verify, status, search, stream) share: configuration decoded once, clients,
 * keys, store and embedding service.
 */
import { configFields, decodeConfig, sharedShape } from '../core/config.ts';
import type { Decoded } from '../core/config.ts';
import { createMysqlPool, mysqlCredentials } from '../core/clients/mysql.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import { openRedis, waitForRedis } from '../core/clients/redis.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { createKinesis } from '../core/clients/kinesis.ts';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { makeKeys } from '../core/keys.ts';
import type { Keys } from '../core/keys.ts';
import { createLogger } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import { createRedisDrugStore } from '../core/redis/drug-store.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import { createEmbeddingService } from '../core/embedding/service.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';

export const opsShape = {
  ...sharedShape,
  /** `drugsync status` warns when less binlog retention than this is left for the reader's checkpoint. */
  RETENTION_WARN_SECONDS: configFields.int(6 * 3600, 0),
};

export type OpsConfig = Decoded<typeof opsShape>;

export interface OpsRuntime {
  config: OpsConfig;
  mysql: MysqlPool;
  redis: RedisClient;
  kinesis: KinesisClient;
  keys: Keys;
  store: RedisDrugStore;
  embeddings: EmbeddingService;
  log: Logger;
  close(): Promise<void>;
}

export async function opsRuntime(service: string): Promise<OpsRuntime> {
  const config = decodeConfig(opsShape);
  const log = createLogger({ service });
  // the Redis secret is read before anything is opened: its failure leaves nothing to close
  const redis = await openRedis(config, {}, { log });
  const mysql = createMysqlPool(config, mysqlCredentials(config, { region: config.AWS_REGION, log }));
  const kinesis = createKinesis(config);
  const close = async () => {
    await mysql.end();
    redis.disconnect();
    kinesis.destroy();
  };
  try {
    await waitForRedis(redis);
    const keys = makeKeys(config);
    const store = createRedisDrugStore(redis, keys, config, { log });
    const embeddings = createEmbeddingService(config, redis, keys, { logger: log });
    return { config, mysql, redis, kinesis, keys, store, embeddings, log, close };
  } catch (e) {
    // a failed start closes what it opened, or the command would report its error and never exit
    await close();
    throw e;
  }
}
