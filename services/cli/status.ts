/**
 * `drugsync status`: where every part of the pipeline stands, read from the sources of truth — MySQL (binlog
 * position, retention, eligible rows), Kinesis (latest sequence per shard) and Redis (checkpoints, documents,
 * cache, dead letters, each service's status hash). This module gathers the report and prints it; the
 * table an operator reads is drawn by status-view.ts (pure: report in, lines out).
 */
import { isAtOrBefore, iteratorAfter } from '../core/stream-record.ts';
import { streamRecordsOf } from '../embedder/shard-reader.ts';
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { RedisClient } from '../core/clients/redis.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { Keys } from '../core/keys.ts';
import { deserializePosition, binlogSequence } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { errorMessage } from '../core/errors.ts';
import { describeErrorMasked } from '../core/log.ts';
import { sleep } from '../core/backoff.ts';
import { isOpenShard, listAllShards } from '../core/kinesis-shards.ts';
import { createRedisTableState } from '../embedder/table-state.ts';
import { describeServer, readVectorIndex } from '../core/redis/index.ts';
import type { VectorIndexState } from '../core/redis/index.ts';
import { resyncKeys } from '../embedder/resync.ts';
import type { OpsRuntime } from './runtime.ts';
import { colorWanted, redrawPrefix, renderStatus } from './status-view.ts';

export interface BinlogStatus {
  checkpoint: BinlogPosition | null;
  snapshot: BinlogPosition | null;
  server: BinlogPosition | null;
  /** bytes between the checkpoint and the server's current position (summed over files) */
  behindBytes: number | null;
  /** seconds since the commit the reader last checkpointed (from its status hash), when known */
  behindSeconds: number | null;
  /** how long binlogs are kept, and how long until the checkpoint's file would be purged */
  retentionSeconds: number | null;
  retentionLeftSeconds: number | null;
  checkpointFilePresent: boolean | null;
  warnings: string[];
}

export interface ShardStatus {
  shardId: string;
  /** false once the shard was split or merged (it takes no new records) */
  open: boolean;
  checkpoint: string | null;
  latest: string | null;
  /** records between the checkpoint and the newest record (counted up to SHARD_LAG_BOUND) */
  lagRecords: number | null;
  /** the count stopped at the bound: at least lagRecords are behind */
  lagBounded: boolean;
}

/** The vector index as the server built it beside what was asked, and what the server's search module offers. */
export interface VectorIndexStatus extends VectorIndexState {
  /** the detected capabilities in one line (capabilities.ts): versions, how SVS-VAMANA support was decided */
  server: string | null;
  /** why it could not be read (the rest is then empty) */
  error?: string;
}

export interface StatusReport {
  /** when the report was gathered (ms since the epoch): every age in the view is taken from here */
  collectedAt: number;
  binlog: BinlogStatus;
  kinesis: { stream: string; shards: ShardStatus[]; error?: string };
  redis: {
    documents: number | null;
    eligibleRows: number | null;
    embeddingCache: number;
    deadLetters: number;
    /** null when there is no index yet */
    vectorIndex?: VectorIndexStatus | null;
  };
  services: Record<string, Record<string, string>>;
  /** table events: a truncate waiting for its reload to settle, resyncs pending, the re-sync's progress */
  table: {
    truncatePending: string | null;
    resyncsPending: { pos: string; statement: string }[];
    resync: Record<string, string>;
  };
  /** the load the embedder is applying now (a burst, a reload), or the last one it finished */
  load: {
    inProgress: boolean;
    startedAt: string | null;
    rowEvents: number;
    eventsPerSecond: number;
    rowsBehind: number | null;
    last: Record<string, unknown> | null;
  };
}

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

/** The services whose status hash `drugsync status` reads. */
export const STATUS_SERVICES = ['backfill', 'binlog-reader', 'embedder'] as const;

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

/**
 * How far the reader's checkpoint is behind in time, and how long its binlog file has left before the
 * retention purges it (the file is at most as old as the last commit the reader checkpointed).
 */
export function binlogTiming(a: {
  behindBytes: number | null;
  lastCommitMs: number;
  retentionSeconds: number | null;
  retentionWarnSeconds: number;
  now: number;
}): Pick<BinlogStatus, 'behindSeconds' | 'retentionLeftSeconds' | 'warnings'> {
  const known = Number.isFinite(a.lastCommitMs);
  const behindSeconds = a.behindBytes === 0 ? 0 : known ? Math.max(0, (a.now - a.lastCommitMs) / 1000) : null;
  const warnings: string[] = [];
  let retentionLeftSeconds: number | null = null;
  if (a.retentionSeconds !== null && known) {
    retentionLeftSeconds = Math.round(a.retentionSeconds - (a.now - a.lastCommitMs) / 1000);
    if (retentionLeftSeconds < a.retentionWarnSeconds) {
      warnings.push(
        `only ${retentionLeftSeconds} s of binlog retention left before the reader's checkpoint could be purged`,
      );
    }
  } else if (a.retentionSeconds === null) {
    warnings.push('binlog retention is unlimited or unknown: set it so purges are deliberate');
  }
  return { behindSeconds, retentionLeftSeconds, warnings };
}

async function readPosition(redis: RedisClient, key: string): Promise<BinlogPosition | null> {
  const text = await redis.get(key);
  return text ? deserializePosition(text) : null;
}

async function binlogStatus(d: StatusDeps, now: number): Promise<BinlogStatus> {
  const warnings: string[] = [];
  const checkpoint = await readPosition(d.redis, d.keys.readerCheckpoint);
  const snapshot = await readPosition(d.redis, d.keys.backfillSnapshot);
  const master = (await d.mysql.query<Record<string, unknown>>('SHOW MASTER STATUS'))[0];
  const server = master ? { file: String(master.File), pos: Number(master.Position) } : null;
  const logs = await d.mysql.query<{ Log_name: string; File_size: number | string }>('SHOW BINARY LOGS');
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
  const retentionSeconds = await binlogRetentionSeconds(d.mysql, warnings);
  const reader = await d.redis.hgetall(d.keys.serviceStatus('binlog-reader'));
  const lastCommitMs = Number(reader.checkpoint_commit_ts ?? reader.last_commit_ts ?? NaN);
  const timing = binlogTiming({
    behindBytes,
    lastCommitMs,
    retentionSeconds,
    retentionWarnSeconds: d.retentionWarnSeconds,
    now,
  });
  return {
    checkpoint,
    snapshot,
    server,
    behindBytes,
    behindSeconds: timing.behindSeconds,
    retentionSeconds,
    retentionLeftSeconds: timing.retentionLeftSeconds,
    checkpointFilePresent,
    warnings: [...warnings, ...timing.warnings],
  };
}

// ---------------------------------------------------------------- kinesis

/** Counts the events after the checkpoint (from the start without one), up to a bound. */
async function shardLag(d: StatusDeps, shardId: string, checkpoint: string | null): Promise<ShardStatus> {
  const it = await d.kinesis.send(
    new GetShardIteratorCommand({
      StreamName: d.stream,
      ShardId: shardId,
      ...(checkpoint ? iteratorAfter(checkpoint) : { ShardIteratorType: 'TRIM_HORIZON' }),
    }),
  );
  let iterator = it.ShardIterator;
  let lag = 0;
  let latest: string | null = checkpoint;
  let pages = 0;
  for (; pages < SHARD_LAG_PAGES && iterator; pages++) {
    const r = await d.kinesis.send(
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

async function kinesisStatus(d: StatusDeps): Promise<StatusReport['kinesis']> {
  try {
    const shards = await listAllShards(d.kinesis, d.stream);
    const checkpoints = await d.redis.hgetall(d.keys.shardCheckpoints(d.stream));
    const out: ShardStatus[] = [];
    for (const sh of shards) {
      const id = sh.ShardId as string;
      const lag = await shardLag(d, id, checkpoints[id] ?? null);
      out.push({ ...lag, open: isOpenShard(sh) });
    }
    return { stream: d.stream, shards: out };
  } catch (e) {
    return { stream: d.stream, shards: [], error: describeErrorMasked(e) };
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
async function documentCount(d: StatusDeps): Promise<number | null> {
  try {
    const info = (await d.redis.call('FT.INFO', d.keys.index)) as unknown[];
    const i = info.indexOf('num_docs');
    return i >= 0 ? Number(info[i + 1]) : null;
  } catch {
    return countKeys(d.redis, `${d.keys.docPrefix}*`); // no index yet: count the keys
  }
}

async function vectorIndexStatus(d: StatusDeps): Promise<VectorIndexStatus | null> {
  try {
    const state = await readVectorIndex(d.redis, d.keys);
    return state && { ...state, server: (await describeServer(d.redis)).summary };
  } catch (e) {
    const empty = { asked: null, built: null, substitutions: [], server: null };
    return { index: d.keys.index, ...empty, error: describeErrorMasked(e) };
  }
}

async function redisStatus(d: StatusDeps): Promise<StatusReport['redis']> {
  return {
    documents: await documentCount(d),
    eligibleRows: await d.eligibleCount(),
    embeddingCache: await countKeys(
      d.redis,
      `${d.keys.embeddingPrefix(d.embedding.model, d.embedding.dimensions)}*`,
    ),
    deadLetters: await d.redis.xlen(d.keys.deadLetters),
    vectorIndex: await vectorIndexStatus(d),
  };
}

async function serviceHashes(d: StatusDeps): Promise<StatusReport['services']> {
  const services: Record<string, Record<string, string>> = {};
  for (const svc of STATUS_SERVICES) {
    const h = await d.redis.hgetall(d.keys.serviceStatus(svc));
    if (Object.keys(h).length) services[svc] = h;
  }
  return services;
}

async function tableStatus(d: StatusDeps): Promise<StatusReport['table']> {
  const tables = await createRedisTableState(d.redis, d.keys).read();
  return {
    truncatePending: tables.truncate?.pos ?? null,
    resyncsPending: tables.resyncs.map((x) => ({ pos: x.pos, statement: x.statement })),
    resync: await d.redis.hgetall(resyncKeys(d.keys).status),
  };
}

/** The embedder's current or last load, from its status hash and the stream's lag. */
export function loadStatus(
  embedder: Record<string, string>,
  shards: readonly ShardStatus[],
): StatusReport['load'] {
  const behind = shards.map((x) => x.lagRecords);
  return {
    inProgress: embedder.load_in_progress === '1',
    startedAt: embedder.load_started_at || null,
    rowEvents: Number(embedder.load_row_events ?? 0),
    eventsPerSecond: Number(embedder.records_per_sec ?? 0),
    rowsBehind: behind.every((x) => typeof x === 'number')
      ? behind.reduce<number>((a, x) => a + (x ?? 0), 0)
      : null,
    last: embedder.last_load ? (JSON.parse(embedder.last_load) as Record<string, unknown>) : null,
  };
}

export async function collectStatus(d: StatusDeps): Promise<StatusReport> {
  const collectedAt = (d.now ?? Date.now)();
  const [binlog, kinesis] = await Promise.all([binlogStatus(d, collectedAt), kinesisStatus(d)]);
  const services = await serviceHashes(d);
  return {
    collectedAt,
    binlog,
    kinesis,
    table: await tableStatus(d),
    load: loadStatus(services.embedder ?? {}, kinesis.shards),
    redis: await redisStatus(d),
    services,
  };
}

// ---------------------------------------------------------------- the command

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
            `SELECT COUNT(*) AS n FROM \`${DB_NAME}\`.\`${DB_TABLE}\` WHERE NDC IS NOT NULL AND LN IS NOT NULL AND LENGTH(TRIM(LN)) > 3`,
          )
        )[0]?.n ?? 0,
      ),
  };
}

export interface PrintOptions {
  json: boolean;
  watch: boolean;
  /** where to write (stdout by default; tests pass a collector) */
  out?: Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>;
  /** ends --watch (SIGINT / SIGTERM by default) */
  signal?: AbortSignal;
  intervalMs?: number;
}

/** Prints the status once, or with `watch` every second until the signal (Ctrl-C). */
export async function printStatus(d: StatusDeps, o: PrintOptions): Promise<void> {
  const out = o.out ?? process.stdout;
  const color = colorWanted(out.isTTY === true, process.env);
  const draw = async (): Promise<string> => {
    const report = await collectStatus(d);
    return o.json ? JSON.stringify(report) : renderStatus(report, { color }).join('\n');
  };
  if (!o.watch) {
    out.write((await draw()) + '\n');
    return;
  }
  await watchStatus(draw, out, o);
}

/** Draws a frame every interval until aborted: in place on a TTY, one after another otherwise. */
async function watchStatus(
  draw: () => Promise<string>,
  out: NonNullable<PrintOptions['out']>,
  o: PrintOptions,
) {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  const signal = o.signal ?? stop.signal;
  if (!o.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const inPlace = out.isTTY === true && !o.json;
  let previous: string | null = null;
  try {
    while (!signal.aborted) {
      const started = Date.now();
      // A failed look (a server down) is shown in the frame and tried again at the next refresh.
      const frame = await draw().catch((e: unknown) => {
        const error = describeErrorMasked(e);
        return o.json ? JSON.stringify({ error }) : `status unavailable: ${error}`;
      });
      out.write((inPlace && previous !== null ? redrawPrefix(previous, out.columns) : '') + frame + '\n');
      if (!inPlace && !o.json) out.write('\n');
      previous = frame;
      await sleep(Math.max(0, (o.intervalMs ?? 1000) - (Date.now() - started)), signal);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
