/**
 * The embedder with the Titan provider against the fake Bedrock server (test/support/fake-bedrock.ts), on
 * the real kinesalite + Redis: throttling converges with no dead letters; a text Bedrock rejects is
 * dead-lettered, the rest applied, and `drugsync dlq replay` (CLI child process) applies it once the cause
 * is fixed.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import type { Env } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import { createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import type { EmbedderRuntime } from '../services/embedder/runtime.ts';
import { startFakeBedrock } from './support/fake-bedrock.ts';
import type { FakeBedrock } from './support/fake-bedrock.ts';
import { EventFactory, makeRow } from './support/events.ts';
import { putEvents } from './support/put-events.ts';
import { resetSuiteRedis, resetSuiteStream, suiteEnv, suiteRedis } from './support/stack.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('embedder with Titan (fake Bedrock)', () => {
  let bedrock: FakeBedrock;
  let env: Env;
  let redis: RedisClient;
  let rt: EmbedderRuntime;
  const kinesisOf = () => createKinesis(rt.config);

  beforeAll(async () => {
    bedrock = await startFakeBedrock({ rpm: 600, latencyMs: 5 });
    env = suiteEnv('embedder_titan', {
      EMBEDDING_PROVIDER: 'titan',
      EMBEDDING_DIMENSIONS: '256',
      BEDROCK_ENDPOINT: bedrock.endpoint,
      BEDROCK_REGION: 'us-east-1',
      EMBEDDING_RPM: '6000',
      EMBEDDING_CONCURRENCY: '8',
    });
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    await resetSuiteStream(env, 2);
    rt = await createEmbedderRuntime(
      decodeEmbedderConfig(env),
      createLogger({ service: 'titan-it' }, { level: 'error' }),
      {
        redis,
      },
    );
    await rt.deps.store.ensureIndex();
  });
  afterAll(async () => {
    await resetSuiteRedis(env, redis);
    await rt.close();
    redis.disconnect();
    await bedrock.close();
  });

  const drain = () => {
    const kinesis = kinesisOf();
    return startEmbedderConsumer(
      rt.config,
      {
        kinesis,
        redis,
        keys: rt.keys,
        apply: rt.deps,
        log: rt.deps.log,
      },
      { exitWhenIdleMs: 1000 },
    ).done.finally(() => kinesis.destroy());
  };

  it('converges under throttling with no dead letters, every new name embedded, at most once per shard', async () => {
    // Prepare: 300 rows, 150 distinct names; the fake allows 10 requests/s, the service asks for more
    const ev = new EventFactory();
    const rows = Array.from({ length: 300 }, (_, i) =>
      makeRow(i, { LN: `DRUG ${Math.floor(i / 2)} 10 MG TABLET` }),
    );
    const kinesis = kinesisOf();
    await putEvents(
      kinesis,
      rt.config.KINESIS_STREAM,
      rows.map((r) => ev.insert(r)),
    );
    kinesis.destroy();
    // Act
    const stats = await drain();
    // Assess
    expect(bedrock.stats.throttled).toBeGreaterThan(0);
    expect(stats.totals.deadLettered).toBe(0);
    expect(stats.totals.upserted).toBe(300);
    expect(bedrock.stats.perText.size).toBe(150);
    // deduplicated within a batch and cached across batches; two shards missing the cache for the same
    // new name at the same moment may both ask for it (at most once per shard)
    expect(Math.max(...bedrock.stats.perText.values())).toBeLessThanOrEqual(2);
    expect(await rt.deps.dlq.list()).toEqual([]);
    const res = (await redis.call('FT.SEARCH', rt.keys.index, '*', 'LIMIT', '0', '0')) as [number];
    expect(Number(res[0])).toBe(300);
  });

  it('dead-letters a text Bedrock rejects, applies the rest, and `drugsync dlq replay` applies it after the fix', async () => {
    bedrock.setOptions({ rejectMarker: 'QZREJECT' });
    const ev = new EventFactory('binlog.000004');
    const bad = makeRow(900, { LN: 'QZREJECT 5 MG TABLET' });
    const good = Array.from({ length: 5 }, (_, i) => makeRow(901 + i, { LN: `GOODNAME ${i} MG TABLET` }));
    const kinesis = kinesisOf();
    await putEvents(kinesis, rt.config.KINESIS_STREAM, [ev.insert(bad), ...good.map((r) => ev.insert(r))]);
    kinesis.destroy();
    const stats = await drain();
    expect(stats.totals.deadLettered).toBe(1);
    expect(stats.totals.upserted).toBe(5);
    const letters = await rt.deps.dlq.list();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ ndc: String(bad.NDC), error: { code: 'EMBEDDING_FAILED' } });
    expect(await redis.call('JSON.GET', rt.keys.doc(String(bad.NDC)))).toBeNull();

    // list through the CLI
    const list = await cli(['dlq', 'list', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout.trim().split('\n')[0]!)).toMatchObject({
      id: letters[0]!.id,
      ndc: String(bad.NDC),
    });

    // replay before the fix: still failing, the letter stays, exit 1
    const early = await cli(['dlq', 'replay']);
    expect(early.code).toBe(1);
    expect(await rt.deps.dlq.list()).toHaveLength(1);

    // fix the cause, replay: applied and removed
    bedrock.setOptions({ rejectMarker: undefined });
    const replay = await cli(['dlq', 'replay', '--id', letters[0]!.id]);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/applied 1, removed 1, still failing 0/);
    expect(await rt.deps.dlq.list()).toEqual([]);
    const doc = JSON.parse((await redis.call('JSON.GET', rt.keys.doc(String(bad.NDC)), '$')) as string) as {
      drug_name: string;
    }[];
    expect(doc[0]!.drug_name).toBe('QZREJECT 5 MG TABLET');
  });

  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(root, 'bin/drugsync.mjs'), ...args], {
        cwd: root,
        env: { ...process.env, ...env } as NodeJS.ProcessEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }
});
