/**
 * `drugsync status`, the first step: read where every part of the pipeline stands from the sources of truth
 * — MySQL (binlog position, retention, eligible rows), Kinesis (latest sequence per shard) and Redis
 * (checkpoints, documents, cache, dead letters, each service's status hash) — as they are, into
 * `StatusSources`. status-model.ts makes the report of them; status-view.ts draws it.
 */
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { errorMessage } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import { isOpenShard, listAllShards } from '../core/kinesis-shards.ts';
import { describeErrorMasked } from '../core/log.ts';
import { binlogSequence, deserializePosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { describeServer, readVectorIndex } from '../core/redis/index.ts';
import { quoteTable } from '../core/sql.ts';
import { isAtOrBefore, iteratorAfter } from '../core/stream-record.ts';
import { readCheckpoints } from '../embedder/shard-checkpoints.ts';
import { streamRecordsOf } from '../embedder/shard-reader.ts';
import { createRedisTableState } from '../embedder/table-state.ts';
import type { OpsRuntime } from './runtime.ts';
import { STATUS_SERVICES } from './status-model.ts';
import type { BinlogSources, ShardStatus, StatusSources, VectorIndexStatus } from './status-model.ts';

export interface StatusDeps {
  mysql: MysqlPool;
  redis: RedisClient;
  kinesis: KinesisClient;
  keys: Keys;
  stream: string;
  table: { schema: string; table: string };
  embedding: { model: string; dimensions: number };
  eligibleCount: () => Promise<number>;
  retentionWarnSeconds: number;
  /** the clock (tests inject one); Date.now by default */
  now?: () => number;
}

/** GetRecords calls of 1,000 records per shard when counting its lag: a bounded look. */
const SHARD_LAG_PAGES = 10;
const SHARD_LAG_PAGE_RECORDS = 1000;

// ---------------------------------------------------------------- binlog

/** Bytes from `from` to the server's position, summed over the binary logs still on the server. */
export function binlogBytesBehind(
  from: BinlogPosition,
  server: BinlogPosition,
  logs: readonly { Log_name: string; File_size: number | string }[],
): number {
  const seq = binlogSequence(from.file);
  let behind = 0;
  for (const l of logs) {
    const s = binlogSequence(l.Log_name);
    if (s < seq) continue;
    const size = l.Log_name === server.file ? server.pos : Number(l.File_size);
    behind += s === seq ? Math.max(0, size - from.pos) : size;
  }
  return behind;
}

/** binlog_expire_logs_seconds, or Aurora's 'binlog retention hours'; null when unlimited or unreadable. */
async function binlogRetentionSeconds(mysql: MysqlPool, warnings: string[]): Promise<number | null> {
  try {
    const v = (await mysql.query<Record<string, unknown>>('SELECT @@binlog_expire_logs_seconds AS s'))[0];
    return v && Number(v.s) > 0 ? Number(v.s) : null;
  } catch {
    // Aurora MySQL: retention is an RDS setting, not a server variable.
    try {
      const rows = await mysql.query<{ name: string; value: string }>('CALL mysql.rds_show_configuration');
      const hours = rows.find((r) => r.name === 'binlog retention hours')?.value;
      return hours && hours !== 'NULL' ? Number(hours) * 3600 : null;
    } catch (e) {
      warnings.push(`binlog retention unreadable: ${errorMessage(e)}`);
      return null;
    }
  }
}

async function readPosition(redis: RedisClient, key: string): Promise<BinlogPosition | null> {
  const text = await redis.get(key);
  return text ? deserializePosition(text) : null;
}

async function binlogSources(deps: StatusDeps): Promise<BinlogSources> {
  const warnings: string[] = [];
  const checkpoint = await readPosition(deps.redis, deps.keys.readerCheckpoint);
  const snapshot = await readPosition(deps.redis, deps.keys.backfillSnapshot);
  const master = (await deps.mysql.query<Record<string, unknown>>('SHOW MASTER STATUS'))[0];
  const server = master ? { file: String(master.File), pos: Number(master.Position) } : null;
  const logs = await deps.mysql.query<{ Log_name: string; File_size: number | string }>('SHOW BINARY LOGS');
  let behindBytes: number | null = null;
  let checkpointFilePresent: boolean | null = null;
  const from = checkpoint ?? snapshot;
  if (from && server) {
    checkpointFilePresent = logs.some((l) => l.Log_name === from.file);
    if (!checkpointFilePresent) {
      warnings.push(`binlog ${from.file} at the reader's start position is purged: re-run the backfill`);
    }
    behindBytes = binlogBytesBehind(from, server, logs);
  }
  const retentionSeconds = await binlogRetentionSeconds(deps.mysql, warnings);
  return { checkpoint, snapshot, server, behindBytes, retentionSeconds, checkpointFilePresent, warnings };
}

// ---------------------------------------------------------------- kinesis

/** Counts the events after the checkpoint (from the start without one), up to a bound. */
async function shardLag(deps: StatusDeps, shardId: string, checkpoint: string | null): Promise<ShardStatus> {
  const it = await deps.kinesis.send(
    new GetShardIteratorCommand({
      StreamName: deps.stream,
      ShardId: shardId,
      ...(checkpoint ? iteratorAfter(checkpoint) : { ShardIteratorType: 'TRIM_HORIZON' }),
    }),
  );
  let iterator = it.ShardIterator;
  let lag = 0;
  let latest: string | null = checkpoint;
  let pages = 0;
  for (; pages < SHARD_LAG_PAGES && iterator; pages++) {
    const r = await deps.kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: SHARD_LAG_PAGE_RECORDS }),
    );
    // events, not records: an aggregate holds many (those at or before the checkpoint are applied)
    const events = (r.Records ?? [])
      .flatMap((rec) => streamRecordsOf(rec, shardId))
      .filter((e) => !checkpoint || !isAtOrBefore(e.sequenceNumber, checkpoint));
    lag += events.length;
    const last = events[events.length - 1];
    if (last) latest = last.sequenceNumber;
    if (!r.Records?.length || (r.MillisBehindLatest ?? 0) === 0) break;
    iterator = r.NextShardIterator;
  }
  return { shardId, open: true, checkpoint, latest, lagRecords: lag, lagBounded: pages === SHARD_LAG_PAGES };
}

async function kinesisSources(deps: StatusDeps): Promise<StatusSources['kinesis']> {
  try {
    const shards = await listAllShards(deps.kinesis, deps.stream);
    const checkpoints = await readCheckpoints(deps.redis, deps.keys.shardCheckpoints(deps.stream));
    const out: ShardStatus[] = [];
    for (const sh of shards) {
      const id = sh.ShardId as string;
      const lag = await shardLag(deps, id, checkpoints[id] ?? null);
      out.push({ ...lag, open: isOpenShard(sh) });
    }
    return { stream: deps.stream, shards: out };
  } catch (e) {
    return { stream: deps.stream, shards: [], error: describeErrorMasked(e) };
  }
}

// ---------------------------------------------------------------- redis

async function countKeys(redis: RedisClient, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

/** The index's num_docs; the documents' keys counted when there is no index yet. */
async function documentCount(deps: StatusDeps): Promise<number | null> {
  try {
    const info = (await deps.redis.call('FT.INFO', deps.keys.index)) as unknown[];
    const i = info.indexOf('num_docs');
    return i >= 0 ? Number(info[i + 1]) : null;
  } catch {
    return countKeys(deps.redis, `${deps.keys.docPrefix}*`); // no index yet: count the keys
  }
}

async function vectorIndexStatus(deps: StatusDeps): Promise<VectorIndexStatus | null> {
  try {
    const state = await readVectorIndex(deps.redis, deps.keys);
    return state && { ...state, server: (await describeServer(deps.redis)).summary };
  } catch (e) {
    const empty = { asked: null, built: null, substitutions: [], server: null };
    return { index: deps.keys.index, ...empty, error: describeErrorMasked(e) };
  }
}

async function redisSources(deps: StatusDeps): Promise<StatusSources['redis']> {
  return {
    documents: await documentCount(deps),
    eligibleRows: await deps.eligibleCount(),
    embeddingCache: await countKeys(
      deps.redis,
      `${deps.keys.embeddingPrefix(deps.embedding.model, deps.embedding.dimensions)}*`,
    ),
    deadLetters: await deps.redis.xlen(deps.keys.deadLetters),
    vectorIndex: await vectorIndexStatus(deps),
  };
}

/** Each service's status hash as written (decoded by status-model.ts with the schemas of core/status/). */
async function serviceHashes(deps: StatusDeps): Promise<StatusSources['services']> {
  const services: Record<string, Record<string, string>> = {};
  for (const svc of STATUS_SERVICES) {
    const h = await deps.redis.hgetall(deps.keys.serviceStatus(svc));
    if (Object.keys(h).length) services[svc] = h;
  }
  return services;
}

async function tableSources(deps: StatusDeps): Promise<StatusSources['table']> {
  const tables = await createRedisTableState(deps.redis, deps.keys).read();
  return {
    truncatePending: tables.truncate?.pos ?? null,
    resyncsPending: tables.resyncs.map((x) => ({ pos: x.pos, statement: x.statement })),
    resync: await deps.redis.hgetall(deps.keys.resyncStatus),
  };
}

/** Everything `drugsync status` reads, at one moment. */
export async function gatherStatus(deps: StatusDeps): Promise<StatusSources> {
  const collectedAt = (deps.now ?? Date.now)();
  const [binlog, kinesis] = await Promise.all([binlogSources(deps), kinesisSources(deps)]);
  return {
    collectedAt,
    binlog,
    kinesis,
    table: await tableSources(deps),
    redis: await redisSources(deps),
    services: await serviceHashes(deps),
  };
}

/** What `drugsync status` reads, from the operator runtime. */
export function statusDepsOf(rt: OpsRuntime): StatusDeps {
  const { DB_NAME, DB_TABLE } = rt.config;
  return {
    ...rt,
    stream: rt.config.KINESIS_STREAM,
    table: { schema: DB_NAME, table: DB_TABLE },
    embedding: { model: rt.embeddings.model, dimensions: rt.embeddings.dimensions },
    retentionWarnSeconds: rt.config.RETENTION_WARN_SECONDS,
    eligibleCount: async () =>
      Number(
        (
          await rt.mysql.query<{ n: number }>(
            `SELECT COUNT(*) AS n FROM ${quoteTable(DB_NAME, DB_TABLE)} WHERE NDC IS NOT NULL AND LN IS NOT NULL AND LENGTH(TRIM(LN)) > 3`,
          )
        )[0]?.n ?? 0,
      ),
  };
}
