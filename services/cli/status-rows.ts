/**
 * The rows of the pipeline's parts, source to index: binlog, binlog-reader, kinesis, embedder, redis. Each
 * reads the report and the decoded status hashes of the model (status-model.ts), never a hash by field name.
 */
import type { StatusModel } from './status-model.ts';
import {
  NONE,
  ago,
  bytes,
  count,
  counts,
  decimal,
  duration,
  joinParts,
  position,
  rate,
  row,
} from './status-format.ts';
import type { Level, StatusRow } from './status-format.ts';

/** When a part counts as stale (its status not rewritten) or stalled (no proven progress). */
export interface Thresholds {
  staleAfterSeconds: number;
  /** ReaderStallSeconds at or above this shows the reader stalled */
  readerStallSeconds: number;
  /** EmbedderStallSeconds at or above this shows the embedder stalled */
  embedderStallSeconds: number;
}

export function binlogRow(model: StatusModel): StatusRow {
  const b = model.report.binlog;
  const retention =
    b.retentionSeconds === null
      ? 'retention unlimited or unknown'
      : `retention ${duration(b.retentionSeconds)}` +
        (b.retentionLeftSeconds !== null
          ? `, ${duration(b.retentionLeftSeconds)} left for the checkpoint`
          : '');
  const [state, level]: [string, Level] =
    b.server === null
      ? ['no binlog', 'bad']
      : b.checkpointFilePresent === false
        ? ['purged', 'bad']
        : ['ok', 'ok'];
  const eligible = model.report.redis.eligibleRows;
  return row('binlog', {
    state,
    level,
    details: joinParts([
      `server ${position(b.server)}`,
      retention,
      b.snapshot && `snapshot ${position(b.snapshot)}`,
      eligible !== null && count(eligible, 'eligible rows'),
    ]),
  });
}

/**
 * A service's state: `stale` when its status was not rewritten for a while (is it running?), else `stalled`
 * when it says it made no progress for a while.
 */
function serviceState(
  updatedAt: number | undefined,
  stallSeconds: number | null,
  base: { state: string; level: Level },
  now: number,
  t: { staleAfterSeconds: number; stallSeconds: number },
): Pick<StatusRow, 'state' | 'level'> {
  if (updatedAt !== undefined && now - updatedAt > t.staleAfterSeconds * 1000)
    return { state: `${base.state}, stale`, level: 'warn' };
  if (stallSeconds !== null && stallSeconds >= t.stallSeconds)
    return { state: `${base.state}, stalled`, level: 'bad' };
  return base;
}

const READER_LEVELS: Record<string, Level> = {
  streaming: 'ok',
  starting: 'info',
  'waiting-lease': 'info',
  backoff: 'warn',
  stopping: 'warn',
  stopped: 'warn',
  failed: 'bad',
};

export function readerRow(model: StatusModel, t: Thresholds): StatusRow {
  const h = model.reader;
  const { binlog: b, progress, collectedAt: now } = model.report;
  const stall = progress.reader?.stallSeconds ?? null;
  const st = h?.state ?? 'unknown';
  const commitAt = h?.checkpoint_commit_ts ?? h?.last_commit_ts;
  return row('binlog-reader', {
    ...(h
      ? serviceState(h.updated_at, stall, { state: st, level: READER_LEVELS[st] ?? 'info' }, now, {
          staleAfterSeconds: t.staleAfterSeconds,
          stallSeconds: t.readerStallSeconds,
        })
      : { state: 'no status', level: 'warn' }),
    lag:
      joinParts([
        b.behindBytes !== null && bytes(b.behindBytes),
        b.behindSeconds !== null && duration(b.behindSeconds),
        stall !== null && `stall ${duration(stall)}`,
      ]) || NONE,
    rate:
      joinParts([
        h?.events_per_sec !== undefined && rate(h.events_per_sec, 'events'),
        h?.tx_per_sec !== undefined && rate(h.tx_per_sec, 'tx'),
      ]) || NONE,
    checkpoint: b.checkpoint
      ? `${position(b.checkpoint)}${commitAt !== undefined ? `, commit ${ago(commitAt, now)}` : ''}`
      : NONE,
    details: h ? readerDetails(h, now) : noStatus('binlog reader'),
  });
}

function readerDetails(reader: NonNullable<StatusModel['reader']>, now: number): string {
  return joinParts([
    counts(reader, [
      ['events_total', 'events'],
      ['tx_total', 'transactions'],
    ]),
    counts(reader, [['queue_records', 'records queued']]),
    reader.put_latency_ms !== undefined && `put ${decimal(reader.put_latency_ms)} ms`,
    counts(reader, [
      ['put_retried_records', 'records retried'],
      ['restarts', 'restarts'],
    ]),
    reader.state === 'waiting-lease' && reader.lease_holder && `lease held by ${reader.lease_holder}`,
    reader.updated_at !== undefined && `updated ${ago(reader.updated_at, now)}`,
  ]);
}

function noStatus(what: string): string {
  return `no status hash: has the ${what} run?`;
}

export function kinesisRow(model: StatusModel): StatusRow {
  const k = model.report.kinesis;
  if (k.error) return row('kinesis', { state: 'error', level: 'bad', details: `stream ${k.stream}` });
  const known = k.shards.every((s) => s.lagRecords !== null);
  const total = k.shards.reduce((a, s) => a + (s.lagRecords ?? 0), 0);
  const bounded = k.shards.some((s) => s.lagBounded);
  const behind = k.shards.filter((s) => (s.lagRecords ?? 0) > 0);
  const open = k.shards.filter((s) => s.open).length;
  return row('kinesis', {
    state: k.shards.length ? 'ok' : 'no shards',
    level: k.shards.length ? 'ok' : 'warn',
    lag: known ? `${bounded ? '≥ ' : ''}${count(total, 'records')}` : NONE,
    details: joinParts([
      `stream ${k.stream}`,
      `${count(k.shards.length)} shards (${count(open)} open)`,
      behind.length === 0
        ? 'all caught up'
        : behind
            .slice(0, 4)
            .map((s) => `${s.shardId} ${s.lagBounded ? '≥ ' : ''}${count(s.lagRecords ?? 0)} behind`)
            .join(', ') + (behind.length > 4 ? `, ${behind.length - 4} more` : ''),
    ]),
  });
}

const EMBEDDER_COUNTS = [
  ['records', 'records'],
  ['upserted', 'written'],
  ['fields_updated', 'fields updated'],
  ['unchanged', 'unchanged'],
  ['deleted', 'deleted'],
  ['stale_refused', 'stale refused'],
] as const;

/** The consumer's own state when it is not applying; else what it applies: a load, records, nothing. */
function embedderState(model: StatusModel): { state: string; level: Level } {
  const h = model.embedder;
  if (h?.state === 'waiting-lease') return { state: 'waiting-lease', level: 'info' };
  if (h?.state === 'stopped') return { state: 'stopped', level: 'warn' };
  if (model.report.load.inProgress) return { state: 'loading', level: 'ok' };
  return { state: h?.records_per_sec ? 'applying' : 'idle', level: 'ok' };
}

export function embedderRow(model: StatusModel, t: Thresholds): StatusRow {
  const h = model.embedder;
  const { load, progress, collectedAt: now } = model.report;
  const p = progress.embedder;
  return row('embedder', {
    ...(h
      ? serviceState(h.updated_at, p?.stallSeconds ?? null, embedderState(model), now, {
          staleAfterSeconds: t.staleAfterSeconds,
          stallSeconds: t.embedderStallSeconds,
        })
      : { state: 'no status', level: 'warn' }),
    lag:
      joinParts([
        load.rowsBehind !== null && count(load.rowsBehind, 'records'),
        p?.millisBehindLatest != null && duration(p.millisBehindLatest / 1000),
        p && `stall ${duration(p.stallSeconds)}`,
      ]) || NONE,
    rate: h?.records_per_sec !== undefined ? rate(h.records_per_sec, 'records') : NONE,
    checkpoint: h?.updated_at !== undefined ? `updated ${ago(h.updated_at, now)}` : NONE,
    details: h ? embedderDetails(h) : noStatus('embedder'),
  });
}

function embedderDetails(embedder: NonNullable<StatusModel['embedder']>): string {
  const shardErrors = embedder.shards?.reduce((a, s) => a + s.errors, 0) ?? 0;
  const p50 = embedder.latency_p50_ms;
  const p99 = embedder.latency_p99_ms;
  return joinParts([
    counts(embedder, EMBEDDER_COUNTS),
    counts(embedder, [
      ['embeddings_requested', 'embedding calls'],
      ['cache_hits', 'cache hits'],
    ]),
    counts(embedder, [
      ['dead_lettered', 'dead-lettered'],
      ['failed', 'failed'],
    ]),
    shardErrors > 0 && count(shardErrors, 'shard errors'),
    typeof p50 === 'number' &&
      typeof p99 === 'number' &&
      `latency p50 ${count(p50)} ms, p99 ${count(p99)} ms`,
    embedder.state === 'waiting-lease' && embedder.lease_holder && `lease held by ${embedder.lease_holder}`,
  ]);
}

/** "vector HNSW", "vector SVS-VAMANA GlobalSQ8 (LeanVec4x8 asked)": the index as the server built it. */
function vectorDetail(vectorIndex: StatusModel['report']['redis']['vectorIndex']): string | null {
  if (!vectorIndex?.built) return null;
  const asked = vectorIndex.asked?.compression;
  const built = vectorIndex.built.compression;
  return `vector ${vectorIndex.built.algorithm ?? 'unreported'}${built ? ` ${built}` : ''}${asked && asked !== built ? ` (${asked} asked)` : ''}`;
}

export function redisRow(model: StatusModel): StatusRow {
  const x = model.report.redis;
  const diff = x.documents !== null && x.eligibleRows !== null ? x.documents - x.eligibleRows : null;
  return row('redis', {
    state: diff === null ? 'unknown' : diff === 0 ? 'in sync' : 'differs',
    level: diff === 0 ? 'ok' : 'warn',
    lag: diff ? count(Math.abs(diff), diff < 0 ? 'documents missing' : 'documents extra') : NONE,
    details: joinParts([
      `${x.documents === null ? '?' : count(x.documents)} documents / ${x.eligibleRows === null ? '?' : count(x.eligibleRows)} eligible rows`,
      count(x.embeddingCache, 'cached embeddings'),
      count(x.deadLetters, 'dead letters'),
      vectorDetail(x.vectorIndex),
    ]),
  });
}
