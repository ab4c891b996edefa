/**
 * The consumer's pure parts, without servers or timers: the transaction hold (tx-hold.ts), load tracking
 * (load-tracker.ts), shard discovery (shard-discovery.ts), GetRecords pacing and record preparation
 * (shard-reader.ts) and the status hash's fields (consumer-status.ts). Clocks are plain numbers.
 */
import { describe, expect, it } from 'vitest';
import type { _Record, Shard } from '@aws-sdk/client-kinesis';
import { compressRecord, decodeChangeEvent, encodeChangeEvent } from '../services/core/events.ts';
import { encodeAggregate } from '../services/core/kpl.ts';
import { frameAggregate } from '../services/core/stream-record.ts';
import type { ChangeEvent } from '../services/core/events.ts';
import {
  decideHold,
  emptyHold,
  holdRecords,
  splitOpenDeletes,
  takeHeld,
  txMark,
} from '../services/embedder/tx-hold.ts';
import type { HeldRecord, HoldInput } from '../services/embedder/tx-hold.ts';
import { LoadTracker } from '../services/embedder/load-tracker.ts';
import { shardsToStart } from '../services/embedder/shard-discovery.ts';
import {
  MAX_CALL_GAP_MS,
  MIN_CALL_GAP_MS,
  READ_EVENTS_TARGET,
  ShardReader,
  gapAfterRead,
  gapAfterThrottle,
  heldRecords,
  recordLimit,
} from '../services/embedder/shard-reader.ts';
import { createLogger } from '../services/core/log.ts';
import { embedderStatus } from '../services/core/status/embedder.ts';
import { consumerStatus } from '../services/embedder/consumer-status.ts';
import type { ConsumerStats } from '../services/embedder/consumer-types.ts';
import { emptyStats } from '../services/embedder/types.ts';
import type { BatchStats } from '../services/embedder/types.ts';
import { EventFactory, makeRow } from './support/events.ts';

const T0 = Date.UTC(2026, 0, 5, 9, 30);

let seq = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000n;
function held(e: ChangeEvent): HeldRecord {
  seq += 1000n;
  const r: _Record = { SequenceNumber: seq.toString(), PartitionKey: 'k', Data: encodeChangeEvent(e) };
  return heldRecords(r)[0] as HeldRecord;
}

/** A DELETE-all + INSERT-all transaction `txid` over `n` catalogue rows: the deletes, then the inserts. */
function reload(f: EventFactory, txid: string, n: number): { deletes: HeldRecord[]; inserts: HeldRecord[] } {
  const rows = Array.from({ length: n }, (_, i) => makeRow(i));
  return {
    deletes: rows.map((r) => held({ ...f.delete(r), txid })),
    inserts: rows.map((r) => held({ ...f.insert(r), txid })),
  };
}

const input = (over: Partial<HoldInput> = {}): HoldInput => ({
  hasIterator: true,
  moreOnStream: false,
  now: T0,
  maxPending: 100,
  txWaitMs: 10_000,
  ...over,
});

describe('transaction hold', () => {
  it('marks deletes and commits with their transaction, and other events with none', () => {
    // Prepare
    const f = new EventFactory('binlog.000007', T0);
    const row = makeRow(3);
    // Act
    const del = txMark(encodeChangeEvent({ ...f.delete(row), txid: '0-1-77' }));
    const ins = txMark(encodeChangeEvent({ ...f.insert(row), txid: '0-1-77' }));
    const commit = txMark(encodeChangeEvent(f.commit('0-1-77')));
    const truncate = txMark(encodeChangeEvent(f.truncate()));
    // Assess
    expect(del).toEqual({ txid: '0-1-77', deleteTx: '0-1-77', commitTx: null });
    expect(ins).toEqual({ txid: '0-1-77', deleteTx: null, commitTx: null });
    expect(commit).toEqual({ txid: '0-1-77', deleteTx: null, commitTx: '0-1-77' });
    expect(truncate.deleteTx).toBeNull();
    expect(truncate.commitTx).toBeNull();
  });

  it('reads on through a DELETE-all + INSERT-all and applies it whole once its commit arrives', () => {
    // Prepare
    const f = new EventFactory('binlog.000007', T0);
    const { deletes, inserts } = reload(f, '0-1-500', 5);
    const s = emptyHold(T0);
    // Act
    holdRecords(s, deletes, T0 + 100);
    const afterDeletes = decideHold(s, input({ now: T0 + 200, moreOnStream: true }));
    holdRecords(s, inserts, T0 + 300);
    const afterInserts = decideHold(s, input({ now: T0 + 400 }));
    holdRecords(s, [held(f.commit('0-1-500'))], T0 + 500);
    const afterCommit = decideHold(s, input({ now: T0 + 600 }));
    // Assess
    expect(afterDeletes).toBe('read-on');
    expect(afterInserts).toBe('read-on'); // caught up, but within the wait for the rest
    expect(afterCommit).toBe('apply');
    expect(takeHeld(s)).toHaveLength(11);
    expect(s.pending).toHaveLength(0);
    expect(s.openDeleteTxs.size).toBe(0);
  });

  it('applies an open transaction once the wait for the rest has passed with nothing more on the stream', () => {
    // Prepare
    const f = new EventFactory('binlog.000007', T0);
    const { deletes } = reload(f, '0-1-600', 3);
    const s = emptyHold(T0);
    holdRecords(s, deletes, T0);
    // Act
    const waiting = decideHold(s, input({ now: T0 + 9_999 }));
    const waited = decideHold(s, input({ now: T0 + 10_000 }));
    const moreComing = decideHold(s, input({ now: T0 + 10_000, moreOnStream: true }));
    const shardEnd = decideHold(s, input({ now: T0 + 1, hasIterator: false }));
    // Assess
    expect(waiting).toBe('read-on');
    expect(waited).toBe('apply');
    expect(moreComing).toBe('read-on');
    expect(shardEnd).toBe('apply');
  });

  it('defers the deletes of a transaction larger than the bound, keeping its inserts and other rows', () => {
    // Prepare
    const f = new EventFactory('binlog.000007', T0);
    const other = held({ ...f.update(makeRow(40), makeRow(40, { LN: 'CHANGED 10 MG' })), txid: '0-1-1' });
    const { deletes, inserts } = reload(f, '0-1-700', 4);
    const s = emptyHold(T0);
    holdRecords(s, [other, ...deletes, ...inserts.slice(0, 2)], T0);
    // Act
    const decision = decideHold(s, input({ maxPending: 7, moreOnStream: true }));
    const { keep, deferred } = splitOpenDeletes(s.pending, s.openDeleteTxs);
    // Assess
    expect(decision).toBe('defer-deletes');
    expect(keep).toEqual([other, ...inserts.slice(0, 2)]);
    expect([...deferred.keys()]).toEqual(['0-1-700']);
    expect(deferred.get('0-1-700')?.map((d) => d.ndc)).toEqual(
      [0, 1, 2, 3].map((i) => String(makeRow(i).NDC)),
    );
  });

  it('keeps a delete that does not decode in the batch, which dead-letters it', () => {
    // Prepare
    const broken: HeldRecord = {
      SequenceNumber: '1',
      Data: Buffer.from('{"v":1,"type":"delete","txid":"0-1-9","ndc":'),
      tx: { txid: '0-1-9', deleteTx: '0-1-9', commitTx: null },
    };
    // Act
    const { keep, deferred } = splitOpenDeletes([broken], new Set(['0-1-9']));
    // Assess
    expect(keep).toEqual([broken]);
    expect(deferred.size).toBe(0);
  });

  it('is idle with nothing held', () => {
    // Prepare
    const s = emptyHold(T0);
    // Act
    const decision = decideHold(s, input());
    // Assess
    expect(decision).toBe('idle');
  });
});

const totals = (over: Partial<BatchStats>): BatchStats => ({ ...emptyStats(), ...over });

describe('load tracker', () => {
  it('summarises a load from its first row event to the pause that ends it', () => {
    // Prepare
    const t = new LoadTracker(emptyStats(), T0, { minRecords: 1000, quietSeconds: 3 });
    const during = totals({ records: 4000, rowEvents: 4000, ndcs: 3900, upserted: 3000, cacheHits: 200 });
    const end = totals({
      records: 6000,
      rowEvents: 6000,
      ndcs: 5800,
      upserted: 4500,
      fieldsUpdated: 1000,
      deleted: 300,
      embeddingTexts: 4700,
      embeddingsRequested: 20,
      cacheHits: 300,
    });
    // Act
    const first = t.tick(during, T0 + 1_000, T0 + 1_000);
    const inProgress = t.inProgress(during);
    const stillLoading = t.tick(end, T0 + 2_500, T0 + 3_000);
    const quiet = t.tick(end, T0 + 2_500, T0 + 5_500);
    // Assess
    expect(first.recordsPerSec).toBe(4000);
    expect(inProgress).toEqual({ startedAt: T0, rowEvents: 4000 });
    expect(stillLoading.finished).toBeNull();
    expect(quiet.finished).toEqual({
      started_at: new Date(T0).toISOString(),
      seconds: 2.5,
      row_events: 6000,
      ndcs: 5800,
      written: 4500,
      fields_updated: 1000,
      unchanged: 0,
      deleted: 300,
      stale_refused: 0,
      names_embedded: 4400,
      embeddings_requested: 20,
      cache_hits: 300,
      dead_lettered: 0,
    });
    expect(quiet.recordsPerSec).toBe(0);
    expect(t.lastLoad).toEqual(quiet.finished);
    expect(t.inProgress(end)).toBeNull();
  });

  it('does not summarise a burst smaller than the minimum', () => {
    // Prepare
    const t = new LoadTracker(emptyStats(), T0, { minRecords: 1000, quietSeconds: 3 });
    // Act
    t.tick(totals({ records: 12, rowEvents: 12 }), T0 + 500, T0 + 1_000);
    const quiet = t.tick(totals({ records: 12, rowEvents: 12 }), T0 + 500, T0 + 4_000);
    // Assess
    expect(quiet.finished).toBeNull();
    expect(t.lastLoad).toBeNull();
  });
});

const shard = (id: number, parents: number[] = []): Shard => ({
  ShardId: `shardId-${String(id).padStart(12, '0')}`,
  ParentShardId: parents[0] === undefined ? undefined : `shardId-${String(parents[0]).padStart(12, '0')}`,
  AdjacentParentShardId:
    parents[1] === undefined ? undefined : `shardId-${String(parents[1]).padStart(12, '0')}`,
  HashKeyRange: { StartingHashKey: '0', EndingHashKey: '1' },
  SequenceNumberRange: { StartingSequenceNumber: '1' },
});

describe('shard discovery', () => {
  it('starts a child only once its listed parents are closed, each after its checkpoint', () => {
    // Prepare: 0 and 1 merged into 2; 0 is closed, 1 is still being read
    const shards = [shard(0), shard(1), shard(2, [0, 1]), shard(3)];
    const cps = { 'shardId-000000000000': '4965001', 'shardId-000000000000#closed': '1' };
    // Act
    const start = shardsToStart(shards, cps, new Set(['shardId-000000000003']));
    const afterMerge = shardsToStart(
      shards,
      { ...cps, 'shardId-000000000001#closed': '1', 'shardId-000000000001': '4965009' },
      new Set(),
    );
    // Assess
    expect(start).toEqual([{ shardId: 'shardId-000000000001', after: null }]);
    expect(afterMerge).toEqual([
      { shardId: 'shardId-000000000002', after: null },
      { shardId: 'shardId-000000000003', after: null },
    ]);
  });

  it('starts a child whose parent is no longer listed (expired)', () => {
    // Prepare
    const shards = [shard(5, [4])];
    // Act
    const start = shardsToStart(shards, {}, new Set());
    // Assess
    expect(start).toEqual([{ shardId: 'shardId-000000000005', after: null }]);
  });
});

describe('GetRecords pacing', () => {
  it('waits for the bytes read at 2 MB/s, and relaxes toward 200 ms after small reads', () => {
    // Act
    const afterBig = gapAfterRead(MIN_CALL_GAP_MS, 4 * 1024 * 1024);
    const afterSmall = gapAfterRead(afterBig, 10_000);
    const relaxing = [1, 2, 3]
      .map(() => 0)
      .reduce<number[]>((gaps) => [...gaps, gapAfterRead(gaps[gaps.length - 1] as number, 0)], [afterSmall]);
    // Assess
    expect(afterBig).toBe(2000);
    expect(afterSmall).toBe(1000);
    expect(relaxing).toEqual([1000, 500, 250, MIN_CALL_GAP_MS]);
  });

  it('doubles the gap when throttled, up to its bound', () => {
    // Act
    const once = gapAfterThrottle(MIN_CALL_GAP_MS);
    const many = [1, 2, 3, 4, 5, 6].reduce((g) => gapAfterThrottle(g), MIN_CALL_GAP_MS);
    // Assess
    expect(once).toBe(400);
    expect(many).toBe(MAX_CALL_GAP_MS);
  });

  it('hands a compressed record on as its JSON, marked, and an undecompressable one as it was', () => {
    // Prepare
    const f = new EventFactory('binlog.000007', T0);
    const json = encodeChangeEvent({ ...f.delete(makeRow(2)), txid: '0-1-42' });
    const bad = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01]);
    // Act
    const [plain] = heldRecords({ SequenceNumber: '7', Data: compressRecord(json) }) as [HeldRecord];
    const [kept] = heldRecords({ SequenceNumber: '8', Data: bad }) as [HeldRecord];
    // Assess
    expect(Buffer.from(plain.Data as Uint8Array).equals(json)).toBe(true);
    expect(plain.tx).toEqual({ txid: '0-1-42', deleteTx: '0-1-42', commitTx: null });
    expect(kept.Data).toEqual(bad);
    expect(kept.tx).toEqual({ txid: null, deleteTx: null, commitTx: null });
  });
});

describe('aggregated records', () => {
  it('hands an aggregate on as its events, in order, each named sequence:index and marked', () => {
    // Prepare: a zstd-framed KPL aggregate of a delete, an insert and the commit of their transaction
    const f = new EventFactory('binlog.000007', T0);
    const del = { ...f.delete(makeRow(3)), txid: '0-1-43' };
    const ins = { ...f.insert(makeRow(4)), txid: '0-1-43' };
    const events: ChangeEvent[] = [del, ins, f.commit('0-1-43')];
    const data = frameAggregate(
      encodeAggregate(
        events.map((e) => ({ partitionKey: 'ndc' in e ? e.ndc : '#table', data: encodeChangeEvent(e) })),
      ),
      'zstd',
    );
    // Act
    const out = heldRecords({ SequenceNumber: '4965', PartitionKey: 'x', Data: data });
    // Assess
    expect(out.map((r) => r.SequenceNumber)).toEqual(['4965:0', '4965:1', '4965:2']);
    expect(out.map((r) => r.PartitionKey)).toEqual([del.ndc, ins.ndc, '#table']);
    expect(out.map((r) => decodeChangeEvent(r.Data as Uint8Array))).toEqual(events);
    expect(out.map((r) => r.tx)).toEqual([
      { txid: '0-1-43', deleteTx: '0-1-43', commitTx: null },
      { txid: '0-1-43', deleteTx: null, commitTx: null },
      { txid: '0-1-43', deleteTx: null, commitTx: '0-1-43' },
    ]);
  });
});

describe('GetRecords limit with aggregates', () => {
  it('sizes the record limit from the events per record, within 1 and the configured limit', () => {
    expect(recordLimit(1_000, 1)).toBe(1_000);
    expect(recordLimit(1_000, 500)).toBe(READ_EVENTS_TARGET / 500);
    expect(recordLimit(1_000, 50_000)).toBe(1);
    expect(recordLimit(5, 2)).toBe(5);
  });

  it('asks for fewer records once a read showed aggregates of hundreds of events', async () => {
    // Prepare: a shard whose records are zstd aggregates of 400 catalogue inserts each
    const f = new EventFactory('binlog.000009', T0);
    const aggregate = (from: number) =>
      frameAggregate(
        encodeAggregate(
          Array.from({ length: 400 }, (_, i) => f.insert(makeRow(from + i))).map((e) => ({
            partitionKey: e.ndc,
            data: encodeChangeEvent(e),
          })),
        ),
        'zstd',
      );
    const limits: number[] = [];
    const kinesis = {
      send: (cmd: { input: { Limit?: number } }) => {
        limits.push(cmd.input.Limit as number);
        const Records = [0, 1].map((k) => ({
          SequenceNumber: `${limits.length}${k}`,
          Data: aggregate(k * 400),
        }));
        return Promise.resolve({ Records, NextShardIterator: 'next', MillisBehindLatest: 0 });
      },
    };
    const reader = new ShardReader({
      kinesis: kinesis as never,
      stream: 'drugsync-changes',
      shardId: 'shardId-000000000000',
      limit: 1_000,
      log: createLogger({ service: 'test' }, { level: 'error', json: true, write: () => {} }),
      sleep: () => Promise.resolve(),
      clock: () => T0,
    });
    reader.iterator = 'first';
    // Act: two reads
    const first = await reader.read();
    const second = await reader.read();
    // Assess: the first read asked for the configured limit, the second for ~READ_EVENTS_TARGET events
    expect(limits).toEqual([1_000, READ_EVENTS_TARGET / 400]);
    expect(first.kind === 'records' && first.records).toHaveLength(800);
    expect(second.kind === 'records' && second.more).toBe(false);
  });
});

describe('status hash', () => {
  it('shows totals, shards, the rate and the load in progress', () => {
    // Prepare
    const stats: ConsumerStats = {
      state: 'applying',
      leaseHolder: null,
      leaseTaken: 1,
      leaseLost: 0,
      startedAt: T0,
      totals: totals({ records: 900, upserted: 700, failed: 2, latencyP50Ms: 120, latencyP99Ms: null }),
      shards: new Map([
        [
          'shardId-000000000000',
          {
            shardId: 'shardId-000000000000',
            checkpoint: '4965001',
            millisBehindLatest: 0,
            closed: false,
            idle: true,
            batches: 3,
            errors: 0,
            progressAt: T0,
            readAt: T0,
          },
        ],
      ]),
      lastRecordAt: T0,
      errors: 0,
    };
    // Act
    const fields = embedderStatus.encode(
      consumerStatus(
        stats,
        {
          stream: 'drugsync-changes',
          leaseOwner: 'ip-10-0-1-7:1:ab12',
          recordsPerSec: 449.6,
          now: T0 + 1_000,
        },
        { startedAt: T0, rowEvents: 880 },
        null,
      ),
    );
    // Assess
    expect(fields).toMatchObject({
      updated_at: new Date(T0 + 1_000).toISOString(),
      state: 'applying',
      stream: 'drugsync-changes',
      lease_owner: 'ip-10-0-1-7:1:ab12',
      lease_holder: '',
      records_per_sec: '450',
      records: '900',
      upserted: '700',
      failed: '2',
      latency_p50_ms: '120',
      latency_p99_ms: '',
      // the shard proved progress and was read at T0: one second of stall, its lag aged by one second
      stall_seconds: '1.0',
      millis_behind_latest: '1000',
      load_in_progress: '1',
      load_started_at: new Date(T0).toISOString(),
      load_row_events: '880',
      last_load: '',
    });
    expect(JSON.parse(fields.shards!)).toEqual([...stats.shards.values()]);
  });
});
