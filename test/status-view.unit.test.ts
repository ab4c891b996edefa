/**
 * `drugsync status` without servers: the table drawn from what status-gather.ts reads (status-model.ts makes
 * the report, status-view.ts draws it) and the pure parts of gathering it. The status hashes are written by
 * the schemas the services write them with (core/status/), with values like the running pipeline's (the
 * e2e suite's `status --json`); the clock is fixed by `collectedAt`.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serializePosition } from '../services/core/position.ts';
import { builtVector, vectorSubstitutions } from '../services/core/redis/index-info.ts';
import { vectorSpec } from '../services/core/redis/index-schema.ts';
import { backfillStatus } from '../services/core/status/backfill.ts';
import type { BackfillStatus } from '../services/core/status/backfill.ts';
import { embedderStatus } from '../services/core/status/embedder.ts';
import type { EmbedderStatus } from '../services/core/status/embedder.ts';
import { readerStatus } from '../services/core/status/reader.ts';
import type { ReaderStatus } from '../services/core/status/reader.ts';
import { resyncStatus } from '../services/core/status/resync.ts';
import { binlogBytesBehind } from '../services/cli/status-gather.ts';
import { binlogTiming, loadStatus, statusModel } from '../services/cli/status-model.ts';
import type { ShardStatus, StatusModel, StatusSources } from '../services/cli/status-model.ts';
import {
  bytes,
  colorWanted,
  count,
  duration,
  rate,
  redrawPrefix,
  renderStatus,
  statusRows,
  statusWarnings,
} from '../services/cli/status-view.ts';

const NOW = Date.parse('2025-03-04T10:00:00.000Z');
const ago = (seconds: number) => NOW - seconds * 1000;
const iso = (secondsAgo: number) => new Date(ago(secondsAgo)).toISOString();
const CHECKPOINT = { file: 'mysql-bin.000007', pos: 1843211 };

function shard(i: number, lagRecords: number | null, over: Partial<ShardStatus> = {}): ShardStatus {
  return {
    shardId: `shardId-00000000000${i}`,
    open: true,
    checkpoint: `4966102537873466347585726086150889${i}`,
    latest: `4966102537873466347585726086150889${i}`,
    lagRecords,
    lagBounded: false,
    ...over,
  };
}

/** A reader streaming on an idle database: caught up by its last heartbeat, progress just proven. */
const READER: ReaderStatus = {
  state: 'streaming',
  owner: 'ip-10-0-1-17:311:9f2c41ab',
  pid: 311,
  updated_at: ago(4),
  events_total: 1234567,
  tx_total: 45210,
  events_per_sec: 0.4,
  tx_per_sec: 0.1,
  lag_seconds: 1.8,
  stall_seconds: 0.2,
  put_latency_ms: 12.5,
  put_retried_records: 0,
  queue_records: 0,
  restarts: 1,
  period_seconds: 10,
  checkpoint: serializePosition(CHECKPOINT),
  checkpoint_commit_ts: ago(95),
  last_commit_ts: ago(95),
};

/** An idle embedder holding its lease, after a 10,000-row load. */
const EMBEDDER: EmbedderStatus = {
  updated_at: ago(2),
  state: 'applying',
  stream: 'drugsync-changes',
  lease_owner: 'ip-10-0-1-23:4242:77ac01d2',
  lease_holder: null,
  records_per_sec: 0,
  records: 12345,
  upserted: 11870,
  fields_updated: 310,
  unchanged: 120,
  deleted: 45,
  stale_refused: 0,
  embeddings_requested: 96,
  cache_hits: 11774,
  dead_lettered: 0,
  failed: 0,
  latency_p50_ms: 18,
  latency_p99_ms: 240,
  stall_seconds: 0.6,
  millis_behind_latest: 0,
  shards: [],
  load_in_progress: false,
  load_started_at: null,
  load_row_events: 0,
  last_load: {
    started_at: iso(600),
    seconds: 41.5,
    row_events: 10000,
    ndcs: 9800,
    written: 9650,
    fields_updated: 120,
    unchanged: 30,
    deleted: 200,
    stale_refused: 0,
    names_embedded: 48,
    embeddings_requested: 2,
    cache_hits: 9602,
    dead_lettered: 0,
  },
};

const BACKFILL: BackfillStatus = {
  updated_at: ago(7200),
  part: '1/1',
  done: 98234,
  total: 98234,
  failed: 0,
  snapshot: 'mysql-bin.000006:4411',
  completed: true,
  last_summary: {
    total_processed: 98234,
    successful: 98234,
    failed: 0,
    duration_seconds: 412.7,
    drugs_per_second: 238,
    completed: true,
    embeddings_requested: 41210,
    embedding_cache_hits: 57024,
    snapshot_position: 'mysql-bin.000006:4411',
    deleted_stale: 0,
    part: '1/1',
    resumed: false,
    dry_run: false,
    snapshot_method: 'binlog-snapshot',
    eligible_in_snapshot: 98234,
    snapshot_seconds: 3.1,
  },
};

/** A drained pipeline: backfill done, reader streaming at the server's position, embedder idle. */
function drainedSources(): StatusSources {
  return {
    collectedAt: NOW,
    binlog: {
      checkpoint: CHECKPOINT,
      snapshot: { file: 'mysql-bin.000006', pos: 4411 },
      server: CHECKPOINT,
      behindBytes: 0,
      retentionSeconds: 7 * 86400,
      checkpointFilePresent: true,
      warnings: [],
    },
    kinesis: { stream: 'drugsync-changes', shards: [shard(0, 0), shard(1, 0)] },
    redis: { documents: 98234, eligibleRows: 98234, embeddingCache: 41210, deadLetters: 0 },
    services: {
      backfill: backfillStatus.encode(BACKFILL),
      'binlog-reader': readerStatus.encode(READER),
      embedder: embedderStatus.encode(EMBEDDER),
    },
    table: { truncatePending: null, resyncsPending: [], resync: {} },
  };
}

/** The same pipeline mid-way through a bulk load, with a reader that stopped reporting and failures. */
function troubledSources(): StatusSources {
  const s = drainedSources();
  return {
    ...s,
    binlog: { ...s.binlog, server: { file: 'mysql-bin.000008', pos: 2000 }, behindBytes: 3_500_000 },
    kinesis: {
      stream: 'drugsync-changes',
      shards: [shard(0, 10000, { lagBounded: true }), shard(1, 4321), shard(2, 0, { open: false })],
    },
    redis: { ...s.redis, documents: 98000, deadLetters: 3 },
    services: {
      ...s.services,
      'binlog-reader': readerStatus.encode({
        ...READER,
        state: 'backoff',
        updated_at: ago(400),
        lag_seconds: 12.4,
        stall_seconds: 10,
        checkpoint_commit_ts: ago(6 * 86400 + 81500),
        last_error: 'KINESIS_PUT_FAILED: PutRecords failed: ProvisionedThroughputExceededException',
        last_error_at: ago(410),
      }),
      embedder: embedderStatus.encode({
        ...EMBEDDER,
        records_per_sec: 1520,
        millis_behind_latest: 2400,
        load_in_progress: true,
        load_started_at: ago(30),
        load_row_events: 45000,
        last_load: null,
      }),
    },
    table: {
      truncatePending: null,
      resyncsPending: [{ pos: '00000000000000000007:000000001843211:0000', statement: 'RENAME TABLE …' }],
      resync: resyncStatus.encode({ phase: 'compare', done: 40000, total: 98234, updated_at: ago(1) }),
    },
  };
}

const model = (s: StatusSources): StatusModel => statusModel(s, { retentionWarnSeconds: 21600 });
const rowOf = (lines: string[], part: string) => lines.find((l) => l.startsWith(`${part} `)) ?? '';

describe('status formats', () => {
  it('counts with thousands separators, rates, bytes and durations with units', () => {
    expect(count(1234567)).toBe('1,234,567');
    expect(count(98234, 'documents')).toBe('98,234 documents');
    expect(rate(1520, 'records')).toBe('1,520 records/s');
    expect(rate(0.4, 'events')).toBe('0.4 events/s');
    expect(bytes(512)).toBe('512 B');
    expect(bytes(3_500_000)).toBe('3.3 MiB');
    expect(duration(0.35)).toBe('0.4 s');
    expect(duration(42)).toBe('42 s');
    expect(duration(372.4)).toBe('6 min 12 s');
    expect(duration(7 * 86400 - 95)).toBe('6 d 23 h');
    expect(duration(7200)).toBe('2 h');
  });
});

describe('status table', () => {
  it('draws one aligned row per part of a drained pipeline, and no warnings', () => {
    // Act
    const lines = renderStatus(model(drainedSources()), { color: false });
    // Assess: a header, then the parts in pipeline order, columns aligned
    expect(lines.map((l) => l.split(/\s{2,}/)[0])).toEqual([
      'PART',
      'binlog',
      'binlog-reader',
      'kinesis',
      'embedder',
      'redis',
      'backfill',
      'last load',
    ]);
    const stateColumn = lines[0]!.indexOf('STATE');
    for (const l of lines.slice(1)) expect(l[stateColumn - 1]).toBe(' ');
    expect(rowOf(lines, 'binlog')).toContain('server mysql-bin.000007:1843211');
    expect(rowOf(lines, 'binlog')).toContain('retention 7 d, 6 d 23 h left for the checkpoint');
    expect(rowOf(lines, 'binlog')).toContain('98,234 eligible rows');
    // lag and stall are the reader's heartbeats as written 4 s ago (its next write is due in 6 s)
    expect(rowOf(lines, 'binlog-reader')).toMatch(
      /^binlog-reader +streaming +0 B · 1.8 s · stall 0.2 s +0.4 events\/s · 0.1 tx\/s/,
    );
    expect(rowOf(lines, 'binlog-reader')).toContain('mysql-bin.000007:1843211, commit 1 min 35 s ago');
    expect(rowOf(lines, 'binlog-reader')).toContain('1,234,567 events, 45,210 transactions');
    expect(rowOf(lines, 'binlog-reader')).not.toContain('lease held');
    expect(rowOf(lines, 'kinesis')).toMatch(/^kinesis +ok +0 records .*2 shards \(2 open\) · all caught up/);
    expect(rowOf(lines, 'embedder')).toMatch(
      /^embedder +idle +0 records · 2 s · stall 2.6 s +0 records\/s +updated 2 s ago/,
    );
    expect(rowOf(lines, 'embedder')).toContain('12,345 records, 11,870 written, 310 fields updated');
    expect(rowOf(lines, 'embedder')).toContain('latency p50 18 ms, p99 240 ms');
    expect(rowOf(lines, 'redis')).toMatch(
      /^redis +in sync .*98,234 documents \/ 98,234 eligible rows · 41,210 cached/,
    );
    expect(rowOf(lines, 'backfill')).toMatch(/^backfill +completed .*238 drugs\/s +updated 2 h ago/);
    expect(rowOf(lines, 'backfill')).toContain('98,234 processed, 98,234 successful, 0 failed');
    expect(rowOf(lines, 'last load')).toMatch(
      /done .*241 row events\/s +started 10 min ago +10,000 row events in 42 s/,
    );
    expect(lines.some((l) => l.startsWith('WARNING'))).toBe(false);
    expect(lines.join('\n')).not.toMatch(/\{|undefined|NaN/);
  });

  it('shows a load in progress, lag, stale services and failures, with the warnings last', () => {
    // Act
    const lines = renderStatus(model(troubledSources()), { color: false });
    // Assess
    expect(rowOf(lines, 'binlog-reader')).toMatch(
      /^binlog-reader +backoff, stale +3.3 MiB · 6 min 42 s · stall 6 min 40 s /,
    );
    expect(rowOf(lines, 'kinesis')).toMatch(/^kinesis +ok +≥ 14,321 records/);
    expect(rowOf(lines, 'kinesis')).toContain('3 shards (2 open)');
    expect(rowOf(lines, 'kinesis')).toContain(
      'shardId-000000000000 ≥ 10,000 behind, shardId-000000000001 4,321 behind',
    );
    expect(rowOf(lines, 'embedder')).toMatch(
      /^embedder +loading +14,321 records · 4.4 s · stall 2.6 s +1,520/,
    );
    expect(rowOf(lines, 'load')).toMatch(
      /^load +in progress +14,321 records +1,520 records\/s +started 30 s ago +45,000 row events/,
    );
    expect(rowOf(lines, 'redis')).toMatch(/^redis +differs +234 documents missing/);
    expect(rowOf(lines, 'resync')).toMatch(/^resync +compare .*40,000 \/ 98,234 rows/);
    expect(rowOf(lines, 'table')).toContain('1 re-sync(s) (table replaced: RENAME TABLE …)');
    const warnings = lines.filter((l) => l.startsWith('WARNING'));
    expect(lines.slice(-warnings.length)).toEqual(warnings);
    expect(warnings).toEqual([
      "WARNING  only 4900 s of binlog retention left before the reader's checkpoint could be purged",
      'WARNING  binlog-reader has not updated its status for 6 min 40 s: is it running?',
      'WARNING  binlog-reader last error (6 min 50 s ago): KINESIS_PUT_FAILED: PutRecords failed: ProvisionedThroughputExceededException',
      'WARNING  3 dead-lettered record(s): see `drugsync dlq list`',
    ]);
  });

  it('shows a reader and an embedder that write their status but prove no progress as stalled', () => {
    // Prepare: both wait for a lease another process holds; the reader for 4 min, the embedder for 6 min
    const s = drainedSources();
    s.services['binlog-reader'] = readerStatus.encode({
      ...READER,
      state: 'waiting-lease',
      lease_holder: 'ip-10-0-2-9:77:0c1d2e3f',
      lag_seconds: 245,
      stall_seconds: 239,
    });
    s.services.embedder = embedderStatus.encode({
      ...EMBEDDER,
      state: 'waiting-lease',
      lease_holder: 'ip-10-0-2-9:78:aa00bb11',
      stall_seconds: 358,
      millis_behind_latest: null,
    });
    // Act
    const m = model(s);
    const rows = statusRows(m);
    // Assess
    const reader = rows.find((x) => x.part === 'binlog-reader');
    expect(reader).toMatchObject({ state: 'waiting-lease, stalled', level: 'bad' });
    expect(reader?.lag).toBe('0 B · 4 min 5 s · stall 3 min 59 s');
    expect(reader?.details).toContain('lease held by ip-10-0-2-9:77:0c1d2e3f');
    const embedder = rows.find((x) => x.part === 'embedder');
    expect(embedder).toMatchObject({ state: 'waiting-lease, stalled', level: 'bad' });
    expect(embedder?.lag).toBe('0 records · stall 6 min');
    expect(embedder?.details).toContain('lease held by ip-10-0-2-9:78:aa00bb11');
    expect(m.report.progress).toEqual({
      reader: { lagSeconds: 245, stallSeconds: 239 },
      embedder: { stallSeconds: 360, millisBehindLatest: null },
    });
    expect(statusWarnings(m)).toEqual([
      'binlog-reader has made no progress for 3 min 59 s (ReaderStallSeconds): see docs/deploy.md, alarms',
      'embedder has made no progress for 6 min (EmbedderStallSeconds): see docs/deploy.md, alarms',
    ]);
  });
});

describe('status table, parts missing, finished or of another version', () => {
  it('says so when the services never reported and the stream cannot be read', () => {
    // Prepare: only the backfill ran; Kinesis refused ListShards
    const s = drainedSources();
    const sources: StatusSources = {
      ...s,
      services: { backfill: s.services.backfill! },
      kinesis: {
        stream: 'drugsync-changes',
        shards: [],
        error: 'KINESIS_LIST_SHARDS_FAILED: cannot list the shards',
      },
    };
    // Act
    const m = model(sources);
    const rows = statusRows(m);
    // Assess
    expect(rows.find((x) => x.part === 'binlog-reader')).toMatchObject({ state: 'no status', level: 'warn' });
    expect(rows.find((x) => x.part === 'embedder')).toMatchObject({ state: 'no status', level: 'warn' });
    expect(rows.find((x) => x.part === 'kinesis')).toMatchObject({ state: 'error', level: 'bad' });
    expect(statusWarnings(m)).toEqual(['kinesis: KINESIS_LIST_SHARDS_FAILED: cannot list the shards']);
    expect(m.report.progress).toEqual({ reader: null, embedder: null });
  });

  it('shows a finished re-sync and a failed backfill', () => {
    // Prepare
    const s = drainedSources();
    s.services.backfill = backfillStatus.encode({ ...BACKFILL, completed: false, last_summary: null });
    s.table.resync = resyncStatus.encode({
      phase: 'done',
      updated_at: ago(60),
      resyncs: ['00000000000000000007:000000001843100:0000'],
      started_at: ago(118),
      position: '00000000000000000007:000000001843211:0000',
      source_rows: 98234,
      redis_docs: 98012,
      missing: 1480,
      extra: 200,
      stale: 0,
      in_flight: 0,
      snapshot_method: 'binlog-snapshot',
      written: 1480,
      deleted: 200,
      refused: 0,
      names_embedded: 3,
      embeddings_requested: 3,
      cache_hits: 1477,
      seconds: 58.2,
      finished_at: ago(60),
    });
    // Act
    const lines = renderStatus(model(s), { color: false });
    // Assess
    expect(rowOf(lines, 'resync')).toMatch(
      /^resync +done .*at 00000000000000000007:000000001843211:0000 · 98,234 rows, 1,480 written, 200 deleted, 3 embedding calls · in 58 s/,
    );
    expect(rowOf(lines, 'backfill')).toMatch(
      /^backfill +incomplete .*98,234 \/ 98,234 rows \(100%\) · 0 failed/,
    );
    expect(lines.at(-1)).toContain('the last backfill did not complete');
  });

  it('draws what it can read of a hash written by another version, and names the rest', () => {
    // Prepare: a reader from before the stall heartbeat (no stall_seconds) with a garbled rate
    const s = drainedSources();
    const { stall_seconds: _gone, ...older } = readerStatus.encode(READER);
    s.services['binlog-reader'] = { ...older, events_per_sec: 'fast' };
    // Act
    const m = model(s);
    const lines = renderStatus(m, { color: false });
    // Assess: the row keeps what it read; the binlog's lag falls back to the checkpointed commit's age
    expect(rowOf(lines, 'binlog-reader')).toMatch(/^binlog-reader +streaming +0 B · 0 s +0.1 tx\/s +/);
    expect(m.report.progress.reader).toBeNull();
    expect(statusWarnings(m)).toEqual([
      'binlog-reader status: no stall_seconds (written by another version?)',
      'binlog-reader status: events_per_sec "fast" unreadable (not a number)',
    ]);
  });
});

describe('status colours and redraw', () => {
  it('colours states and warnings only on a terminal without NO_COLOR', () => {
    // Assess the decision
    expect(colorWanted(true, {})).toBe(true);
    expect(colorWanted(true, { NO_COLOR: '1' })).toBe(false);
    expect(colorWanted(true, { NO_COLOR: '' })).toBe(true);
    expect(colorWanted(false, {})).toBe(false);
    // and the output
    const plain = renderStatus(model(troubledSources()), { color: false });
    const coloured = renderStatus(model(troubledSources()), { color: true });
    expect(plain.join('\n')).not.toContain('\x1b[');
    expect(rowOf(coloured, 'binlog')).toContain('\x1b[32mok');
    expect(coloured.find((l) => l.includes('backoff'))).toContain('\x1b[33mbackoff, stale');
    // eslint-disable-next-line no-control-regex
    expect(coloured.at(-1)).toMatch(/^\x1b\[33mWARNING\x1b\[0m {2}3 dead-lettered/);
    // without the escape codes the coloured table is the plain one
    // eslint-disable-next-line no-control-regex
    expect(coloured.map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trimEnd())).toEqual(plain);
  });

  it('moves the cursor back over every row the previous frame took, wrapped lines included', () => {
    // Prepare: a 3-line frame whose second line wraps once on a 40-column terminal
    const frame = ['PART  STATE', `embedder  ${'x'.repeat(50)}`, '\x1b[33mWARNING\x1b[0m  one'].join('\n');
    // Act / Assess
    expect(redrawPrefix(frame, 40)).toBe('\x1b[4F\x1b[J');
    expect(redrawPrefix(frame, undefined)).toBe('\x1b[3F\x1b[J');
  });
});

describe('status report, pure parts', () => {
  it('sums the bytes behind over the binlog files from the checkpoint to the server position', () => {
    // Prepare: checkpoint in file 6, server in file 8, file 5 still kept
    const logs = [
      { Log_name: 'mysql-bin.000005', File_size: 1_000_000 },
      { Log_name: 'mysql-bin.000006', File_size: '5000000' },
      { Log_name: 'mysql-bin.000007', File_size: 2_000_000 },
      { Log_name: 'mysql-bin.000008', File_size: 999_999 },
    ];
    // Act
    const behind = binlogBytesBehind(
      { file: 'mysql-bin.000006', pos: 4_000_000 },
      { file: 'mysql-bin.000008', pos: 1_500 },
      logs,
    );
    // Assess: rest of 6, all of 7, up to the server's position in 8
    expect(behind).toBe(1_000_000 + 2_000_000 + 1_500);
  });

  it("takes the lag from the reader's heartbeat and the retention left from the checkpointed commit", () => {
    // Act
    const late = binlogTiming({
      lagSeconds: 612.5,
      behindBytes: 4096,
      checkpointCommitMs: ago(600),
      retentionSeconds: 3600,
      retentionWarnSeconds: 21600,
      now: NOW,
    });
    const olderReader = binlogTiming({
      lagSeconds: null,
      behindBytes: 4096,
      checkpointCommitMs: ago(600),
      retentionSeconds: 3600,
      retentionWarnSeconds: 60,
      now: NOW,
    });
    const caughtUp = binlogTiming({
      lagSeconds: null,
      behindBytes: 0,
      checkpointCommitMs: null,
      retentionSeconds: null,
      retentionWarnSeconds: 21600,
      now: NOW,
    });
    // Assess
    expect(late).toEqual({
      behindSeconds: 612.5,
      retentionLeftSeconds: 3000,
      warnings: ["only 3000 s of binlog retention left before the reader's checkpoint could be purged"],
    });
    expect(olderReader).toEqual({ behindSeconds: 600, retentionLeftSeconds: 3000, warnings: [] });
    expect(caughtUp).toEqual({
      behindSeconds: 0,
      retentionLeftSeconds: null,
      warnings: ['binlog retention is unlimited or unknown: set it so purges are deliberate'],
    });
  });

  it('reads the load from the embedder status and sums the lag only when every shard is known', () => {
    // Act
    const known = loadStatus(
      {
        ...EMBEDDER,
        load_in_progress: true,
        load_started_at: ago(5),
        load_row_events: 700,
        records_per_sec: 140,
      },
      [shard(0, 12), shard(1, 30)],
    );
    const unknown = loadStatus(null, [shard(0, 12), shard(1, null)]);
    // Assess
    expect(known).toEqual({
      inProgress: true,
      startedAt: iso(5),
      rowEvents: 700,
      eventsPerSecond: 140,
      rowsBehind: 42,
      last: EMBEDDER.last_load,
    });
    expect(unknown).toMatchObject({ inProgress: false, rowsBehind: null, last: null });
  });

  it('keeps every raw field of the hashes in the report (--json) beside what follows from them', () => {
    // Act
    const r = model(troubledSources()).report;
    // Assess
    expect(r.services).toEqual(troubledSources().services);
    expect(r.table.resync).toEqual({ phase: 'compare', done: '40000', total: '98234', updated_at: iso(1) });
    expect(r.binlog).toMatchObject({ behindBytes: 3_500_000, retentionLeftSeconds: 4900 });
    // written 400 s ago, due every 10 s: 390 s of silence added
    expect(r.binlog.behindSeconds).toBeCloseTo(402.4, 6);
    expect(r.progress.reader?.lagSeconds).toBeCloseTo(402.4, 6);
    expect(r.progress.reader?.stallSeconds).toBe(400);
    expect(r.problems).toEqual([]);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
});

describe('status: the vector index as the server built it', () => {
  it('shows the algorithm and compression built, and warns when the server substituted the compression', () => {
    // Prepare: the real FT.INFO of Redis 8.2.3 / search 8.2.5 (LeanVec4x8 asked, GlobalSQ8 built), read back
    // the way `status` reads it.
    const replies = JSON.parse(
      fs.readFileSync(new URL('./fixtures/redis-8.2/replies.json', import.meta.url), 'utf8'),
    ) as { ft_info_drugs_idx: unknown[] };
    const info: Record<string, unknown> = {};
    for (let i = 0; i + 1 < replies.ft_info_drugs_idx.length; i += 2)
      info[String(replies.ft_info_drugs_idx[i])] = replies.ft_info_drugs_idx[i + 1];
    const asked = vectorSpec({ dimensions: 256, hnsw: { m: 16, efConstruction: 200 } }, 'SVS-VAMANA');
    const built = builtVector(info);
    const s = drainedSources();
    const substituted: StatusSources = {
      ...s,
      redis: {
        ...s.redis,
        vectorIndex: {
          index: 'drugs_idx',
          asked,
          built,
          substitutions: vectorSubstitutions(asked, built!),
          server: 'Redis 8.2.3, search 8.2.5 (MODULE LIST) has SVS-VAMANA (search ≥ 8.1.90) → SVS-VAMANA',
        },
      },
    };
    // Act
    const lines = renderStatus(model(substituted), { color: false });
    const plain = renderStatus(model(drainedSources()), { color: false });
    // Assess
    expect(rowOf(lines, 'redis')).toContain('vector SVS-VAMANA GlobalSQ8 (LeanVec4x8 asked)');
    expect(statusWarnings(model(substituted))).toEqual([
      expect.stringMatching(
        /^vector index drugs_idx built otherwise than asked: compression GlobalSQ8 built, LeanVec4x8 asked/,
      ),
    ]);
    expect(plain.some((l) => l.startsWith('WARNING'))).toBe(false);
  });
});
