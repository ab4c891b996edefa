/**
 * Local / ECS driver: polls every shard of the stream and applies each shard's records with `applyBatch`.
 *
 * - Each shard starts AFTER_SEQUENCE_NUMBER its checkpoint (Redis hash keys.shardCheckpoints(stream)),
 *   or at TRIM_HORIZON when it has none. The checkpoint moves only after a batch is applied, and only up
 *   to the record before the shard's first failed record; on failure the shard is re-read from there
 *   after a backoff, so nothing after a failure is skipped.
 * - GetRecords limits as on AWS: at most 5 calls/s per shard (≥ 200 ms apart) and 2 MB/s per shard (after
 *   a response of B bytes the next call waits B / 2 MB/s); ProvisionedThroughputExceeded backs off.
 * - Resharding: shards are re-listed periodically; a child shard starts once its parent(s) are finished
 *   (read to SHARD_END and checkpointed as closed) or no longer listed (expired).
 * - stop() (SIGTERM/SIGINT in the CLI): each shard finishes its in-flight batch and checkpoint, then exits.
 * - One active consumer per stream: a Redis lease (services/core/lease.ts, key `<checkpoint key>:lease`).
 *   A second consumer waits, logging who holds it (host, pid, since), and takes over when the lease expires
 *   (its holder died) or is released (clean stop). The holder renews it while it runs; on a loss it stops
 *   applying at once (no batch starts after it) and its checkpoint writes are fenced on the lease token, so
 *   none lands after the loss; it then waits to take the lease again.
 */
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type Shard,
  type _Record,
} from '@aws-sdk/client-kinesis';
import { DrugsyncError, errorMessage, isDrugsyncError, wrapError } from '../core/errors.ts';
import { createRedisLease, keepLease, leaseOwnerId } from '../core/lease.ts';
import type { Lease, LeaseHolder, LeaseKeeper } from '../core/lease.ts';
import { decodeChangeEvent, recordJson } from '../core/events.ts';
import type { ChangeEvent } from '../core/events.ts';
import { createDeferredDeletes } from './deferred.ts';
import type { DeferredDeletes } from './deferred.ts';
import type { Logger } from '../core/log.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { applyBatch, firstFailurePerShard, runMaintenance } from './apply.ts';
import type { ApplyDeps } from './apply.ts';
import { emptyStats, mergeStats } from './types.ts';
import type { BatchStats, StreamRecord } from './types.ts';

/** The subset of the Kinesis client the consumer uses. */
export type KinesisReader = Pick<KinesisClient, 'send'>;

export interface ConsumerConfig {
  KINESIS_STREAM: string;
  EMBEDDER_GETRECORDS_LIMIT: number;
  EMBEDDER_IDLE_POLL_MS: number;
  /** a run of at least this many row events is a "load", summarised when it ends (default 1000) */
  LOAD_MIN_RECORDS?: number;
  /** a pause this long ends a load (seconds, default 3) */
  LOAD_QUIET_SECONDS?: number;
  /** the consumer lease's expiry (ms, default 15,000): a successor takes over at most this long after a crash */
  EMBEDDER_LEASE_TTL_MS?: number;
  /** the longest backoff between retries of a failing shard (ms, default 30,000); retries never give up */
  EMBEDDER_MAX_BACKOFF_MS?: number;
}

/** What one load (a burst, a reload, a refresh) did, logged when it ends. */
export interface LoadSummary {
  started_at: string;
  seconds: number;
  row_events: number;
  ndcs: number;
  written: number;
  fields_updated: number;
  unchanged: number;
  deleted: number;
  stale_refused: number;
  /** distinct names sent to the embedder (not found in the cache) */
  names_embedded: number;
  embeddings_requested: number;
  cache_hits: number;
  dead_lettered: number;
}

export interface ConsumerDeps {
  kinesis: KinesisReader;
  redis: RedisClient;
  /** keys.shardCheckpoints(stream) */
  checkpointKey: string;
  /** keys.serviceStatus('embedder') */
  statusKey?: string | undefined;
  apply: ApplyDeps;
  log: Logger;
  /** Where deletes of transactions too large to hold wait for their commit (default: beside the checkpoints). */
  deferred?: DeferredDeletes | undefined;
  /** The one-consumer-per-stream lease (default: a Redis lease at `<checkpointKey>:lease`, owner host:pid). */
  lease?: Lease | undefined;
}

export interface ConsumerOptions {
  /** Stop once every shard is caught up and no record arrived for this long (tests, one-off drains). */
  exitWhenIdleMs?: number | undefined;
  /** Records a shard may hold to finish an open delete transaction before deferring its deletes (100,000). */
  maxPendingRecords?: number | undefined;
  /** How often shards are re-listed (new shards after resharding). */
  discoverEveryMs?: number | undefined;
  /** How often maintenance runs (truncate sweep, status). */
  maintenanceEveryMs?: number | undefined;
  /** Called after every applied batch (tests, progress bars). */
  onBatch?: ((shardId: string, stats: BatchStats) => void) | undefined;
}

export interface ShardProgress {
  shardId: string;
  checkpoint: string | null;
  millisBehindLatest: number | null;
  closed: boolean;
  /** the last GetRecords returned nothing and nothing is held back */
  idle: boolean;
  batches: number;
  errors: number;
}

export interface ConsumerStats {
  /** waiting-lease: another consumer holds the stream's lease; applying: this one holds it */
  state: 'waiting-lease' | 'applying' | 'stopped';
  /** who held the lease when this consumer last found it taken (while waiting) */
  leaseHolder: LeaseHolder | null;
  /** how many times this consumer took the lease, and lost it */
  leaseTaken: number;
  leaseLost: number;
  startedAt: number;
  totals: BatchStats;
  shards: Map<string, ShardProgress>;
  lastRecordAt: number | null;
  errors: number;
}

export interface EmbedderConsumer {
  /** Finish in-flight batches, checkpoint, and resolve `done`. */
  stop(): void;
  readonly stats: ConsumerStats;
  readonly done: Promise<ConsumerStats>;
  /** this consumer's lease owner id (host:pid:id) */
  readonly owner: string;
}

const CLOSED = '#closed';
const MAX_BYTES_PER_SEC = 2 * 1024 * 1024;
const MIN_CALL_GAP_MS = 200;
/** Upper bound of records held back to finish an open delete transaction (memory bound). */
const DEFAULT_MAX_PENDING_RECORDS = 100_000;
/**
 * How long a caught-up shard waits for the rest of an open delete transaction. The binlog reader ends every
 * transaction that deleted rows with a 'commit' table event on every shard, which closes it at once; this
 * bound only matters when that event is missing (an older producer).
 */
const TX_WAIT_MS = 10_000;
const COMMIT_RE = /"type":"commit"/;
/** HSET of a checkpoint field only while the lease key holds our token (-1: the lease is not ours). */
const FENCED_HSET = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;
const DEFAULT_LEASE_TTL_MS = 15_000;

const TXID_RE = /"txid":"((?:[^"\\]|\\.)*)"/;
const DELETE_RE = /"type":"delete"/;

interface Peek {
  /** the record's transaction id (null when it has none / is not JSON) */
  txid: string | null;
  /** its transaction id when it deletes a row, else null */
  deleteTx: string | null;
  /** the transaction id a 'commit' table event closes, else null */
  commitTx: string | null;
}

/** A record as read: its JSON bytes (decompressed) and what the hold logic needs of it, read once. */
interface Held extends _Record {
  tx: Peek;
}

/** What the hold logic needs of a record, read from its JSON text once, without decoding it. */
function peek(r: _Record): Peek {
  const text = Buffer.from(r.Data ?? new Uint8Array()).toString('utf8');
  const m = TXID_RE.exec(text);
  const txid = m ? (m[1] as string) : null;
  return {
    txid,
    deleteTx: DELETE_RE.test(text) ? txid : null,
    commitTx: COMMIT_RE.test(text) ? txid : null,
  };
}

/** A record's JSON bytes; a record that does not decompress is kept as is (it is dead-lettered with its reason). */
function plainRecord(data: Uint8Array): Uint8Array {
  try {
    return recordJson(data);
  } catch {
    return data;
  }
}

function toStreamRecord(r: _Record, shardId: string): StreamRecord {
  return {
    sequenceNumber: r.SequenceNumber as string,
    partitionKey: r.PartitionKey ?? '',
    shardId,
    data: r.Data ?? new Uint8Array(),
    approximateArrivalTimestamp: r.ApproximateArrivalTimestamp?.getTime(),
  };
}

const isLeaseError = (e: unknown) => isDrugsyncError(e, 'CONSUMER_LEASE_HELD');

function errName(e: unknown): string {
  return e instanceof Error ? e.name : '';
}

export function startEmbedderConsumer(
  config: ConsumerConfig,
  deps: ConsumerDeps,
  opts: ConsumerOptions = {},
): EmbedderConsumer {
  const { kinesis, redis, log } = deps;
  const stream = config.KINESIS_STREAM;
  const stats: ConsumerStats = {
    state: 'waiting-lease',
    leaseHolder: null,
    leaseTaken: 0,
    leaseLost: 0,
    startedAt: Date.now(),
    totals: emptyStats(),
    shards: new Map(),
    lastRecordAt: null,
    errors: 0,
  };
  let stopping = false;
  const leaseTtl = config.EMBEDDER_LEASE_TTL_MS ?? DEFAULT_LEASE_TTL_MS;
  const maxBackoff = config.EMBEDDER_MAX_BACKOFF_MS ?? 30_000;
  const lease =
    deps.lease ??
    createRedisLease(
      redis,
      `${deps.checkpointKey}:lease`,
      leaseOwnerId(),
      leaseTtl,
      'embedder consumer lease',
    );
  /** the renewal of the lease while it is ours (null while waiting for it) */
  let keeper: LeaseKeeper | null = null;
  let leaseGone = false;
  /** Stop applying: a clean stop, or the lease is no longer surely ours. */
  const halted = () => stopping || leaseGone || keeper === null || !keeper.valid();
  /** set when a shard closes: its children may start now */
  let rediscover = false;
  const wakers = new Set<() => void>();
  const wakeAll = () => {
    for (const w of wakers) w();
    wakers.clear();
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping || leaseGone) return resolve();
      const t = setTimeout(() => {
        wakers.delete(w);
        resolve();
      }, ms);
      const w = () => {
        clearTimeout(t);
        resolve();
      };
      wakers.add(w);
    });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log.info('stopping: finishing in-flight batches');
    wakeAll();
  };
  const loseLease = (cause: unknown) => {
    if (leaseGone) return;
    leaseGone = true;
    stats.leaseLost++;
    log.error('embedder consumer lease lost: stopped applying (no checkpoint is written after this)', {
      key: lease.key,
      owner: lease.owner,
      cause: errorMessage(cause),
    });
    wakeAll();
  };
  /** Writes a shard checkpoint field only while the lease is ours; a refusal is a lease loss. */
  const writeCheckpoint = async (field: string, value: string): Promise<void> => {
    const token = lease.token();
    const r =
      token === null
        ? -1
        : Number(await redis.eval(FENCED_HSET, 2, lease.key, deps.checkpointKey, token, field, value));
    if (r !== 1) {
      loseLease(new Error(`the lease no longer holds our token when checkpointing ${field}`));
      throw new DrugsyncError(
        'CONSUMER_LEASE_HELD',
        'checkpoint refused: this consumer no longer holds the lease',
        {
          context: { stream, key: lease.key, field },
          retryable: true,
        },
      );
    }
  };

  const kinesisError = (e: unknown, what: string, shardId?: string) =>
    wrapError(e, 'KINESIS_READ_FAILED', `Kinesis ${what} failed`, {
      context: { stream, shard: shardId },
      retryable: true,
      remedy: 'check KINESIS_ENDPOINT / AWS credentials and that the stream exists',
    });

  async function listShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const out = await kinesis.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }),
      );
      shards.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
    return shards;
  }

  async function readCheckpoints(): Promise<Record<string, string>> {
    try {
      return await redis.hgetall(deps.checkpointKey);
    } catch (e) {
      throw wrapError(e, 'REDIS_UNAVAILABLE', 'cannot read shard checkpoints', {
        context: { key: deps.checkpointKey },
        retryable: true,
      });
    }
  }

  async function iteratorFor(shardId: string, after: string | null): Promise<string> {
    const out = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: stream,
        ShardId: shardId,
        ...(after
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after }
          : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    if (!out.ShardIterator) throw new DrugsyncError('KINESIS_READ_FAILED', 'no shard iterator returned');
    return out.ShardIterator;
  }

  const maxPending = opts.maxPendingRecords ?? DEFAULT_MAX_PENDING_RECORDS;
  const deferred = deps.deferred ?? createDeferredDeletes(redis, `${deps.checkpointKey}:deferred:`);

  /** Writes the open transactions' delete events to the deferred store; returns the records to apply now. */
  async function deferOpenDeletes(
    shardId: string,
    records: readonly Held[],
    open: ReadonlySet<string>,
  ): Promise<Held[]> {
    const keep: Held[] = [];
    const byTx = new Map<string, { ndc: string; pos: string }[]>();
    for (const r of records) {
      const tx = r.tx.deleteTx;
      if (tx !== null && open.has(tx)) {
        let ev: ChangeEvent | null;
        try {
          ev = decodeChangeEvent(r.Data ?? new Uint8Array());
        } catch {
          ev = null; // undecodable: applied with the batch, which dead-letters it with its reason
        }
        if (ev && ev.type === 'delete') {
          const list = byTx.get(tx) ?? [];
          list.push({ ndc: ev.ndc, pos: ev.pos });
          byTx.set(tx, list);
          continue;
        }
      }
      keep.push(r);
    }
    for (const [tx, items] of byTx) await deferred.defer(shardId, tx, items);
    return keep;
  }

  async function runShard(shardId: string, start: string | null): Promise<void> {
    const p: ShardProgress = {
      shardId,
      checkpoint: start,
      millisBehindLatest: null,
      closed: false,
      idle: false,
      batches: 0,
      errors: 0,
    };
    stats.shards.set(shardId, p);
    const slog = log.child({ shard: shardId });
    let iterator: string | null = null;
    let backoff = 0;
    let lastCall = 0;
    let minGap = MIN_CALL_GAP_MS;
    // records read but not applied yet (a batch is extended to the end of an open delete transaction)
    let pending: Held[] = [];
    const txWithDeletes = new Set<string>();
    let txWaitSince = Date.now();
    // The next GetRecords, started while a batch is being applied (reading and applying overlap). Dropped
    // whenever the iterator is reset (a retry re-reads from the checkpoint).
    type Fetched = { out: GetRecordsCommandOutput; error?: undefined } | { out?: undefined; error: unknown };
    let prefetched: { iterator: string; result: Promise<Fetched> } | null = null;
    const fetchRecords = (it: string): Promise<Fetched> =>
      (async () => {
        const wait = lastCall + minGap - Date.now();
        if (wait > 0) await sleep(wait);
        lastCall = Date.now();
        return {
          out: await kinesis.send(
            new GetRecordsCommand({ ShardIterator: it, Limit: config.EMBEDDER_GETRECORDS_LIMIT }),
          ),
        };
      })().catch((error: unknown) => ({ error }));
    let checkpointWrite: Promise<unknown> = Promise.resolve();
    let checkpointError: unknown = null;
    while (!halted()) {
      try {
        if (checkpointError !== null) {
          const e = checkpointError;
          checkpointError = null;
          checkpointWrite = Promise.resolve();
          throw wrapError(e, 'REDIS_UNAVAILABLE', `writing the checkpoint of ${shardId} failed`, {
            retryable: true,
          });
        }
        if (!iterator) {
          pending = [];
          txWithDeletes.clear();
          prefetched = null;
          iterator = await iteratorFor(shardId, p.checkpoint);
        }
        if (halted()) break;
        const got: Fetched =
          prefetched && prefetched.iterator === iterator
            ? await prefetched.result
            : await fetchRecords(iterator);
        prefetched = null;
        let out;
        try {
          if (got.error !== undefined) throw got.error;
          out = got.out as GetRecordsCommandOutput;
        } catch (e) {
          if (errName(e) === 'ExpiredIteratorException') {
            iterator = null;
            continue;
          }
          if (errName(e) === 'ProvisionedThroughputExceededException') {
            minGap = Math.min(minGap * 2, 5_000);
            slog.warn('GetRecords throttled: slowing down', { min_gap_ms: minGap });
            continue;
          }
          throw kinesisError(e, 'GetRecords', shardId);
        }
        minGap = Math.max(MIN_CALL_GAP_MS, Math.floor(minGap / 2));
        // decompressed and peeked once here: the hold logic below and the batch decode read the JSON
        const raw: Held[] = (out.Records ?? []).map((r) => {
          const rec = r.Data ? { ...r, Data: plainRecord(r.Data) } : r;
          return { ...rec, tx: peek(rec) };
        });
        p.millisBehindLatest = out.MillisBehindLatest ?? null;
        // bytes as Kinesis counts them (compressed)
        const bytes = (out.Records ?? []).reduce((n, r) => n + (r.Data?.length ?? 0), 0);
        // 2 MB/s per shard: the next call waits for the bytes just read
        minGap = Math.max(minGap, Math.ceil((bytes / MAX_BYTES_PER_SEC) * 1000));
        iterator = out.NextShardIterator ?? null;
        for (const r of raw) {
          const { deleteTx, commitTx } = r.tx;
          if (deleteTx !== null) txWithDeletes.add(deleteTx);
          if (commitTx !== null) txWithDeletes.delete(commitTx);
        }
        if (raw.length > 0) txWaitSince = Date.now();
        pending.push(...raw);
        p.idle = raw.length === 0 && pending.length === 0;
        if (raw.length > 0) stats.lastRecordAt = Date.now();
        // A transaction that deletes rows may re-insert them further on (DELETE-all + INSERT-all): applying
        // the deletes before the inserts would empty search for a moment. While the batch ends inside such
        // a transaction and more records are (or may soon be) there, read on before applying.
        const tail = pending.length > 0 ? (pending[pending.length - 1] as Held).tx : null;
        const openDeleteTx =
          tail !== null && tail.txid !== null && txWithDeletes.has(tail.txid) && tail.commitTx === null;
        const more = (out.MillisBehindLatest ?? 0) > 0 || raw.length >= config.EMBEDDER_GETRECORDS_LIMIT;
        if (
          iterator &&
          openDeleteTx &&
          pending.length < maxPending &&
          (more || Date.now() - txWaitSince < TX_WAIT_MS)
        ) {
          continue;
        }
        if (pending.length > 0) {
          // read the next records while this batch is applied
          if (iterator && !stopping) prefetched = { iterator, result: fetchRecords(iterator) };
          const lastRead = (pending[pending.length - 1] as Held).SequenceNumber as string;
          let batch = pending;
          if (openDeleteTx && pending.length >= maxPending) {
            // Too large to hold: the open transaction's deletes wait, durably, for its commit event.
            batch = await deferOpenDeletes(shardId, pending, txWithDeletes);
            slog.info('transaction larger than the hold bound: its deletes wait for its commit event', {
              held: pending.length,
              deferred: pending.length - batch.length,
            });
          }
          // the lease is checked right before the batch: no batch starts once it is lost
          if (halted()) break;
          const records = batch.map((r) => toStreamRecord(r, shardId));
          pending = [];
          txWithDeletes.clear();
          const { results, stats: bs } = await applyBatch(records, deps.apply);
          const failed = firstFailurePerShard(results).get(shardId);
          const upTo = failed ? results.indexOf(failed) : results.length;
          // commit events reached: their transactions' deferred deletes are applied now
          for (const r of batch.slice(0, upTo)) {
            const tx = r.tx.commitTx;
            if (tx === null) continue;
            const released = await deferred.release(shardId, tx, deps.apply.store);
            if (released.deleted + released.refused > 0)
              slog.info('deferred deletes applied at their commit', { txid: tx, ...released });
          }
          const last = failed ? (upTo > 0 ? (results[upTo - 1]?.sequenceNumber ?? null) : null) : lastRead;
          if (last) {
            // Written while the next batch is read and decoded, in order (one connection, chained); the
            // shard stops at the next batch if it failed, and its end waits for it (checkpointDone).
            const prev = checkpointWrite;
            checkpointWrite = prev.then(() => writeCheckpoint(shardId, last));
            checkpointWrite.catch((e: unknown) => (checkpointError ??= e));
            p.checkpoint = last;
          }
          stats.totals = mergeStats(stats.totals, bs);
          stats.lastRecordAt = Date.now();
          p.batches++;
          opts.onBatch?.(shardId, bs);
          if (failed) {
            // re-read from the first failed record after a backoff; nothing after it is skipped
            p.errors++;
            stats.errors++;
            backoff = Math.min(backoff ? backoff * 2 : 500, maxBackoff);
            slog.warn('records failed: retrying the shard from the first failed record', {
              sequence_number: failed.sequenceNumber,
              ndc: failed.ndc,
              backoff_ms: backoff,
              error: failed.error,
            });
            iterator = null;
            await sleep(backoff);
            continue;
          }
        }
        backoff = 0;
        if (!iterator) {
          // SHARD_END: every record of this (parent) shard is applied; children may start
          await checkpointWrite;
          await writeCheckpoint(shardId + CLOSED, '1');
          p.closed = true;
          rediscover = true;
          slog.info('shard closed (resharding): finished');
          return;
        }
        if (raw.length === 0) await sleep(config.EMBEDDER_IDLE_POLL_MS);
      } catch (e) {
        // Redis or Kinesis unavailable: nothing was checkpointed past what was applied; retry from there
        if (leaseGone || isLeaseError(e)) break; // lease lost: this shard stops here
        p.errors++;
        stats.errors++;
        backoff = Math.min(backoff ? backoff * 2 : 500, maxBackoff);
        slog.error('batch failed as a whole; retrying from the last checkpoint', {
          error: e instanceof DrugsyncError ? e : errorMessage(e),
          checkpoint: p.checkpoint,
          backoff_ms: backoff,
        });
        iterator = null;
        await sleep(backoff);
      }
    }
    // stopping: the last checkpoint is durable before the shard reports done (a failure is the run's
    // error); after a lease loss the fenced write refuses it, and that is no error of this shard
    await checkpointWrite.catch((e: unknown) => {
      if (!isLeaseError(e)) throw e;
    });
  }

  let lastProgressLog = Date.now();
  // A load: from the first row event after a pause to the next pause of LOAD_QUIET_SECONDS.
  let load: { at: number; base: BatchStats } | null = null;
  let prevTotals: BatchStats = { ...stats.totals, latencyMs: [] };
  let prevTotalsAt = Date.now();
  let lastLoad: LoadSummary | null = null;
  function trackLoad(nowMs: number): void {
    const t = stats.totals;
    if (!load) {
      // the load began after the previous tick: count from the totals of that tick
      if (t.rowEvents > prevTotals.rowEvents) load = { at: prevTotalsAt, base: prevTotals };
      return;
    }
    const quietMs = (config.LOAD_QUIET_SECONDS ?? 3) * 1000;
    if (nowMs - (stats.lastRecordAt ?? 0) < quietMs) return;
    const b = load.base;
    const rows = t.rowEvents - b.rowEvents;
    if (rows >= (config.LOAD_MIN_RECORDS ?? 1000)) {
      lastLoad = {
        started_at: new Date(load.at).toISOString(),
        seconds: Math.round(((stats.lastRecordAt ?? nowMs) - load.at) / 100) / 10,
        row_events: rows,
        ndcs: t.ndcs - b.ndcs,
        written: t.upserted - b.upserted,
        fields_updated: t.fieldsUpdated - b.fieldsUpdated,
        unchanged: t.unchanged - b.unchanged,
        deleted: t.deleted - b.deleted,
        stale_refused: t.staleRefused - b.staleRefused,
        names_embedded: t.embeddingTexts - b.embeddingTexts - (t.cacheHits - b.cacheHits),
        embeddings_requested: t.embeddingsRequested - b.embeddingsRequested,
        cache_hits: t.cacheHits - b.cacheHits,
        dead_lettered: t.deadLettered - b.deadLettered,
      };
      log.info('load finished', { ...lastLoad });
    }
    load = null;
  }
  async function writeStatus(): Promise<void> {
    const t = stats.totals;
    const nowMs = Date.now();
    trackLoad(nowMs);
    const rate = ((t.records - prevTotals.records) * 1000) / Math.max(1, nowMs - prevTotalsAt);
    prevTotals = { ...t, latencyMs: [] };
    prevTotalsAt = nowMs;
    if (nowMs - lastProgressLog >= 10_000 && t.records > 0) {
      lastProgressLog = nowMs;
      log.info('embedder progress', {
        records_per_sec: Math.round(rate),
        records: t.records,
        upserted: t.upserted,
        fields_updated: t.fieldsUpdated,
        unchanged: t.unchanged,
        deleted: t.deleted,
        stale_refused: t.staleRefused,
        embeddings_requested: t.embeddingsRequested,
        cache_hits: t.cacheHits,
        dead_lettered: t.deadLettered,
        latency_p50_ms: t.latencyP50Ms,
        latency_p99_ms: t.latencyP99Ms,
      });
    }
    if (!deps.statusKey) return;
    await redis.hset(deps.statusKey, {
      updated_at: new Date().toISOString(),
      stream,
      lease_owner: lease.owner,
      records_per_sec: Math.round(rate),
      records: t.records,
      upserted: t.upserted,
      fields_updated: t.fieldsUpdated,
      unchanged: t.unchanged,
      deleted: t.deleted,
      stale_refused: t.staleRefused,
      embeddings_requested: t.embeddingsRequested,
      cache_hits: t.cacheHits,
      dead_lettered: t.deadLettered,
      failed: t.failed,
      latency_p50_ms: t.latencyP50Ms ?? '',
      latency_p99_ms: t.latencyP99Ms ?? '',
      shards: JSON.stringify([...stats.shards.values()]),
      load_in_progress: load ? 1 : 0,
      load_started_at: load ? new Date(load.at).toISOString() : '',
      load_row_events: load ? t.rowEvents - load.base.rowEvents : 0,
      last_load: lastLoad ? JSON.stringify(lastLoad) : '',
    });
  }

  /** Takes the lease, waiting (and saying who holds it) while another consumer has it. false: stopped. */
  async function waitForLease(): Promise<boolean> {
    stats.state = 'waiting-lease';
    leaseGone = false;
    const pollMs = Math.max(100, Math.floor(leaseTtl / 5));
    for (let n = 0; !stopping; n++) {
      try {
        if (await lease.tryAcquire()) {
          stats.leaseHolder = null;
          stats.leaseTaken++;
          log.info('embedder consumer lease taken', { key: lease.key, owner: lease.owner });
          return true;
        }
        const h = await lease.holder();
        stats.leaseHolder = h;
        if (n % 20 === 0)
          log.warn('another embedder consumer holds the lease of this stream: waiting', {
            key: lease.key,
            holder_host: h.host,
            holder_pid: h.pid,
            holder_since: h.since,
            expires_in_ms: h.ttlMs,
          });
      } catch (e) {
        log.warn('cannot reach Redis for the consumer lease: retrying', { error: errorMessage(e) });
      }
      await sleep(pollMs);
    }
    return false;
  }

  async function main(): Promise<ConsumerStats> {
    try {
      while (!stopping) {
        if (!(await waitForLease())) break;
        keeper = keepLease(lease, leaseTtl, loseLease);
        stats.state = 'applying';
        await runLeased();
        keeper.stop();
        if (!stopping)
          log.warn('lease lost: shards stopped; waiting to take the lease again', { key: lease.key });
      }
    } finally {
      keeper?.stop();
      stats.state = 'stopped';
      if (!leaseGone) {
        // released on a clean stop so a successor starts at once (it would take over at expiry anyway)
        await lease
          .release()
          .catch((e: unknown) =>
            log.warn('cannot release the consumer lease (it expires by itself)', { error: errorMessage(e) }),
          );
      }
    }
    log.info('embedder consumer stopped', {
      records: stats.totals.records,
      upserted: stats.totals.upserted,
      deleted: stats.totals.deleted,
      dead_lettered: stats.totals.deadLettered,
      checkpoints: Object.fromEntries([...stats.shards.values()].map((s) => [s.shardId, s.checkpoint])),
    });
    return stats;
  }

  /** Runs every shard while the lease is ours: until stop(), idle exit or a lease loss. */
  async function runLeased(): Promise<void> {
    const running = new Map<string, Promise<void>>();
    const discoverEvery = opts.discoverEveryMs ?? 10_000;
    const maintenanceEvery = opts.maintenanceEveryMs ?? 1_000;
    let lastDiscover = 0;
    let lastMaintenance = 0;
    let idleSince = Date.now();
    while (!halted()) {
      const now = Date.now();
      if (now - lastDiscover >= discoverEvery || rediscover) {
        try {
          const shards = await listShards();
          const cps = await readCheckpoints();
          const listed = new Set(shards.map((s) => s.ShardId as string));
          for (const s of shards) {
            const id = s.ShardId as string;
            if (running.has(id) || cps[id + CLOSED] === '1') continue;
            const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((x): x is string => !!x);
            const waiting = parents.filter((pid) => listed.has(pid) && cps[pid + CLOSED] !== '1');
            if (waiting.length > 0) continue;
            log.info('reading shard', { shard: id, after: cps[id] ?? 'TRIM_HORIZON' });
            running.set(id, runShard(id, cps[id] ?? null));
          }
          lastDiscover = now;
          rediscover = false;
        } catch (e) {
          stats.errors++;
          log.error('cannot list shards; retrying', {
            error: e instanceof DrugsyncError ? e : kinesisError(e, 'ListShards'),
          });
          lastDiscover = now;
        }
      }
      if (now - lastMaintenance >= maintenanceEvery) {
        lastMaintenance = now;
        try {
          await runMaintenance(deps.apply);
          await writeStatus();
        } catch (e) {
          stats.errors++;
          log.error('maintenance failed; will retry', {
            error: e instanceof DrugsyncError ? e : errorMessage(e),
          });
        }
      }
      if (opts.exitWhenIdleMs !== undefined) {
        const shards = [...stats.shards.values()];
        const caughtUp =
          shards.length > 0 && shards.every((s) => s.closed || (s.idle && s.millisBehindLatest === 0));
        const last = Math.max(stats.lastRecordAt ?? 0, idleSince);
        if (!caughtUp) idleSince = Date.now();
        else if (Date.now() - last >= opts.exitWhenIdleMs) {
          log.info('idle: every shard caught up', { idle_ms: Date.now() - last });
          stop();
          break;
        }
      }
      await sleep(Math.min(250, maintenanceEvery));
    }
    await Promise.all(running.values());
    if (leaseGone) return; // the status hash is the new holder's now
    try {
      await writeStatus();
    } catch (e) {
      log.warn('could not write the final status', { error: errorMessage(e) });
    }
  }

  const done = main();
  return { stop, stats, done, owner: lease.owner };
}
