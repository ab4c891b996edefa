/**
 * The binlog reader loop driven by a pausable fake binlog, with the real Redis (lease, status, backfill
 * snapshot position): a handler exception restarts from the checkpoint; only acknowledged commits are
 * checkpointed; no start position is refused; a full publisher pauses the source. Kinesis is a fake here;
 * the other integration suites use the real one. Units without a server: binlog-reader.unit.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeConfig } from '../services/core/config.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { saveBackfillSnapshot } from '../services/core/checkpoint.ts';
import { createMemoryPositionStore } from './support/memory-position-store.ts';
import { decodeChangeEvent } from '../services/core/events.ts';
import type { ChangeEvent } from '../services/core/events.ts';
import { createLogger } from '../services/core/log.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { KinesisSink } from '../services/binlog-reader/kinesis-sink.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { BinlogHandler, BinlogSource, StartFrom } from '../services/binlog-reader/source.ts';
import { makeRow } from './support/factories.ts';
import { fakeSink } from './support/fake-sink.ts';
import { eventually, resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

const log = createLogger({ service: 'binlog-reader-loop' }, { level: 'error' });

/** A pausable fake binlog: scripted transactions, replayed from any commit position. */
function fakeBinlog(txs: { rows: ReturnType<typeof makeRow>[] }[]) {
  const starts: StartFrom[] = [];
  let crashOnce = true;
  const create = (): BinlogSource => {
    let paused = false;
    let stopped = false;
    return {
      start(from: StartFrom, h: BinlogHandler) {
        starts.push(from);
        const startPos = 'file' in from ? from.pos : 4;
        void (async () => {
          h.onRotate('binlog.000001', startPos);
          let pos = 100;
          for (const [i, tx] of txs.entries()) {
            const begin = pos;
            const end = pos + 100;
            pos = end;
            if (begin < startPos) continue;
            while (paused && !stopped) await new Promise((r) => setTimeout(r, 5));
            if (stopped) return;
            const place = { file: 'binlog.000001', ts: 1_700_000_000_000 + i, gtid: `0-1-${i + 1}` };
            h.onBegin({ ...place, pos: begin, next: begin + 10 });
            if (i === 2 && crashOnce) {
              crashOnce = false;
              // a malformed rows event: the handler throws, which must not silently stop the stream
              h.onRows({
                ...place,
                pos: begin + 10,
                next: begin + 50,
                op: 'insert',
                schema: 'fdb_binlog_unit',
                table: 'rndc14',
                rows: null as unknown as [],
              });
              return;
            }
            h.onRows({
              ...place,
              pos: begin + 10,
              next: begin + 50,
              op: 'insert',
              schema: 'fdb_binlog_unit',
              table: 'rndc14',
              rows: tx.rows,
            });
            h.onCommit({ ...place, pos: begin + 50, next: end, xid: String(i) });
            await new Promise((r) => setTimeout(r, 1));
          }
        })();
      },
      pause: () => void (paused = true),
      resume: () => void (paused = false),
      get paused() {
        return paused;
      },
      stop: async () => void (stopped = true),
    };
  };
  return { create, starts };
}

describe('reader loop with a fake binlog (real Redis lease)', () => {
  const env = suiteEnv('binlog_unit', { READER_MAX_BACKOFF_SECONDS: '1', READER_LEASE_TTL_MS: '2000' });
  const config = decodeConfig(readerConfigShape, env);
  let redis: RedisClient;
  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
  });
  afterAll(() => redis?.disconnect());

  it('restarts from the checkpoint after a handler exception; checkpoints only acknowledged commits', async () => {
    // Prepare: 5 transactions of 3 rows; Kinesis refuses transaction 1 once
    const txs = Array.from({ length: 5 }, (_, t) => ({
      rows: [0, 1, 2].map((k) => makeRow({ NDC: `0000${t}00000${k}` }, t * 3 + k)),
    }));
    const binlog = fakeBinlog(txs);
    const { sink, accepted } = fakeSink((r, call) => call === 2);
    const checkpoints = createMemoryPositionStore();
    // Act
    const checkpointAtStart: (number | null)[] = [];
    const createSource = () => {
      checkpointAtStart.push(checkpoints.saves.at(-1)?.pos ?? null);
      return binlog.create();
    };
    const reader = startBinlogReader(
      config,
      { redis, sink, checkpoints, createSource, log },
      { from: { file: 'binlog.000001', pos: 4 }, onceIdleSeconds: 0.5, skipPreflight: true },
    );
    const result = await reader.done;
    // Assess
    expect(result.reason).toBe('idle');
    expect(result.stats.restarts).toBe(1);
    expect(result.stats.lastError).toMatch(/Cannot read properties|not iterable|forEach/);
    // the restart began exactly at the checkpoint written before the failure (a commit's end position)
    expect(binlog.starts).toHaveLength(2);
    expect(checkpointAtStart[1]).not.toBeNull();
    expect(binlog.starts[1]).toEqual({ file: 'binlog.000001', pos: checkpointAtStart[1] });
    // every checkpoint written was at a commit whose records were all acknowledged, never going back
    const saved = checkpoints.saves.map((p) => p.pos);
    expect([...saved].sort((a, b) => a - b)).toEqual(saved);
    expect(saved.at(-1)).toBe(600);
    const events = accepted.map((r) => decodeChangeEvent(r.data) as ChangeEvent & { ndc: string });
    const ndcs = new Set(events.map((e) => e.ndc));
    expect(ndcs.size).toBe(15);
    expect((await redis.hgetall(makeKeys(config).serviceStatus('binlog-reader'))).state).toBe('stopped');
  });

  it('starts from the backfill snapshot position when there is no checkpoint', async () => {
    const binlog = fakeBinlog([{ rows: [makeRow({ NDC: '00009000001' }, 1)] }]);
    await saveBackfillSnapshot(redis, makeKeys(config), { file: 'binlog.000001', pos: 100 });
    const reader = startBinlogReader(
      config,
      {
        redis,
        sink: fakeSink(() => false).sink,
        checkpoints: createMemoryPositionStore(),
        createSource: binlog.create,
        log,
      },
      { onceIdleSeconds: 0.3, skipPreflight: true },
    );
    await reader.done;
    expect(binlog.starts[0]).toEqual({ file: 'binlog.000001', pos: 100 });
    expect(reader.stats.startedFrom).toMatch(/^backfill snapshot/);
    await redis.del(makeKeys(config).backfillSnapshot);
  });

  it('refuses to start without a position, naming the remedy', async () => {
    const reader = startBinlogReader(
      config,
      {
        redis,
        sink: fakeSink(() => false).sink,
        checkpoints: createMemoryPositionStore(),
        createSource: fakeBinlog([]).create,
        log,
      },
      { skipPreflight: true },
    );
    await expect(reader.done).rejects.toMatchObject({
      code: 'BINLOG_NO_START_POSITION',
      remedy: expect.stringMatching(/backfill/),
    });
  });

  it('pauses the source while the publisher queue is full and resumes as it drains', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sink: KinesisSink = {
      async putRecords() {
        await gate;
        return { failed: [] };
      },
    };
    const txs = Array.from({ length: 10 }, (_, t) => ({
      rows: Array.from({ length: 300 }, (_, k) =>
        makeRow({ NDC: `1${String(t * 1000 + k).padStart(10, '0')}` }, k),
      ),
    }));
    const small = decodeConfig(readerConfigShape, { ...env, READER_QUEUE_RECORDS: '600' });
    const reader = startBinlogReader(
      small,
      { redis, sink, checkpoints: createMemoryPositionStore(), createSource: fakeBinlog(txs).create, log },
      { from: { file: 'binlog.000001', pos: 4 }, onceIdleSeconds: 0.3, skipPreflight: true },
    );
    await eventually(async () => reader.stats.paused, 10_000, 'paused');
    expect(reader.stats.queueRecords).toBeLessThanOrEqual(600 + 300);
    release();
    const result = await reader.done;
    expect(result.stats.rowEvents).toBe(3000);
    expect(result.stats.paused).toBe(false);
  });
});
