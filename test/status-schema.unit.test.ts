/**
 * The status hashes' schemas (services/core/status/): what the services write and what `drugsync status` and
 * `drugsync stream` read are one declaration. Round trips, refusals and tolerant reads of each codec; then the
 * publishers run as the services run them (waiting for a lease, streaming, failing; a load applied then
 * finished), their hashes read back, and every field the status model, table and live line read is checked
 * to be one the schema knows and the publisher wrote.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BackfillSummary } from '../services/backfill/backfill.ts';
import { PublisherTotals, createReaderStats } from '../services/binlog-reader/reader-stats.ts';
import { ReaderStatusPublisher } from '../services/binlog-reader/status.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createLogger } from '../services/core/log.ts';
import { createMetricEmitter } from '../services/core/metrics.ts';
import { serializePosition } from '../services/core/position.ts';
import { backfillStatus, backfillSummarySchema } from '../services/core/status/backfill.ts';
import type { BackfillRunSummary, BackfillStatus } from '../services/core/status/backfill.ts';
import { embedderProgressAt, embedderStatus } from '../services/core/status/embedder.ts';
import { readerProgressAt, readerStatus } from '../services/core/status/reader.ts';
import type { ReaderStatus } from '../services/core/status/reader.ts';
import { resyncStatus } from '../services/core/status/resync.ts';
import type { ResyncStatus } from '../services/core/status/resync.ts';
import { ConsumerStatusPublisher } from '../services/embedder/consumer-status.ts';
import type { ConsumerStats } from '../services/embedder/consumer-types.ts';
import { emptyStats } from '../services/embedder/types.ts';
import { statusModel } from '../services/cli/status-model.ts';
import type { StatusSources } from '../services/cli/status-model.ts';
import { renderStatus } from '../services/cli/status-view.ts';
import { statusLineOf } from '../services/cli/stream.ts';

const KEYS = makeKeys({
  REDIS_INDEX: 'drugs_idx',
  REDIS_DOC_PREFIX: 'drug:',
  REDIS_STATE_PREFIX: 'drugsync:',
});

const T0 = Date.parse('2025-03-04T09:00:00.000Z');
const quiet = createLogger({ service: 'test' }, { level: 'error', json: true, write: () => {} });

const READER: ReaderStatus = {
  state: 'streaming',
  owner: 'ip-10-0-1-17:311:9f2c41ab',
  pid: 311,
  updated_at: T0,
  events_total: 1234567,
  tx_total: 45210,
  events_per_sec: 812.4,
  tx_per_sec: 30.2,
  lag_seconds: 1.8,
  stall_seconds: 0.2,
  put_latency_ms: 12.5,
  put_retried_records: 3,
  queue_records: 250,
  restarts: 1,
  period_seconds: 10,
  checkpoint: serializePosition({ file: 'mysql-bin.000007', pos: 1843211 }),
  checkpoint_commit_ts: T0 - 1_400,
  last_commit_ts: T0 - 900,
};

const RUN_SUMMARY: BackfillSummary = {
  total_processed: 98234,
  successful: 98230,
  failed: 4,
  duration_seconds: 412.7,
  drugs_per_second: 238,
  completed: false,
  embeddings_requested: 41210,
  embedding_cache_hits: 57020,
  snapshot_position: 'mysql-bin.000006:4411',
  deleted_stale: 12,
  part: '2/4',
  resumed: true,
  dry_run: false,
  snapshot_method: 'table-lock',
  eligible_in_snapshot: 98234,
  snapshot_seconds: 3.1,
};

describe('status schemas: codecs', () => {
  it('writes each field as text and reads the same value back', () => {
    // Prepare
    const backfill: BackfillStatus = { updated_at: T0, completed: false, last_summary: RUN_SUMMARY };
    const resync: ResyncStatus = {
      phase: 'done',
      updated_at: T0,
      resyncs: ['00000000000000000007:000000001843100:0000', '00000000000000000007:000000001843150:0000'],
      position: '00000000000000000007:000000001843211:0000',
      written: 1480,
      seconds: 58.2,
      finished_at: T0,
    };
    // Act
    const readerHash = readerStatus.encode(READER);
    const backfillHash = backfillStatus.encode(backfill);
    const resyncHash = resyncStatus.encode(resync);
    // Assess: the text (times in ms for the reader, ISO dates elsewhere, as before the schemas)
    expect(readerHash).toMatchObject({
      state: 'streaming',
      updated_at: String(T0),
      events_per_sec: '812.4',
      lag_seconds: '1.8',
      stall_seconds: '0.2',
    });
    expect(readerHash).not.toHaveProperty('last_error');
    expect(backfillHash).toMatchObject({ updated_at: '2025-03-04T09:00:00.000Z', completed: 'false' });
    expect(JSON.parse(backfillHash.last_summary!)).toEqual(RUN_SUMMARY);
    expect(resyncHash.resyncs).toBe(resync.resyncs!.join(','));
    // and the values back, nothing to report
    expect(readerStatus.decode(readerHash)).toEqual({ value: READER, problems: [] });
    expect(backfillStatus.decode(backfillHash)).toEqual({ value: backfill, problems: [] });
    expect(resyncStatus.decode(resyncHash)).toEqual({ value: resync, problems: [] });
  });

  it('refuses to write a value the schema does not describe, naming the field', () => {
    // Act
    const attempt = (f: () => unknown) => {
      try {
        f();
        return null;
      } catch (e) {
        return e;
      }
    };
    const nan = attempt(() => readerStatus.encode({ ...READER, events_per_sec: Number.NaN }));
    const state = attempt(() =>
      readerStatus.encode({ ...READER, state: 'sleeping' as ReaderStatus['state'] }),
    );
    const comma = attempt(() => resyncStatus.encode({ phase: 'scan', updated_at: T0, resyncs: ['a,b'] }));
    // Assess
    for (const [e, fieldName] of [
      [nan, 'events_per_sec'],
      [state, 'state'],
      [comma, 'resyncs'],
    ] as const) {
      expect(isDrugsyncError(e, 'INTERNAL')).toBe(true);
      expect(String((e as { context: { problems: string } }).context.problems)).toContain(fieldName);
    }
  });

  it('reads what it can of a damaged hash and names the rest; an empty hash is no status', () => {
    // Prepare: an embedder hash cut short, with a truncated JSON value and a field of a later version
    const full = embedderStatus.encode({
      updated_at: T0,
      state: 'applying',
      stream: 'drugsync-changes',
      lease_owner: 'ip-10-0-1-23:4242:77ac01d2',
      lease_holder: null,
      records_per_sec: 1520,
      records: 45000,
      upserted: 44000,
      fields_updated: 700,
      unchanged: 250,
      deleted: 50,
      stale_refused: 0,
      embeddings_requested: 310,
      cache_hits: 43690,
      dead_lettered: 0,
      failed: 0,
      latency_p50_ms: null,
      latency_p99_ms: null,
      stall_seconds: 0.4,
      millis_behind_latest: 2400,
      shards: [],
      load_in_progress: false,
      load_started_at: null,
      load_row_events: 0,
      last_load: null,
    });
    const { records: _r, failed: _f, ...cut } = full;
    const damaged = { ...cut, last_load: '{"started_at":"2025-03-04T08:', later_field: 'x' };
    // Act
    const d = embedderStatus.decode(damaged);
    // Assess
    expect(d?.value).toMatchObject({
      records_per_sec: 1520,
      latency_p50_ms: null,
      millis_behind_latest: 2400,
    });
    expect(d?.value).not.toHaveProperty('last_load');
    expect(d?.problems).toEqual([
      'embedder status: no records, failed (written by another version?)',
      expect.stringMatching(/^embedder status: last_load "\{.*" unreadable \(not JSON: /),
    ]);
    expect(embedderStatus.decode({})).toBeNull();
  });

  it("ages the heartbeats the services wrote: a service that stops writing keeps stalling, as its alarm's missing data does", () => {
    // Prepare: written at T0
    const reader = readerStatus.decode(readerStatus.encode(READER))!.value;
    const embedder = { updated_at: T0, stall_seconds: 0.4, millis_behind_latest: 2400 };
    // Act / Assess
    // within its 10 s period the reader's word stands; past it, each second of silence counts
    expect(readerProgressAt(reader, T0 + 9_000)).toEqual({ lagSeconds: 1.8, stallSeconds: 0.2 });
    expect(readerProgressAt(reader, T0 + 90_000)).toEqual({ lagSeconds: 81.8, stallSeconds: 80.2 });
    expect(readerProgressAt({ ...reader, period_seconds: undefined }, T0 + 90_000)).toEqual({
      lagSeconds: 91.8,
      stallSeconds: 90.2,
    });
    expect(readerProgressAt(reader, T0 - 5_000)).toEqual({ lagSeconds: 1.8, stallSeconds: 0.2 });
    expect(readerProgressAt({ ...reader, stall_seconds: undefined }, T0)).toBeNull();
    expect(embedderProgressAt(embedder, T0 + 10_000)).toEqual({
      stallSeconds: 10.4,
      millisBehindLatest: 12_400,
    });
    expect(embedderProgressAt({ ...embedder, millis_behind_latest: null }, T0)).toEqual({
      stallSeconds: 0.4,
      millisBehindLatest: null,
    });
  });

  it("holds the backfill's run summary as the backfill writes it", () => {
    // Assess: the same shape both ways (a field added on one side only fails to compile here) and valid
    const toSchema: (s: BackfillSummary) => BackfillRunSummary = (s) => s;
    const fromSchema: (s: BackfillRunSummary) => BackfillSummary = (s) => s;
    expect(backfillSummarySchema.parse(toSchema(RUN_SUMMARY))).toEqual(fromSchema(RUN_SUMMARY));
  });
});

// ---------------------------------------------------------------- the publishers, read back

/** A Redis hash as HSET leaves it: each write merged over the previous ones. */
class HashRecorder {
  readonly hash: Record<string, string> = {};
  readonly written = new Set<string>();
  hset(_key: string, fields: Record<string, string>): Promise<number> {
    Object.assign(this.hash, fields);
    for (const k of Object.keys(fields)) this.written.add(k);
    return Promise.resolve(Object.keys(fields).length);
  }
}

/** The reader as it runs: waits for the lease, streams a backlog, fails a PutRecords and backs off. */
async function readerHash(): Promise<HashRecorder> {
  const redis = new HashRecorder();
  let now = T0;
  const totals = new PublisherTotals();
  const stats = createReaderStats(totals);
  const lines: string[] = [];
  const publisher = new ReaderStatusPublisher({
    stats,
    totals,
    owner: 'ip-10-0-1-17:311:9f2c41ab',
    log: quiet,
    redis,
    key: KEYS.serviceStatus('binlog-reader'),
    metrics: createMetricEmitter('reader', 'prod', { enabled: true, write: (l) => lines.push(l) }),
    periodSeconds: 10,
    now: () => now,
  });
  now += 1_000;
  stats.state = 'waiting-lease';
  await publisher.publish({ state: 'waiting-lease', lease_holder: 'ip-10-0-2-9:77:0c1d2e3f' });
  now += 10_000;
  const session = {
    records: 5_000,
    batches: 10,
    retriedRecords: 3,
    failedCalls: 0,
    lastPutMs: 14,
    putMsTotal: 125,
  };
  totals.track({ stats: session });
  Object.assign(stats, { state: 'streaming', rowEvents: 5_000, transactions: 120, queueRecords: 250 });
  Object.assign(stats, {
    checkpoint: { file: 'mysql-bin.000007', pos: 1843211 },
    checkpointCommitTs: now - 1_400,
  });
  stats.lastEventTs = now - 900;
  await publisher.publish({}, true);
  now += 10_000;
  Object.assign(stats, { state: 'backoff', restarts: 1 });
  const error = 'KINESIS_PUT_FAILED: PutRecords failed: ProvisionedThroughputExceededException';
  await publisher.publish({ last_error: error, last_error_at: now });
  expect(lines).toHaveLength(1); // the metrics line's EMF record, once
  return redis;
}

/** The embedder as it runs: applies a 3,000-row load, then goes quiet and summarises it. */
async function embedderHashes(): Promise<{ redis: HashRecorder; during: Record<string, string> }> {
  const redis = new HashRecorder();
  let now = T0;
  const stats: ConsumerStats = {
    state: 'applying',
    leaseHolder: null,
    leaseTaken: 1,
    leaseLost: 0,
    startedAt: T0,
    totals: emptyStats(),
    shards: new Map(),
    lastRecordAt: null,
    errors: 0,
  };
  const target = {
    redis,
    statusKey: KEYS.serviceStatus('embedder'),
    stream: 'drugsync-changes',
    leaseOwner: 'ip-10-0-1-23:4242:77ac01d2',
    log: quiet,
  };
  const publisher = new ConsumerStatusPublisher(
    target,
    stats,
    { minRecords: 1000, quietSeconds: 3 },
    () => now,
  );
  now += 1_000;
  const totals = { records: 3_000, rowEvents: 3_000, ndcs: 2_950, upserted: 2_900, fieldsUpdated: 60 };
  Object.assign(stats.totals, totals, { embeddingTexts: 2_900, embeddingsRequested: 40, cacheHits: 2_860 });
  Object.assign(stats.totals, { latencyMs: [180, 240, 900], latencyP50Ms: 240, latencyP99Ms: 900 });
  stats.lastRecordAt = now;
  stats.shards.set('shardId-000000000000', {
    shardId: 'shardId-000000000000',
    checkpoint: '49661025378734663475857260861508890000000000000000000002:0',
    millisBehindLatest: 1_200,
    closed: false,
    idle: false,
    progressAt: now,
    readAt: now,
    batches: 6,
    errors: 1,
  });
  await publisher.publish(stats);
  const during = { ...redis.hash };
  now += 5_000;
  await publisher.publish(stats);
  return { redis, during };
}

/** The sources `status` would read with these hashes beside a caught-up binlog and stream. */
function sourcesWith(services: Record<string, Record<string, string>>, resync: Record<string, string>) {
  const at = { file: 'mysql-bin.000007', pos: 1843211 };
  const sources: StatusSources = {
    collectedAt: T0 + 23_000,
    binlog: {
      checkpoint: at,
      snapshot: at,
      server: at,
      behindBytes: 0,
      retentionSeconds: 86400,
      checkpointFilePresent: true,
      warnings: [],
    },
    kinesis: { stream: 'drugsync-changes', shards: [] },
    redis: { documents: 98234, eligibleRows: 98234, embeddingCache: 41210, deadLetters: 0 },
    services,
    table: { truncatePending: null, resyncsPending: [], resync },
  };
  return sources;
}

/** Wraps each schema's decoded value in a proxy that records the fields read from it. */
function recordReads() {
  const reads: Record<string, Set<string>> = {};
  for (const schema of [readerStatus, embedderStatus, backfillStatus, resyncStatus]) {
    const seen = (reads[schema.name] = new Set<string>());
    const decode = schema.decode.bind(schema);
    vi.spyOn(schema, 'decode').mockImplementation((hash) => {
      const d = decode(hash);
      if (!d) return d;
      const value = new Proxy(d.value, {
        get: (target, key, receiver) => {
          if (typeof key === 'string') seen.add(key);
          return Reflect.get(target, key, receiver) as unknown;
        },
      });
      return { ...d, value } as typeof d;
    });
  }
  return reads;
}

describe('status schemas: every field status reads is one its publisher writes', () => {
  afterEach(() => vi.restoreAllMocks());

  it('reads back the reader and the embedder as their publishers wrote them, nothing missing', async () => {
    // Prepare
    const reader = await readerHash();
    const { redis: embedder, during } = await embedderHashes();
    const backfill = backfillStatus.encode({
      updated_at: T0,
      part: '2/4',
      done: 98234,
      total: 98234,
      failed: 4,
      snapshot: 'mysql-bin.000006:4411',
      completed: false,
      last_summary: RUN_SUMMARY,
    });
    const resync = resyncStatus.encode({ phase: 'compare', updated_at: T0, done: 40000, total: 98234 });
    const reads = recordReads();
    // Act: the model, the table and the live line, during the load and after it
    const renders = [during, embedder.hash].map((embedderHash) => {
      const services = { 'binlog-reader': reader.hash, embedder: embedderHash, backfill };
      const m = statusModel(sourcesWith(services, resync), { retentionWarnSeconds: 21600 });
      const line = statusLineOf(
        {
          reader: readerStatus.decode(reader.hash)!.value,
          embedder: embedderStatus.decode(embedderHash)!.value,
          deadLetters: 0,
        },
        {},
        T0 + 23_000,
      );
      return { m, text: [...renderStatus(m, { color: false }), line].join('\n') };
    });
    // Assess: the publishers' hashes read back whole
    for (const { m } of renders) expect(m.report.problems).toEqual([]);
    expect(renders[0]!.m.report.load.inProgress).toBe(true);
    expect(renders[1]!.m.report.load.last).toMatchObject({ row_events: 3000, written: 2900 });
    // every field read is a field of its schema, and for the reader and the embedder one their publisher wrote
    for (const schema of [readerStatus, embedderStatus, backfillStatus, resyncStatus]) {
      const read = [...reads[schema.name]!];
      expect(read.length, schema.name).toBeGreaterThan(0);
      expect(
        read.filter((f) => !(schema.fields as readonly string[]).includes(f)),
        schema.name,
      ).toEqual([]);
    }
    expect([...reads[readerStatus.name]!].filter((f) => !reader.written.has(f))).toEqual([]);
    expect([...reads[embedderStatus.name]!].filter((f) => !embedder.written.has(f))).toEqual([]);
    // and what they wrote shows, 2 s after the reader's last write (within its 10 s period: as written): its
    // checkpoint moved at T0+11 s (commit T0+9.6 s), so at T0+21 s stall 10 s and lag 11.4 s; the embedder's
    // shard was read and progressed at T0+1 s (1.2 s behind then), its status aged to the report: stall
    // 22 s, 1.2 + 22 s behind, during the load and after it
    const [duringLoad, afterLoad] = renders.map((r) => r.text);
    expect(duringLoad).toMatch(/^binlog-reader +backoff +0 B · 11 s · stall 10 s +0 events\/s · 0 tx\/s /m);
    expect(duringLoad).toContain('binlog-reader last error (2 s ago): KINESIS_PUT_FAILED');
    expect(duringLoad).toMatch(/^embedder +loading +0 records · 23 s · stall 22 s +3,000 records\/s /m);
    expect(duringLoad).toMatch(/^load +in progress .* 3,000 row events applied$/m);
    expect(duringLoad).toContain('1 shard errors · latency p50 240 ms, p99 900 ms');
    expect(duringLoad).toMatch(
      /^reader 0\.0 ev\/s, lag 11\.4 s, stall 10\.0 s \| embedder 3000 rec\/s, stall 22\.0 s, latency p50 240 ms p99 900 ms \| embeddings 0\.0\/s, cache hits 99% \| dead letters 0$/m,
    );
    expect(afterLoad).toMatch(/^embedder +idle +0 records · 23 s · stall 22 s +0 records\/s /m);
    expect(afterLoad).toMatch(
      /^last load +done .*3,000 row events in 1 s · 2,900 written, 60 fields updated/m,
    );
    expect(renders.map((r) => r.text).join('\n')).not.toMatch(/undefined|NaN/);
  });

  it('leaves the hashes to the schemas: the view modules see decoded statuses only', () => {
    // Prepare: the modules that draw (the model decodes)
    const dir = path.join(import.meta.dirname, '..', 'services', 'cli');
    const drawers = ['status-view.ts', 'status-rows.ts', 'status-job-rows.ts', 'status-format.ts'];
    // Act
    const offending = drawers.flatMap((f) =>
      fs
        .readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ at: `${f}:${i + 1}`, line }))
        .filter(({ line }) => /\.services\b|table\.resync|hgetall|\bnum\(/.test(line)),
    );
    // Assess
    expect(offending).toEqual([]);
  });
});
