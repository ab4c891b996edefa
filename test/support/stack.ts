/**
 * Test access to the shared local stack (started once by test/global-setup.ts via `drugsync stack up`).
 * Every integration suite isolates itself with `suiteEnv(name)`: its own MySQL database, Redis index,
 * document and state prefixes, Kinesis stream, and small vectors.
 */
import mysql from 'mysql2/promise';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
} from '@aws-sdk/client-kinesis';
import type { Env } from '../../services/core/config.ts';
import { readEnvFile } from '../../services/core/config.ts';
import { makeKeys } from '../../services/core/keys.ts';
import type { Keys } from '../../services/core/keys.ts';
import { DEFAULT_ENV_FILE } from '../../services/core/paths.ts';
import { createRedis } from '../../services/core/clients/redis.ts';
import type { RedisClient } from '../../services/core/clients/redis.ts';
import { createKinesis } from '../../services/core/clients/kinesis.ts';
import { createTableSql } from '../../services/core/rndc14.ts';
import { quoteIdent } from '../../services/core/sql.ts';

/** The stack file written by `drugsync stack up` (throws with the remedy when absent). */
export function stackEnv(): Env {
  const env = readEnvFile(process.env.DRUGSYNC_ENV_FILE ?? DEFAULT_ENV_FILE);
  if (!env.DB_PORT || !env.REDIS_PORT || !env.KINESIS_ENDPOINT) {
    throw new Error(`local stack settings not found in ${DEFAULT_ENV_FILE}: run \`npx drugsync stack up\``);
  }
  return env;
}

export interface SuiteOptions {
  dimensions?: number;
}

/**
 * Settings for one suite. Pass the result to decodeConfig(shape, env) or to a child process' env
 * (with DRUGSYNC_NO_ENV_FILE=1 so only these apply).
 */
export function suiteEnv(suite: string, over: Env = {}, opts: SuiteOptions = {}): Env {
  const id = suite.toLowerCase().replace(/[^a-z0-9]/g, '_');
  return {
    ...stackEnv(),
    DB_NAME: `fdb_${id}`,
    REDIS_INDEX: `${id}_idx`,
    REDIS_DOC_PREFIX: `t_${id}:drug:`,
    REDIS_STATE_PREFIX: `t_${id}:ds:`,
    KINESIS_STREAM: `t-${id.replace(/_/g, '-')}`,
    EMBEDDING_PROVIDER: 'local',
    EMBEDDING_DIMENSIONS: String(opts.dimensions ?? 32),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    DRUGSYNC_NO_ENV_FILE: '1',
    ...over,
  };
}

/** The Redis keys of a suite (or of any settings naming the index and both prefixes). */
export function suiteKeys(env: Env): Keys {
  const { REDIS_INDEX, REDIS_DOC_PREFIX, REDIS_STATE_PREFIX } = env;
  if (REDIS_INDEX === undefined || REDIS_DOC_PREFIX === undefined || REDIS_STATE_PREFIX === undefined)
    throw new Error('suiteKeys: the settings name no REDIS_INDEX, REDIS_DOC_PREFIX or REDIS_STATE_PREFIX');
  return makeKeys({ REDIS_INDEX, REDIS_DOC_PREFIX, REDIS_STATE_PREFIX });
}

/** An admin connection (root) to the stack's MariaDB (or the server `env` names), optionally on one database. */
export async function adminConnection(
  env: Env,
  database?: string,
  extra: ConnectionOptions = {},
): Promise<Connection> {
  return mysql.createConnection({
    host: env.DB_HOST,
    port: Number(env.DB_PORT),
    user: env.DB_ADMIN_USER,
    password: env.DB_ADMIN_PASSWORD,
    database,
    dateStrings: true,
    supportBigNumbers: true,
    charset: 'utf8mb4_general_ci',
    multipleStatements: true,
    flags: ['+LOCAL_FILES'],
    infileStreamFactory: undefined,
    ...extra,
  });
}

/**
 * (Re)creates the suite's database with an empty rndc14 table and grants the replication user SELECT and
 * LOCK TABLES on it (the services never run as admin; LOCK TABLES is what the table-lock snapshot method
 * needs, services/core/snapshot.ts). Returns an admin connection on that database.
 */
export async function createSuiteDatabase(env: Env): Promise<Connection> {
  const db = env.DB_NAME as string;
  const admin = await adminConnection(env);
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)}`);
  await admin.query(`CREATE DATABASE ${quoteIdent(db)} CHARACTER SET utf8mb4`);
  await admin.query(createTableSql(db, env.DB_TABLE ?? 'rndc14'));
  await admin.query(`GRANT SELECT, LOCK TABLES ON ${quoteIdent(db)}.* TO ?@'%'`, [env.DB_USER]);
  await admin.changeUser({ database: db });
  return admin;
}

export function suiteRedis(env: Env): RedisClient {
  return createRedis({
    REDIS_HOST: env.REDIS_HOST ?? '127.0.0.1',
    REDIS_PORT: Number(env.REDIS_PORT),
    REDIS_PASSWORD: env.REDIS_PASSWORD,
    REDIS_TLS: false,
  });
}

/** Deletes every key of the suite (documents and state) and its index. */
export async function resetSuiteRedis(env: Env, redis: RedisClient): Promise<void> {
  try {
    await redis.call('FT.DROPINDEX', env.REDIS_INDEX as string);
  } catch (e) {
    if (!/unknown index name|no such index/i.test((e as Error).message)) throw e;
  }
  for (const prefix of [env.REDIS_DOC_PREFIX, env.REDIS_STATE_PREFIX]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  }
}

/** (Re)creates the suite's Kinesis stream with `shards` shards and waits until it is ACTIVE. */
export async function resetSuiteStream(env: Env, shards = 2): Promise<void> {
  const kinesis = createKinesis({
    KINESIS_ENDPOINT: env.KINESIS_ENDPOINT,
    AWS_REGION: env.AWS_REGION ?? 'us-east-1',
  });
  const StreamName = env.KINESIS_STREAM as string;
  try {
    await kinesis.send(new DeleteStreamCommand({ StreamName }));
  } catch (e) {
    if ((e as Error).name !== 'ResourceNotFoundException') throw e;
  }
  for (let i = 0; i < 100; i++) {
    try {
      await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: shards }));
      break;
    } catch (e) {
      if ((e as Error).name !== 'ResourceInUseException') throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (let i = 0; i < 200; i++) {
    const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName }));
    if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  kinesis.destroy();
}

/** Empties the suite's part of the stack: its Redis keys and index deleted, its stream (re)created with `shards`. */
export async function resetSuite(env: Env, redis: RedisClient, shards = 2): Promise<void> {
  await resetSuiteRedis(env, redis);
  await resetSuiteStream(env, shards);
}

/**
 * How most integration suites start: the suite's database (fresh, with its table; `admin` is connected to
 * it), a Redis client, and the suite's Redis keys and stream emptied (resetSuite). The caller closes both.
 */
export async function openSuite(env: Env, shards = 2): Promise<{ admin: Connection; redis: RedisClient }> {
  const admin = await createSuiteDatabase(env);
  const redis = suiteRedis(env);
  await resetSuite(env, redis, shards);
  return { admin, redis };
}

/** Deletes the suite's Kinesis stream (benchmarks clean up after themselves). */
export async function deleteSuiteStream(env: Env): Promise<void> {
  const kinesis = createKinesis({
    KINESIS_ENDPOINT: env.KINESIS_ENDPOINT,
    AWS_REGION: env.AWS_REGION ?? 'us-east-1',
  });
  try {
    await kinesis.send(new DeleteStreamCommand({ StreamName: env.KINESIS_STREAM as string }));
  } catch (e) {
    if ((e as Error).name !== 'ResourceNotFoundException') throw e;
  } finally {
    kinesis.destroy();
  }
}

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs` with the last state). */
export async function eventually<T>(
  check: () => Promise<T | false | null | undefined>,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until)
      throw new Error(
        `timed out waiting for ${what}; last: ${last instanceof Error ? last.message : String(last)}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}
