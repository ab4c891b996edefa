/**
 * The embedder on the real local stack: change events on kinesalite → consumer → real Redis store
 * (RedisJSON + RediSearch). Checks JSON.GET / FT.SEARCH, kill -9 + restart of the CLI consumer, clean
 * SIGTERM, truncate + reload with the sweep.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import type { Env } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import type { ConsumerStats } from '../services/embedder/consumer.ts';
import { consumerDeps, createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import type { EmbedderRuntime } from '../services/embedder/runtime.ts';
import { EventFactory, makeRow } from './support/events.ts';
import { putEvents } from './support/put-events.ts';
import { eventually, resetSuiteRedis, resetSuiteStream, suiteEnv, suiteRedis } from './support/stack.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Suite {
  env: Env;
  rt: EmbedderRuntime;
  redis: RedisClient;
  kinesis: KinesisClient;
}

async function openSuite(name: string, over: Env = {}): Promise<Suite> {
  const env = suiteEnv(name, over);
  const config = decodeEmbedderConfig(env);
  const redis = suiteRedis(env);
  await resetSuiteRedis(env, redis);
  await resetSuiteStream(env, 2);
  const rt = await createEmbedderRuntime(config, createLogger({ service: name }, { level: 'warn' }), {
    redis,
  });
  await rt.deps.store.ensureIndex();
  return { env, rt, redis, kinesis: createKinesis(config) };
}

async function closeSuite(s: Suite | undefined): Promise<void> {
  if (!s) return;
  await resetSuiteRedis(s.env, s.redis);
  s.kinesis.destroy();
  await s.rt.close();
  s.redis.disconnect();
}

function runConsumer(s: Suite, idleMs = 1000): Promise<ConsumerStats> {
  const cfg = s.rt.config;
  return startEmbedderConsumer(cfg, consumerDeps(s.rt, s.kinesis, s.rt.deps.log), { exitWhenIdleMs: idleMs })
    .done;
}

async function jsonGet(s: Suite, ndc: string): Promise<Record<string, unknown> | null> {
  const raw = (await s.redis.call('JSON.GET', s.rt.keys.doc(ndc), '$')) as string | null;
  return raw ? ((JSON.parse(raw) as Record<string, unknown>[])[0] ?? null) : null;
}

async function searchNdc(s: Suite, ndc: string): Promise<number> {
  const res = (await s.redis.call('FT.SEARCH', s.rt.keys.index, `@ndc:{${ndc}}`, 'NOCONTENT')) as [number];
  return Number(res[0]);
}

async function searchCount(s: Suite, query = '*'): Promise<number> {
  const res = (await s.redis.call('FT.SEARCH', s.rt.keys.index, query, 'LIMIT', '0', '0')) as [number];
  return Number(res[0]);
}

function expectDoc(doc: Record<string, unknown> | null, row: Rndc14Row): void {
  expect(doc).not.toBeNull();
  const { embedding, indexed_at, ...fields } = doc as Record<string, unknown>;
  expect(fields).toEqual(mapRow(row));
  expect(Array.isArray(embedding)).toBe(true);
  expect(typeof indexed_at).toBe('string');
}

describe('embedder consumer on kinesalite + Redis', () => {
  let s: Suite | undefined;
  beforeAll(async () => {
    s = await openSuite('embedder_it');
  });
  afterAll(async () => closeSuite(s));

  it('applies inserts, updates and deletes: JSON.GET and FT.SEARCH show them', async () => {
    const suite = s as Suite;
    // Prepare
    const ev = new EventFactory();
    const rows = Array.from({ length: 60 }, (_, i) => makeRow(i));
    const renamed: Rndc14Row = { ...rows[1]!, LN: 'ROSUVASTATIN 10 MG TABLET' };
    const priced: Rndc14Row = { ...rows[2]!, PS: '90.000', BN: 'GLUCOPHAGE XR' };
    const ineligible: Rndc14Row = { ...rows[3]!, LN: 'XY' };
    await putEvents(suite.kinesis, suite.rt.config.KINESIS_STREAM, [
      ...rows.map((r) => ev.insert(r)),
      ev.update(rows[1]!, renamed),
      ev.update(rows[2]!, priced),
      ev.update(rows[3]!, ineligible),
      ev.delete(rows[4]!),
    ]);
    // Act
    const stats = await runConsumer(suite);
    // Assess
    expect(stats.totals.records).toBe(64);
    expect(stats.totals.deadLettered).toBe(0);
    expectDoc(await jsonGet(suite, String(rows[0]!.NDC)), rows[0]!);
    expectDoc(await jsonGet(suite, String(renamed.NDC)), renamed);
    expectDoc(await jsonGet(suite, String(priced.NDC)), priced);
    expect(await jsonGet(suite, String(rows[3]!.NDC))).toBeNull();
    expect(await jsonGet(suite, String(rows[4]!.NDC))).toBeNull();
    expect(await searchNdc(suite, String(rows[0]!.NDC))).toBe(1);
    expect(await searchNdc(suite, String(rows[4]!.NDC))).toBe(0);
    expect(await searchCount(suite, '@drug_name:ROSUVASTATIN')).toBe(1);
    expect(await searchCount(suite)).toBe(58);
    expect(await suite.rt.deps.dlq.list()).toEqual([]);
    // a restart from the checkpoint has nothing left to do
    const again = await runConsumer(suite);
    expect(again.totals.records).toBe(0);
  });

  it('DELETE-all + INSERT-all in one transaction: no surviving document ever leaves search', async () => {
    const suite = s as Suite;
    const before = await searchCount(suite);
    const present = Array.from({ length: 60 }, (_, i) => makeRow(i)).filter((_, i) => i !== 3 && i !== 4);
    const ev = new EventFactory('binlog.000005');
    const reloaded = present.map((r) => ({
      ...r,
      DUPDC: '2026-11-23 00:00:00.000000',
    }));
    const tx = [
      ...present.map((r) => ({ ...ev.delete(r), txid: 'tx-delete-insert' })),
      ...reloaded.map((r) => ({ ...ev.insert(r), txid: 'tx-delete-insert' })),
    ];
    await putEvents(suite.kinesis, suite.rt.config.KINESIS_STREAM, tx);
    let min = Number.MAX_SAFE_INTEGER;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        min = Math.min(min, await searchCount(suite));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const stats = await runConsumer(suite);
    sampling = false;
    await sampler;
    expect(stats.totals.records).toBe(tx.length);
    expect(stats.totals.deleted).toBe(0);
    expect(min).toBe(before);
    expect(await searchCount(suite)).toBe(before);
  });

  it('a truncate + partial reload keeps search populated, then sweeps the rows not reloaded', async () => {
    const suite = s as Suite;
    if (typeof suite.rt.deps.store.sweepOlderThan !== 'function') {
      throw new Error('the Redis store has no sweepOlderThan yet (services/core/redis/drug-store.ts)');
    }
    const before = await searchCount(suite);
    const ev = new EventFactory('binlog.000009');
    const rows = Array.from({ length: 60 }, (_, i) => makeRow(i)).filter((_, i) => i !== 3 && i !== 4);
    const kept = rows.slice(0, 40);
    const embBefore = suite.rt.deps.embeddings.totals().requests;
    suite.rt.deps.truncateQuietMs = 3000;
    await putEvents(suite.kinesis, suite.rt.config.KINESIS_STREAM, [
      ev.truncate(),
      ...kept.map((r) => ev.insert(r)),
    ]);
    const consumer = startEmbedderConsumer(
      suite.rt.config,
      {
        kinesis: suite.kinesis,
        redis: suite.redis,
        keys: suite.rt.keys,
        apply: suite.rt.deps,
        log: suite.rt.deps.log,
      },
      { maintenanceEveryMs: 200 },
    );
    try {
      // nothing disappears before the reload has settled ...
      await eventually(async () => consumer.stats.totals.records >= 42, 30_000, 'reload applied');
      expect(await searchCount(suite)).toBe(before);
      // ... then the rows not reloaded are swept
      await eventually(async () => (await searchCount(suite)) === kept.length, 30_000, 'sweep');
    } finally {
      consumer.stop();
      await consumer.done;
    }
    for (const r of kept.slice(0, 5)) expect(await searchNdc(suite, String(r.NDC))).toBe(1);
    for (const r of rows.slice(40)) expect(await jsonGet(suite, String(r.NDC))).toBeNull();
    expect(suite.rt.deps.embeddings.totals().requests - embBefore).toBe(0);
  });
});

describe('drugsync embedder (CLI child process)', () => {
  let s: Suite | undefined;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    s = await openSuite('embedder_kill');
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await closeSuite(s);
  });

  function spawnEmbedder(env: Env, args: string[] = []): ChildProcess & { exited: Promise<number | null> } {
    const child = spawn(process.execPath, [path.join(root, 'bin/drugsync.mjs'), 'embedder', ...args], {
      cwd: root,
      env: {
        ...process.env,
        ...env,
        LOG_LEVEL: 'info',
        EMBEDDER_GETRECORDS_LIMIT: '200',
      } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return Object.assign(child, { exited, stderrTail: () => err });
  }

  it('killed with -9 and restarted: nothing lost, nothing duplicated; SIGTERM stops cleanly with exit 0', async () => {
    const suite = s as Suite;
    // Prepare: 3,000 inserts then 1,500 updates (a third rename) on 2 shards
    const ev = new EventFactory();
    const rows = Array.from({ length: 3000 }, (_, i) => makeRow(10_000 + i));
    const final = rows.map((r, i) =>
      i % 2 === 0
        ? i % 3 === 0
          ? { ...r, LN: `${String(r.LN).slice(0, 20)} XR` }
          : { ...r, PS: '42.000' }
        : r,
    );
    await putEvents(suite.kinesis, suite.rt.config.KINESIS_STREAM, [
      ...rows.map((r) => ev.insert(r)),
      ...rows.flatMap((r, i) => (i % 2 === 0 ? [ev.update(r, final[i]!)] : [])),
    ]);
    const cpKey = suite.rt.keys.shardCheckpoints(suite.rt.config.KINESIS_STREAM);

    // Act 1: start, wait for progress, kill -9 mid-stream
    const first = spawnEmbedder(suite.env);
    await eventually(async () => (await searchCount(suite)) >= 500, 60_000, 'first documents');
    first.kill('SIGKILL');
    await first.exited;
    const afterKill = await searchCount(suite);
    expect(afterKill).toBeLessThan(3000 + 1);

    // Act 2: start again; SIGTERM while it works → exit 0 with a checkpoint
    // (the killed run left checkpoints: wait until this run has advanced one, so its handlers are in place)
    const before = JSON.stringify(await suite.redis.hgetall(cpKey));
    const second = spawnEmbedder(suite.env);
    await eventually(
      async () => JSON.stringify(await suite.redis.hgetall(cpKey)) !== before,
      60_000,
      'checkpoint advanced by the second run',
    );
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    // Act 3: run to the end
    const third = spawnEmbedder(suite.env, ['--exit-when-idle', '2']);
    expect(await third.exited).toBe(0);

    // Assess: every document present exactly once with its newest state, no dead letters
    expect(await searchCount(suite)).toBe(3000);
    for (let i = 0; i < final.length; i += 97)
      expectDoc(await jsonGet(suite, String(final[i]!.NDC)), final[i]!);
    const renamed = final.filter((_, i) => i % 6 === 0);
    for (const r of renamed.slice(0, 20)) {
      const doc = await jsonGet(suite, String(r.NDC));
      expect(doc?.drug_name).toBe(String(r.LN).toUpperCase());
    }
    expect(await suite.rt.deps.dlq.list()).toEqual([]);
    const status = await suite.redis.hgetall(suite.rt.keys.serviceStatus('embedder'));
    expect(Number(status.records)).toBeGreaterThan(0);
  });
});
