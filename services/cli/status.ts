/**
 * `drugsync status`: where every part of the pipeline stands, read from the sources of truth — MySQL (binlog
 * position, retention, eligible rows), Kinesis (latest sequence per shard) and Redis (checkpoints, documents,
 * cache, dead letters, each service's status hash).
 */
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { RedisClient } from '../core/clients/redis.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { Keys } from '../core/keys.ts';
import { deserializePosition, binlogSequence } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { errorMessage } from '../core/errors.ts';
import { createRedisTableState } from '../embedder/table-state.ts';
import { resyncKeys } from '../embedder/resync.ts';

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
  checkpoint: string | null;
  latest: string | null;
  /** records between the checkpoint and the newest record (counted up to a bound) */
  lagRecords: number | null;
}

export interface StatusReport {
  binlog: BinlogStatus;
  kinesis: { stream: string; shards: ShardStatus[]; error?: string };
  redis: {
    documents: number | null;
    eligibleRows: number | null;
    embeddingCache: number;
    deadLetters: number;
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
}

async function binlogStatus(d: StatusDeps): Promise<BinlogStatus> {
  const warnings: string[] = [];
  const cpText = await d.redis.get(d.keys.readerCheckpoint);
  const snapText = await d.redis.get(d.keys.backfillSnapshot);
  const checkpoint = cpText ? deserializePosition(cpText) : null;
  const snapshot = snapText ? deserializePosition(snapText) : null;
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
    const seq = binlogSequence(from.file);
    behindBytes = 0;
    for (const l of logs) {
      const s = binlogSequence(l.Log_name);
      if (s < seq) continue;
      const size = l.Log_name === server.file ? server.pos : Number(l.File_size);
      behindBytes += s === seq ? Math.max(0, size - from.pos) : size;
    }
  }
  let retentionSeconds: number | null = null;
  try {
    const v = (await d.mysql.query<Record<string, unknown>>('SELECT @@binlog_expire_logs_seconds AS s'))[0];
    retentionSeconds = v && Number(v.s) > 0 ? Number(v.s) : null;
  } catch {
    // Aurora MySQL: retention is an RDS setting, not a server variable.
    try {
      const rows = await d.mysql.query<{ name: string; value: string }>('CALL mysql.rds_show_configuration');
      const hours = rows.find((r) => r.name === 'binlog retention hours')?.value;
      retentionSeconds = hours && hours !== 'NULL' ? Number(hours) * 3600 : null;
    } catch (e) {
      warnings.push(`binlog retention unreadable: ${errorMessage(e)}`);
    }
  }
  let retentionLeftSeconds: number | null = null;
  const readerStatus = await d.redis.hgetall(d.keys.serviceStatus('binlog-reader'));
  const lastCommitMs = Number(readerStatus.checkpoint_commit_ts ?? readerStatus.last_commit_ts ?? NaN);
  const behindSeconds =
    Number.isFinite(lastCommitMs) && behindBytes !== 0
      ? Math.max(0, (Date.now() - lastCommitMs) / 1000)
      : behindBytes === 0
        ? 0
        : null;
  if (retentionSeconds !== null && Number.isFinite(lastCommitMs)) {
    // The checkpoint's file is purged `retention` after it was closed; it is at most as old as the last commit.
    retentionLeftSeconds = Math.round(retentionSeconds - (Date.now() - lastCommitMs) / 1000);
    if (retentionLeftSeconds < d.retentionWarnSeconds) {
      warnings.push(
        `only ${retentionLeftSeconds} s of binlog retention left before the reader's checkpoint could be purged`,
      );
    }
  } else if (retentionSeconds === null) {
    warnings.push('binlog retention is unlimited or unknown: set it so purges are deliberate');
  }
  return {
    checkpoint,
    snapshot,
    server,
    behindBytes,
    behindSeconds,
    retentionSeconds,
    retentionLeftSeconds,
    checkpointFilePresent,
    warnings,
  };
}

async function kinesisStatus(d: StatusDeps): Promise<StatusReport['kinesis']> {
  try {
    const shards = (await d.kinesis.send(new ListShardsCommand({ StreamName: d.stream }))).Shards ?? [];
    const checkpoints = await d.redis.hgetall(d.keys.shardCheckpoints(d.stream));
    const out: ShardStatus[] = [];
    for (const sh of shards) {
      const id = sh.ShardId as string;
      const checkpoint = checkpoints[id] ?? null;
      const it = await d.kinesis.send(
        new GetShardIteratorCommand({
          StreamName: d.stream,
          ShardId: id,
          ...(checkpoint
            ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: checkpoint }
            : { ShardIteratorType: 'TRIM_HORIZON' }),
        }),
      );
      // Count what is behind the checkpoint, up to 10,000 records (a bounded look).
      let iterator = it.ShardIterator;
      let lag = 0;
      let latest: string | null = checkpoint;
      for (let i = 0; i < 10 && iterator; i++) {
        const r = await d.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
        lag += r.Records?.length ?? 0;
        const last = r.Records?.[r.Records.length - 1];
        if (last?.SequenceNumber) latest = last.SequenceNumber;
        if (!r.Records?.length || (r.MillisBehindLatest ?? 0) === 0) break;
        iterator = r.NextShardIterator;
      }
      out.push({ shardId: id, checkpoint, latest, lagRecords: lag });
    }
    return { stream: d.stream, shards: out };
  } catch (e) {
    return { stream: d.stream, shards: [], error: errorMessage(e) };
  }
}

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

export async function collectStatus(d: StatusDeps): Promise<StatusReport> {
  const [binlog, kinesis] = await Promise.all([binlogStatus(d), kinesisStatus(d)]);
  let documents: number | null;
  try {
    const info = (await d.redis.call('FT.INFO', d.keys.index)) as unknown[];
    const i = info.indexOf('num_docs');
    documents = i >= 0 ? Number(info[i + 1]) : null;
  } catch {
    documents = await countKeys(d.redis, `${d.keys.docPrefix}*`); // no index yet: count the keys
  }
  const services: Record<string, Record<string, string>> = {};
  for (const svc of ['backfill', 'binlog-reader', 'embedder']) {
    const h = await d.redis.hgetall(d.keys.serviceStatus(svc));
    if (Object.keys(h).length) services[svc] = h;
  }
  const tables = await createRedisTableState(d.redis, d.keys).read();
  const emb = services.embedder ?? {};
  const behind = kinesis.shards.map((x) => x.lagRecords);
  return {
    binlog,
    kinesis,
    table: {
      truncatePending: tables.truncate?.pos ?? null,
      resyncsPending: tables.resyncs.map((x) => ({ pos: x.pos, statement: x.statement })),
      resync: await d.redis.hgetall(resyncKeys(d.keys).status),
    },
    load: {
      inProgress: emb.load_in_progress === '1',
      startedAt: emb.load_started_at || null,
      rowEvents: Number(emb.load_row_events ?? 0),
      eventsPerSecond: Number(emb.records_per_sec ?? 0),
      rowsBehind: behind.every((x) => typeof x === 'number')
        ? behind.reduce<number>((a, x) => a + (x ?? 0), 0)
        : null,
      last: emb.last_load ? (JSON.parse(emb.last_load) as Record<string, unknown>) : null,
    },
    redis: {
      documents,
      eligibleRows: await d.eligibleCount(),
      embeddingCache: await countKeys(
        d.redis,
        `${d.keys.embeddingPrefix(d.embedding.model, d.embedding.dimensions)}*`,
      ),
      deadLetters: await d.redis.xlen(d.keys.deadLetters),
    },
    services,
  };
}

export function formatStatus(r: StatusReport): string {
  const pos = (p: BinlogPosition | null) => (p ? `${p.file}:${p.pos}` : '—');
  const lines = [
    `binlog     checkpoint ${pos(r.binlog.checkpoint)}  server ${pos(r.binlog.server)}  behind ${r.binlog.behindBytes ?? '?'} bytes` +
      `${r.binlog.behindSeconds !== null ? ` / ${r.binlog.behindSeconds.toFixed(1)} s` : ''}  snapshot ${pos(r.binlog.snapshot)}`,
    `retention  ${r.binlog.retentionSeconds ?? 'unlimited/unknown'} s${r.binlog.retentionLeftSeconds !== null ? `, ~${r.binlog.retentionLeftSeconds} s left for the checkpoint` : ''}`,
    `kinesis    ${r.kinesis.stream}: ${r.kinesis.error ?? r.kinesis.shards.map((s) => `${s.shardId} behind ${s.lagRecords ?? '?'}`).join(', ')}`,
    `redis      ${r.redis.documents ?? '?'} documents / ${r.redis.eligibleRows ?? '?'} eligible rows; embedding cache ${r.redis.embeddingCache}; dead letters ${r.redis.deadLetters}`,
  ];
  for (const [svc, h] of Object.entries(r.services)) {
    const fields = Object.entries(h)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(`${svc.padEnd(10)} ${fields}`);
  }
  const l = r.load;
  if (l.inProgress)
    lines.push(
      `load       IN PROGRESS since ${l.startedAt}: ${l.rowEvents} row events applied, ${l.eventsPerSecond}/s, ${l.rowsBehind ?? '?'} records behind on the stream`,
    );
  if (l.last)
    lines.push(
      `last load  ${Object.entries(l.last)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ')}`,
    );
  const t = r.table;
  if (t.truncatePending)
    lines.push(`table      truncate at ${t.truncatePending} pending: swept once the reload has been quiet`);
  if (t.resyncsPending.length)
    lines.push(
      `table      ${t.resyncsPending.length} resync(s) pending (table replaced: ${t.resyncsPending.map((x) => x.statement).join('; ')})`,
    );
  if (t.resync.phase) {
    const pr =
      t.resync.phase === 'scan' || t.resync.phase === 'compare'
        ? ` ${t.resync.done ?? 0}/${t.resync.total ?? '?'}`
        : '';
    lines.push(
      `resync     ${t.resync.phase}${pr}${t.resync.phase === 'done' ? ` at ${t.resync.position}: ${t.resync.written} written, ${t.resync.deleted} deleted, ${t.resync.embeddings_requested} embedding call(s), ${t.resync.seconds} s` : ''}${t.resync.error ? ` error: ${t.resync.error}` : ''}`,
    );
  }
  for (const w of r.binlog.warnings) lines.push(`WARNING    ${w}`);
  return lines.join('\n');
}
