/**
 * The embedder's metrics on the real stack (kinesalite, Redis with RedisJSON + RediSearch), read back from
 * the EMF lines it emits: per-batch counts that add up to what was applied, a consumer caught up on an idle
 * stream reads healthy however long it stays idle (GetRecords at the tip proves it), and each way its
 * progress can stop while it runs makes EmbedderStallSeconds grow past the stall alarm's threshold (the
 * larger of the stages' defaults): Redis down, its lease taken by another consumer, Kinesis unreachable.
 * Redis and Kinesis are reached through proxies of the test's own; the test clock jumps past the threshold
 * once progress has stopped; each fault is then lifted and the records written meanwhile are applied.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { STAGES, STAGE_DEFAULTS } from '../infra/config.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { createRedis } from '../services/core/clients/redis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createRedisLease } from '../services/core/lease.ts';
import { METRICS, SERVICE_METRICS } from '../services/core/metrics.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import type { EmbedderConsumer } from '../services/embedder/consumer.ts';
import { consumerDeps, createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import type { EmbedderRuntime } from '../services/embedder/runtime.ts';
import { EventFactory, makeRow } from './support/events.ts';
import { expectStallPastThreshold, faultLog, jumpClock, watchMetrics } from './support/metric-watch.ts';
import type { JumpClock, MetricWatch, StallCheck } from './support/metric-watch.ts';
import { putEvents } from './support/put-events.ts';
import { eventually, resetSuiteRedis, resetSuiteStream, suiteEnv, suiteRedis } from './support/stack.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import type { TcpProxy } from './support/tcp-proxy.ts';

const STALL = METRICS.EmbedderStallSeconds;
/** the stall alarm's threshold, the larger of the stages' defaults (infra/config.ts) */
const THRESHOLD = Math.max(...STAGES.map((s) => STAGE_DEFAULTS[s].embedderStallAlarmSeconds));
/** a healthy consumer's stall stays below this (polls every 100 ms, metric lines every second) */
const HEALTHY = 4;

const log = faultLog('embedder-stall-test');
let redis: RedisClient;
let kinesis: KinesisClient;
let redisProxy: TcpProxy;
let kinesisProxy: TcpProxy;
let rowSeq = 0;

interface Watched {
  rt: EmbedderRuntime;
  consumer: EmbedderConsumer;
  metrics: MetricWatch;
  clock: JumpClock;
  /** EmbedderStallSeconds against the alarm threshold while the consumer runs */
  stall: StallCheck;
  stream: string;
  /** puts `n` inserts of new rows (directly, not through the proxies) */
  put(n: number): Promise<void>;
  close(): Promise<void>;
}

let running: Watched | null = null;

/** A consumer reaching Redis and Kinesis through the proxies, its heartbeat every second. */
async function startWatchedConsumer(name: string): Promise<Watched> {
  const env = suiteEnv('embedder_stall', {
    KINESIS_STREAM: `t-embedder-stall-${name}`,
    KINESIS_ENDPOINT: `http://127.0.0.1:${kinesisProxy.port}`,
    REDIS_PORT: String(redisProxy.port),
    EMBEDDER_METRICS_SECONDS: '1',
    EMBEDDER_LEASE_TTL_MS: '3000',
    EMBEDDER_MAX_BACKOFF_MS: '500',
    EMBEDDER_IDLE_POLL_MS: '100',
  });
  const config = decodeEmbedderConfig(env);
  await resetSuiteRedis(env, redis);
  await resetSuiteStream({ ...env, KINESIS_ENDPOINT: suiteEnv('embedder_stall').KINESIS_ENDPOINT }, 2);
  // through the proxy; a command gives up after two reconnects (the default twenty make recovery slow)
  const viaProxy = createRedis(config, { maxRetriesPerRequest: 2 });
  viaProxy.on('error', () => undefined); // the cut connection's errors are the point of the test
  const rt = await createEmbedderRuntime(config, log, { redis: viaProxy });
  await rt.deps.store.ensureIndex();
  const viaProxyKinesis = createKinesis(config);
  const metrics = watchMetrics('embedder');
  const clock = jumpClock();
  const consumer = startEmbedderConsumer(
    config,
    { ...consumerDeps(rt, viaProxyKinesis, log), metrics: metrics.emitter },
    { clock: clock.now },
  );
  const ev = new EventFactory();
  running = {
    rt,
    consumer,
    metrics,
    clock,
    stall: { metrics, clock, name: STALL, threshold: THRESHOLD, healthy: HEALTHY, done: consumer.done },
    stream: config.KINESIS_STREAM,
    put: (n) =>
      putEvents(
        kinesis,
        config.KINESIS_STREAM,
        Array.from({ length: n }, () => ev.insert(makeRow((rowSeq += 1)))),
      ),
    async close() {
      consumer.stop();
      await consumer.done.catch(() => undefined);
      viaProxyKinesis.destroy();
      await rt.close();
      viaProxy.disconnect();
      await resetSuiteRedis(env, redis);
    },
  };
  return running;
}

/** Waits until `n` records were applied in all. */
async function applied(w: Watched, n: number): Promise<void> {
  await eventually(async () => w.consumer.stats.totals.records >= n, 90_000, `${n} records applied`);
}

/** The fault lifted: the records written meanwhile are applied and the stall falls back. */
async function expectRecovery(w: Watched, total: number): Promise<void> {
  await applied(w, total);
  await w.metrics.waitFor(STALL, (v) => v < HEALTHY, w.metrics.records.length, 'caught up again');
}

beforeAll(async () => {
  const env = suiteEnv('embedder_stall');
  redis = suiteRedis(env);
  kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
  redisProxy = await startTcpProxy({ host: env.REDIS_HOST ?? '127.0.0.1', port: Number(env.REDIS_PORT) });
  const k = new URL(env.KINESIS_ENDPOINT as string);
  kinesisProxy = await startTcpProxy({ host: k.hostname, port: Number(k.port) });
});

afterEach(async () => {
  redisProxy.restore();
  kinesisProxy.restore();
  await running?.close();
  running = null;
});

afterAll(async () => {
  await redisProxy?.close();
  await kinesisProxy?.close();
  kinesis?.destroy();
  redis?.disconnect();
});

describe('embedder metrics', () => {
  it('emits per-batch counts that add up to what it applied, and reads healthy on an idle stream', async () => {
    // Prepare: 60 inserts and one record no framing reads (dead-lettered)
    const w = await startWatchedConsumer('batches');
    await w.put(60);
    await putEvents(kinesis, w.stream, [new TextEncoder().encode('not a change event')]);
    // Act
    await applied(w, 61);
    await w.metrics.next(STALL, 2, w.metrics.records.length); // sampled at the tip since
    const from = w.metrics.records.length;
    w.clock.jump(600_000); // ten idle minutes on the consumer's clock
    const healthyAt = await w.metrics.waitFor(STALL, (v) => v < HEALTHY, from, 'idle reads healthy');
    // Assess
    const sum = (name: (typeof SERVICE_METRICS.embedder)[number]) =>
      w.metrics.values(name).reduce((a, b) => a + b, 0);
    expect(sum(METRICS.EmbedderRecordsApplied)).toBe(60);
    expect(sum(METRICS.EmbedderDeadLetters)).toBe(1);
    expect(sum(METRICS.EmbedderStaleRefused)).toBe(0);
    expect(sum(METRICS.EmbedderEmbeddings)).toBeGreaterThan(0);
    const latencies = w.metrics.records.flatMap((r) => r.values[METRICS.EmbedderCommitToRedisLatency] ?? []);
    expect(latencies).toHaveLength(60);
    expect(Math.min(...latencies)).toBeGreaterThanOrEqual(0);
    expect(healthyAt - from).toBeLessThanOrEqual(4);
    expect(w.metrics.values(METRICS.EmbedderMillisBehindLatest, healthyAt)[0]).toBeLessThan(HEALTHY * 1000);
    const names = new Set(w.metrics.records.flatMap((r) => Object.keys(r.values)));
    expect([...names].sort()).toEqual([...SERVICE_METRICS.embedder].sort());
  });

  it('grows past the threshold while Redis is down, and falls once Redis is back', async () => {
    // Prepare
    const w = await startWatchedConsumer('redis');
    await w.put(10);
    await applied(w, 10);
    // Act: Redis goes away (connections closed, new ones refused); records keep coming
    redisProxy.cut();
    await w.put(20);
    // Assess
    await expectStallPastThreshold(w.stall);
    redisProxy.restore();
    await expectRecovery(w, 30);
  });

  it('grows past the threshold while another consumer holds its lease, and falls once it has it back', async () => {
    // Prepare
    const w = await startWatchedConsumer('lease');
    await w.put(10);
    await applied(w, 10);
    const key = w.rt.keys.consumerLease(w.stream);
    const other = createRedisLease(redis, key, 'embedder-2.internal:9:other', 120_000, 'consumer lease');
    // Act: another consumer takes the lease; records keep coming
    await redis.del(key);
    expect(await other.tryAcquire()).toBe(true);
    await w.put(20);
    await eventually(async () => w.consumer.stats.leaseLost >= 1, 60_000, 'the lease lost');
    // Assess
    await expectStallPastThreshold(w.stall);
    expect(w.consumer.stats.state).toBe('waiting-lease');
    await other.release();
    await expectRecovery(w, 30);
  });

  it('grows past the threshold while Kinesis is unreachable, and falls once it is reachable', async () => {
    // Prepare
    const w = await startWatchedConsumer('kinesis');
    await w.put(10);
    await applied(w, 10);
    // Act: the consumer's Kinesis connections are refused; records keep coming (written directly)
    kinesisProxy.cut();
    await w.put(20);
    // Assess
    await expectStallPastThreshold(w.stall);
    expect(w.consumer.stats.totals.records).toBe(10);
    kinesisProxy.restore();
    await expectRecovery(w, 30);
  });
});
