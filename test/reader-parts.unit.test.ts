/**
 * Units of the binlog reader's session, without timers, servers or the wall clock: which commit may become
 * the checkpoint, the one-at-a-time checkpoint writes, the stall watchdog's verdicts (clock injected), the
 * status fields and rates, the --once-idle condition and the start position order.
 */
import { describe, expect, it } from 'vitest';
import { CheckpointChain } from '../services/binlog-reader/checkpoint-chain.ts';
import { CommitTracker } from '../services/binlog-reader/commit-tracker.ts';
import type { CommitPoint } from '../services/binlog-reader/commit-tracker.ts';
import { PublisherTotals, createReaderStats } from '../services/binlog-reader/reader-stats.ts';
import { idleExitDue } from '../services/binlog-reader/session.ts';
import { StallWatchdog, serverMovedOn } from '../services/binlog-reader/stall-watchdog.ts';
import type { FilePos } from '../services/binlog-reader/stall-watchdog.ts';
import { resolveStart } from '../services/binlog-reader/start-position.ts';
import { measureStatus } from '../services/binlog-reader/status.ts';
import { readerStatus } from '../services/core/status/reader.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { BinlogPosition } from '../services/core/position.ts';

const at = (pos: number, file = 'binlog.000042'): CommitPoint => ({
  pos: { file, pos, gtid: `0-1-${pos}` },
  ts: 1_764_000_000_000 + pos,
});

describe('commit tracker', () => {
  it('offers the newest commit whose records are all acknowledged, once', () => {
    // Prepare: three transactions of 2, 3 and 1 records
    const t = new CommitTracker();
    t.add(2, at(1_000));
    t.add(5, at(2_400));
    t.add(6, at(3_100));

    // Act / Assess: acknowledgements arrive in pieces
    expect(t.takeAcknowledged(1)).toBeNull();
    expect(t.takeAcknowledged(5)).toEqual(at(2_400));
    expect(t.pending).toBe(1);
    expect(t.takeAcknowledged(5)).toBeNull();
    expect(t.takeAcknowledged(6)).toEqual(at(3_100));
    expect(t.pending).toBe(0);
  });

  it('treats a commit with no records of the table as acknowledged at once', () => {
    const t = new CommitTracker();
    t.add(0, at(512));
    expect(t.takeAcknowledged(0)).toEqual(at(512));
  });
});

describe('checkpoint chain', () => {
  /** A store whose writes finish when the test says. */
  function gatedStore() {
    const writes: { pos: BinlogPosition; finish: (e?: Error) => void }[] = [];
    return {
      writes,
      save: (pos: BinlogPosition) =>
        new Promise<void>((resolve, reject) =>
          writes.push({ pos, finish: (e) => (e ? reject(e) : resolve()) }),
        ),
    };
  }

  it('writes one checkpoint at a time, skipping to the newest offered meanwhile', async () => {
    // Prepare
    const store = gatedStore();
    const saved: CommitPoint[] = [];
    const chain = new CheckpointChain(store, {
      onSaved: (p) => saved.push(p),
      onError: (e) => expect.fail(String(e)),
    });

    // Act: three offers while the first write is in flight
    chain.offer(at(100));
    chain.offer(at(200));
    chain.offer(at(300));
    expect(store.writes.map((w) => w.pos.pos)).toEqual([100]);
    expect(chain.busy).toBe(true);
    store.writes[0]!.finish();
    await Promise.resolve();
    await Promise.resolve();

    // Assess: the second write is the newest offer; 200 is never written
    expect(store.writes.map((w) => w.pos.pos)).toEqual([100, 300]);
    expect(chain.upToDate).toBe(false);
    store.writes[1]!.finish();
    await chain.flush();
    expect(saved.map((p) => p.pos.pos)).toEqual([100, 300]);
    expect(chain.upToDate).toBe(true);
    expect(chain.busy).toBe(false);
  });

  it('reports a failed write and writes again on the next offer', async () => {
    const store = gatedStore();
    const errors: unknown[] = [];
    const chain = new CheckpointChain(store, { onSaved: () => {}, onError: (e) => errors.push(e) });
    chain.offer(at(100));
    store.writes[0]!.finish(new Error("READONLY You can't write against a read only replica."));
    await chain.flush();
    expect(errors).toHaveLength(1);
    chain.offer(at(200));
    expect(store.writes.map((w) => w.pos.pos)).toEqual([100, 200]);
  });
});

describe('stall watchdog', () => {
  function watchdog(over: { server?: FilePos | null; putStalledMs?: number; paused?: boolean } = {}) {
    let now = 1_764_000_000_000;
    const failures: unknown[] = [];
    let probes = 0;
    let atEnd = 0;
    const w = new StallWatchdog(
      {
        stallMs: 30_000,
        putStallMs: 60_000,
        stream: 'drugsync-changes',
        probe: async () => {
          probes += 1;
          return over.server === undefined ? { file: 'binlog.000042', pos: 9_000 } : over.server;
        },
        finished: () => failures.length > 0,
        atServerEnd: () => (atEnd += 1),
        paused: () => over.paused ?? false,
        putStalledMs: () => over.putStalledMs ?? 0,
        queuedRecords: () => 1_200,
        fail: (e) => failures.push(e),
        now: () => now,
      },
      { file: 'binlog.000042', pos: 4 },
    );
    return { w, failures, probes: () => probes, atEnd: () => atEnd, advance: (ms: number) => (now += ms) };
  }
  const settle = () => new Promise<void>((r) => setImmediate(r));

  it('probes only after the silence bound, and fails when the server moved past what was seen', async () => {
    const { w, failures, probes, advance } = watchdog();
    w.seen('binlog.000042', 8_000);
    advance(29_000);
    w.tick();
    expect(probes()).toBe(0);
    advance(1_000);
    w.tick();
    await settle();
    expect(probes()).toBe(1);
    expect(failures).toHaveLength(1);
    expect(isDrugsyncError(failures[0], 'BINLOG_STALLED')).toBe(true);
  });

  it('takes a server that did not move on as an idle one and starts the silence over', async () => {
    const { w, failures, probes, advance } = watchdog({ server: { file: 'binlog.000042', pos: 8_000 } });
    w.seen('binlog.000042', 8_000);
    advance(31_000);
    w.tick();
    await settle();
    expect(failures).toHaveLength(0);
    advance(10_000);
    w.tick();
    await settle();
    expect(probes()).toBe(1);
  });

  it('tells the session the server is at the stream’s end only when the server says so', async () => {
    // Prepare: an idle server, one that moved on, one that does not answer with a position
    const idle = watchdog({ server: { file: 'binlog.000042', pos: 8_000 } });
    const ahead = watchdog({ server: { file: 'binlog.000043', pos: 4 } });
    const mute = watchdog({ server: null });
    // Act
    for (const x of [idle, ahead, mute]) {
      x.w.seen('binlog.000042', 8_000);
      x.advance(31_000);
      x.w.tick();
    }
    await settle();
    // Assess
    expect([idle.atEnd(), ahead.atEnd(), mute.atEnd()]).toEqual([1, 0, 0]);
    expect([idle.failures.length, ahead.failures.length, mute.failures.length]).toEqual([0, 1, 0]);
  });

  it('does not probe while reading is paused, and a packet resets the silence', async () => {
    const paused = watchdog({ paused: true });
    paused.advance(60_000);
    paused.w.tick();
    expect(paused.probes()).toBe(0);
    const active = watchdog();
    active.advance(29_000);
    active.w.packet();
    active.advance(29_000);
    active.w.tick();
    expect(active.probes()).toBe(0);
  });

  it('fails with KINESIS_PUT_STALLED when calls are in flight past the put bound', () => {
    const { w, failures } = watchdog({ putStalledMs: 61_000 });
    w.tick();
    expect(isDrugsyncError(failures[0], 'KINESIS_PUT_STALLED')).toBe(true);
  });

  it('compares server and seen positions across files', () => {
    expect(serverMovedOn({ file: 'binlog.000043', pos: 4 }, { file: 'binlog.000042', pos: 9_000 })).toBe(
      true,
    );
    expect(serverMovedOn({ file: 'binlog.000042', pos: 9_000 }, { file: 'binlog.000042', pos: 9_000 })).toBe(
      false,
    );
    expect(serverMovedOn(null, { file: 'binlog.000042', pos: 9_000 })).toBe(false);
  });
});

describe('status', () => {
  it('turns totals into rates since the previous mark and carries the lag and the stall it is given', () => {
    // Prepare
    const totals = new PublisherTotals();
    const stats = createReaderStats(totals);
    const t0 = 1_764_000_000_000;
    Object.assign(stats, {
      state: 'streaming',
      rowEvents: 500,
      tableEvents: 1,
      transactions: 50,
      lastEventTs: t0,
    });
    stats.checkpoint = { file: 'binlog.000042', pos: 9_000 };

    // Act
    const m = measureStatus(
      { at: t0 - 10_000, events: 1, tx: 0, putMs: 0, batches: 0 },
      {
        stats,
        owner: 'reader-1:4242:ab12cd34',
        periodSeconds: 10,
        lag: 2,
        stall: 0.5,
        now: t0 + 2_000,
      },
    );

    // Assess
    expect(m.eventsPerSec).toBeCloseTo(500 / 12);
    expect(m.txPerSec).toBeCloseTo(50 / 12);
    expect(m.lag).toBe(2);
    const fields = readerStatus.encode(m.status);
    expect(fields).toMatchObject({
      state: 'streaming',
      events_total: '501',
      lag_seconds: '2.0',
      stall_seconds: '0.5',
      period_seconds: '10',
      owner: 'reader-1:4242:ab12cd34',
    });
    expect(fields.checkpoint).toContain('binlog.000042');
    expect(m.mark).toEqual({ at: t0 + 2_000, events: 501, tx: 50, putMs: 0, batches: 0 });
  });

  it('sums the publisher counters of finished sessions and the running one', () => {
    const totals = new PublisherTotals();
    const stats = createReaderStats(totals);
    const one = {
      records: 1_000,
      batches: 2,
      retriedRecords: 3,
      failedCalls: 1,
      lastPutMs: 40,
      putMsTotal: 90,
    };
    totals.track({ stats: one });
    totals.close();
    totals.track({ stats: { ...one, records: 10, lastPutMs: 12 } });
    expect(stats.publisher.records).toBe(1_010);
    expect(stats.publisher.lastPutMs).toBe(12);
  });
});

describe('once-idle and start position', () => {
  it('exits idle only when caught up, checkpointed and quiet for long enough', () => {
    const base = { caughtUp: true, checkpointed: true, quietMs: 5_000, idleMs: 5_000 };
    expect(idleExitDue(base)).toBe(true);
    expect(idleExitDue({ ...base, caughtUp: false })).toBe(false);
    expect(idleExitDue({ ...base, checkpointed: false })).toBe(false);
    expect(idleExitDue({ ...base, quietMs: 4_999 })).toBe(false);
  });

  it('starts from the checkpoint, else the snapshot, else --from, else --from-gtid, else refuses', async () => {
    const cp = { file: 'binlog.000042', pos: 9_000 };
    const snap = { file: 'binlog.000040', pos: 4 };
    const keys = makeKeys({ REDIS_INDEX: 'drugs_idx', REDIS_DOC_PREFIX: 'drug:', REDIS_STATE_PREFIX: 'ds:' });
    const store = (p: BinlogPosition | null) => ({ load: async () => p, save: async () => {} });
    const from = { file: 'binlog.000039', pos: 120 };
    const start = (c: BinlogPosition | null, s: BinlogPosition | null, options = {}) =>
      resolveStart({ checkpoints: store(c), snapshots: store(s), options, keys });

    expect((await start(cp, snap, { from })).label).toBe('checkpoint binlog.000042:9000');
    expect((await start(null, snap, { from })).from).toEqual(snap);
    expect((await start(null, null, { from, fromGtid: '0-1-77' })).from).toEqual(from);
    expect((await start(null, null, { fromGtid: '0-1-77' })).from).toEqual({ gtid: '0-1-77' });
    await expect(start(null, null)).rejects.toMatchObject({ code: 'BINLOG_NO_START_POSITION' });
  });
});
