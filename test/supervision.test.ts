/**
 * Supervision on the real stack: `drugsync stream` killed with -9 leaves no reader or embedder behind and a
 * new one takes over at once; a second `stream` beside a live one is refused (SUPERVISOR_RUNNING); one
 * embedder consumer applies per stream while a second waits for its lease; a Redis outage longer than the
 * old Lambda retry budget (10 retries) loses nothing. Units: the lease on real Redis, the status-line rate.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { Env } from '../services/core/config.ts';
import { createRedis } from '../services/core/clients/redis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { createLogger } from '../services/core/log.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createRedisLease, keepLease, leaseOwnerId, parseLeaseValue } from '../services/core/lease.ts';
import { counterRate } from '../services/cli/stream.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import type { EmbedderConsumer } from '../services/embedder/consumer.ts';
import { consumerDeps, createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import { preparePipeline, runCli, startProc } from './support/pipeline.ts';
import type { Proc } from './support/pipeline.ts';
import { eventually, resetSuiteRedis, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import { whileWriting } from './support/writer.ts';

const log = createLogger({ service: 'test' });

/** Pids whose parent is `ppid` (from /proc). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A process is running (a zombie waiting for its new parent to reap it counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const leasePid = async (redis: RedisClient, key: string) => parseLeaseValue(await redis.get(key), 0).pid;

describe('supervision units', () => {
  const env = suiteEnv('supervision_units');
  let redis: RedisClient;
  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('a lease is taken by one owner, renewed, lost to a successor after expiry, and released for one', async () => {
    // Prepare
    const key = suiteKeys(env).readerLease;
    const a = createRedisLease(redis, key, leaseOwnerId(), 600);
    const b = createRedisLease(redis, key, leaseOwnerId(), 600);
    // Act + Assess: one holder, the other sees who
    expect(await a.tryAcquire()).toBe(true);
    expect(await b.tryAcquire()).toBe(false);
    const h = await b.holder();
    expect(h).toMatchObject({ owner: a.owner, pid: process.pid });
    expect(h.since).not.toBeNull();
    expect(await a.renew()).toBe(true);
    // a stops renewing: the key expires and b takes over; a finds it lost and its keeper says so
    await eventually(async () => (await b.tryAcquire()) || null, 10_000, 'b to take the expired lease');
    expect(await a.renew()).toBe(false);
    let lost: unknown = null;
    const keeper = keepLease(a, 600, (cause) => (lost = cause));
    await eventually(async () => lost !== null, 10_000, 'the keeper to report the loss');
    expect(keeper.valid()).toBe(false);
    // b releases: a takes it at once, with a new token
    await b.release();
    expect(await redis.exists(key)).toBe(0);
    const before = a.token();
    expect(await a.tryAcquire()).toBe(true);
    expect(a.token()).not.toBe(before);
    await a.release();
    expect(await redis.exists(key)).toBe(0);
  });

  it('a counter rate is never negative: a counter that went down restarted, its new value is the delta', () => {
    expect(counterRate(100, 130, 2)).toBe(15);
    expect(counterRate(5000, 12, 2)).toBe(6); // the embedder restarted and has done 12 since
    expect(counterRate(5000, 0, 1)).toBe(0);
    expect(counterRate(undefined, 40, 1)).toBe(0);
    expect(counterRate(Number.NaN, 40, 1)).toBe(0);
    expect(counterRate(10, 20, 0)).toBe(0);
  });
});

describe('supervision: drugsync stream', () => {
  const env = suiteEnv('supervision');
  const keys = suiteKeys(env);
  const consumerLease = keys.consumerLease(env.KINESIS_STREAM as string);
  let admin: Connection;
  let redis: RedisClient;
  const procs: Proc[] = [];

  beforeAll(async () => {
    ({ admin } = await preparePipeline(env, 1500, 15));
    redis = suiteRedis(env);
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
  }, 300_000);
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await admin.end();
    await redis.quit();
  });

  /** Waits until the supervisor's two children hold the reader and consumer leases; returns their pids. */
  const childrenHoldingLeases = (sup: Proc) =>
    eventually(
      async () => {
        const kids = childrenOf(sup.child.pid as number);
        const reader = await leasePid(redis, keys.readerLease);
        const consumer = await leasePid(redis, consumerLease);
        return kids.length === 2 && kids.includes(reader ?? -1) && kids.includes(consumer ?? -1) && kids;
      },
      60_000,
      'the reader and the embedder to run and hold their leases',
    );

  it('kill -9 of the supervisor leaves no reader or embedder; a new stream takes over at once; verify is clean', async () => {
    // Prepare: a running stream, and a writer committing changes throughout
    const first = startProc(env, ['stream']);
    procs.push(first);
    const kids = await childrenHoldingLeases(first);
    const run = await whileWriting(env, { rate: 20, seed: 15 }, async () => {
      await eventually(
        async () => Number(await redis.hget(keys.serviceStatus('embedder'), 'records')) > 0,
        60_000,
        'the embedder to apply changes',
      );
      // Act: the supervisor dies without running any handler
      first.child.kill('SIGKILL');
      await first.exited;
      // its children stop by themselves, releasing their leases on the way out
      await eventually(
        async () => kids.every((pid) => !running(pid)),
        60_000,
        'the orphaned children to exit',
      );
      const orphanLeases = await redis.exists(keys.readerLease, consumerLease);
      const second = startProc(env, ['stream']);
      procs.push(second);
      const kids2 = await childrenHoldingLeases(second);
      await new Promise((r) => setTimeout(r, 3000)); // the writer keeps committing under the new stream
      return { orphanLeases, second, kids2 };
    });
    // Assess
    const { orphanLeases, second, kids2 } = run.result;
    expect(orphanLeases).toBe(0);
    expect(kids2.some((pid) => kids.includes(pid))).toBe(false);
    expect(second.stderrTail()).toContain('taking over a stale supervisor lock');
    expect(run.writer.errors).toBe(0);
    expect(run.verify).toMatchObject({ ok: true, missing: 0, extra: 0, stale: 0 });
  });

  it('a second stream beside a live one exits with SUPERVISOR_RUNNING naming its pid', async () => {
    // Prepare: the stream of the previous test is live
    const live = procs.at(-1) as Proc;
    expect(live.child.exitCode).toBeNull();
    // Act
    const r = await runCli(env, ['stream'], 60_000);
    // Assess
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('SUPERVISOR_RUNNING');
    expect(r.stderr).toContain(`pid ${live.child.pid}`);
    expect(childrenOf(live.child.pid as number)).toHaveLength(2);
    // and the live one stops cleanly: its children with it
    const kids = childrenOf(live.child.pid as number);
    live.child.kill('SIGTERM');
    expect(await live.exited).toBe(0);
    expect(kids.filter(running)).toEqual([]);
    expect(await redis.exists(keys.readerLease, consumerLease)).toBe(0);
  });
});

describe('supervision: one consumer per stream, and a long Redis outage', () => {
  const env = suiteEnv('supervision_consumers');
  let admin: Connection;
  let redis: RedisClient;
  let reader: Proc;
  const consumers: EmbedderConsumer[] = [];
  const closers: (() => Promise<void> | void)[] = [];

  /** An in-process embedder consumer (the `embedder` command's wiring) on the given Redis connection. */
  const startConsumer = async (over: Env, client?: RedisClient) => {
    const config = decodeEmbedderConfig({ ...env, ...over });
    const rt = await createEmbedderRuntime(config, log, client ? { redis: client } : {});
    const kinesis = createKinesis(config);
    closers.push(
      () => kinesis.destroy(),
      () => rt.close(),
    );
    const c = startEmbedderConsumer(config, consumerDeps(rt, kinesis, log));
    consumers.push(c);
    return c;
  };
  /** `n` changes at 100/s, then Redis equal to MySQL (verify). */
  const changes = async (n: number, seed: number) => {
    const run = await whileWriting(env, { rate: 100, seed, maxChanges: n }, async () => undefined);
    expect(run.writer.errors).toBe(0);
    expect(run.writer.changes).toBe(n);
    return run.verify;
  };
  const shardErrors = (c: EmbedderConsumer) => [...c.stats.shards.values()].reduce((n, s) => n + s.errors, 0);

  beforeAll(async () => {
    ({ admin } = await preparePipeline(env, 1000, 16));
    redis = suiteRedis(env);
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    reader = startProc(env, ['binlog-reader']);
  }, 300_000);
  afterAll(async () => {
    for (const c of consumers) c.stop();
    await Promise.all(consumers.map((c) => c.done));
    for (const close of closers) await close();
    reader.child.kill('SIGTERM');
    await reader.exited;
    await admin.end();
    await redis.quit();
  });

  it('only the lease holder applies; the second waits, naming the holder, and takes over when it stops', async () => {
    // Prepare
    const first = await startConsumer({ EMBEDDER_LEASE_TTL_MS: '3000' });
    await eventually(async () => first.stats.state === 'applying', 30_000, 'the first consumer to apply');
    const second = await startConsumer({ EMBEDDER_LEASE_TTL_MS: '3000' });
    await eventually(async () => second.stats.state === 'waiting-lease' && second.stats.leaseHolder, 30_000);
    expect(second.stats.leaseHolder).toMatchObject({ owner: first.owner, pid: process.pid });
    // Act: changes while both run, applied (verify clean)
    await changes(150, 161);
    // Assess
    expect(first.stats.totals.rowEvents).toBeGreaterThan(0);
    expect(second.stats.totals.records).toBe(0);
    expect(second.stats.state).toBe('waiting-lease');
    // Act: the first stops cleanly (releases the lease); more changes
    first.stop();
    await first.done;
    await eventually(async () => second.stats.state === 'applying', 30_000, 'the second to take over');
    const firstTotal = first.stats.totals.records;
    const verify = await changes(150, 162);
    // Assess
    expect(verify).toMatchObject({ ok: true, missing: 0, extra: 0, stale: 0 });
    expect(second.stats.totals.rowEvents).toBeGreaterThan(0);
    expect(first.stats.totals.records).toBe(firstTotal);
    second.stop();
    await second.done;
  });

  it('a Redis outage through ≥ 15 failed apply attempts while changes arrive loses nothing', async () => {
    // Prepare: the consumer reaches Redis through our proxy; its client fails a command fast while cut off
    const proxy = await startTcpProxy({ host: env.REDIS_HOST ?? '127.0.0.1', port: Number(env.REDIS_PORT) });
    closers.push(() => proxy.close());
    const client = createRedis(
      {
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: proxy.port,
        REDIS_PASSWORD: env.REDIS_PASSWORD,
        REDIS_TLS: false,
      },
      { maxRetriesPerRequest: 1, retryStrategy: () => 100, connectTimeout: 1000 },
    );
    client.on('error', () => undefined); // the cut connections' errors are expected; the consumer logs its own
    closers.push(() => client.disconnect());
    const consumer = await startConsumer(
      { EMBEDDER_LEASE_TTL_MS: '120000', EMBEDDER_MAX_BACKOFF_MS: '200' },
      client,
    );
    await eventually(async () => consumer.stats.state === 'applying', 30_000, 'the consumer to apply');
    // Act: with changes arriving all along, cut the consumer off Redis until it has failed at least 15 apply
    // attempts (the Lambda mapping gave up after 10)
    const run = await whileWriting(env, { rate: 20, seed: 163 }, async (writer) => {
      const failedBefore = shardErrors(consumer);
      const changesBefore = writer.stats.changes;
      proxy.cut();
      await eventually(
        async () => shardErrors(consumer) - failedBefore >= 15,
        120_000,
        '15 failed apply attempts during the outage',
      );
      const changesDuring = writer.stats.changes - changesBefore;
      proxy.restore();
      await new Promise((r) => setTimeout(r, 2000));
      return changesDuring;
    });
    // Assess
    expect(run.result).toBeGreaterThan(0);
    expect(run.verify).toMatchObject({ ok: true, missing: 0, extra: 0, stale: 0 });
    expect(await redis.xlen(makeKeys(decodeEmbedderConfig(env)).deadLetters)).toBe(0);
    expect(consumer.stats.state).toBe('applying');
    expect(consumer.stats.totals.deadLettered).toBe(0);
  });
});
