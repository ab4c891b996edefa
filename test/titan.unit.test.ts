import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createTitanEmbedder,
  isLocalEndpoint,
  TITAN_MAX_BYTES,
  truncateUtf8,
} from '../services/core/embedding/titan.ts';
import type { TitanSettings } from '../services/core/embedding/titan.ts';
import { createEmbedder, createEmbeddingServiceWith } from '../services/core/embedding/service.ts';
import type { EmbeddingCache } from '../services/core/embedding/cache.ts';
import { decodeConfig, embeddingShape, kinesisShape } from '../services/core/config.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { generateCatalogue } from './support/factories.ts';
import { startFakeBedrock } from './support/fake-bedrock.ts';
import type { FakeBedrock } from './support/fake-bedrock.ts';

const MODEL = 'amazon.titan-embed-text-v2:0';
const quiet = createLogger({ service: 'titan-test' }, { level: 'error' });

/** An in-memory cache (the Redis one is tested against Redis in embedding.test.ts). */
function memoryCache(): EmbeddingCache {
  const m = new Map<string, number[]>();
  return {
    async getMany(hs) {
      return new Map(hs.filter((h) => m.has(h)).map((h) => [h, m.get(h) as number[]]));
    },
    async putMany(e) {
      for (const [h, v] of e) m.set(h, [...v]);
    },
  };
}

describe('Titan embedder through the AWS SDK against a fake Bedrock', () => {
  let bedrock: FakeBedrock;
  const names = [...new Set([...generateCatalogue({ rows: 3_000, seed: 3 })].map((r) => String(r.LN60)))];
  const titan = (over: Partial<TitanSettings> = {}) =>
    createTitanEmbedder({
      model: MODEL,
      dimensions: 256,
      region: 'us-east-1',
      endpoint: bedrock.endpoint,
      concurrency: 4,
      logger: quiet,
      ...over,
    });
  const service = (dimensions: number, rpm: number, maxRetries = 12) =>
    createEmbeddingServiceWith({
      embedder: titan({ dimensions, concurrency: 8 }),
      cache: memoryCache(),
      concurrency: 8,
      rpm,
      maxRetries,
      backoffMs: 20,
      logger: quiet,
    });

  beforeAll(async () => {
    bedrock = await startFakeBedrock();
  });
  beforeEach(() => {
    bedrock.setOptions({
      rpm: undefined,
      latencyMs: 0,
      rejectMarker: undefined,
      serverErrorRate: undefined,
      failNext: undefined,
    });
  });
  afterAll(async () => bedrock.close());

  it('gets normalised vectors of the requested dimensions', async () => {
    const [v] = await titan().embed(['LISINOPRIL 10 MG TABLET']);
    const [w] = await titan({ dimensions: 1024 }).embed(['LISINOPRIL 10 MG TABLET']);
    expect(v).toHaveLength(256);
    expect(w).toHaveLength(1024);
    expect(Math.hypot(...(v as number[]))).toBeCloseTo(1, 4);
    expect(bedrock.stats.perText.get('LISINOPRIL 10 MG TABLET')).toBe(2);
  });

  it('is built from the decoded configuration (provider titan, BEDROCK_ENDPOINT, dummy credentials)', async () => {
    const cfg = decodeConfig(
      { ...embeddingShape, ...kinesisShape },
      {
        EMBEDDING_PROVIDER: 'titan',
        EMBEDDING_DIMENSIONS: '512',
        BEDROCK_ENDPOINT: bedrock.endpoint,
        BEDROCK_REGION: 'us-west-2',
      },
    );
    const embedder = createEmbedder(cfg, quiet);
    const [v] = await embedder.embed(['ZEPBOUND 5 MG/0.5 ML VIAL']);
    expect(embedder.model).toBe(MODEL);
    expect(embedder.maxBatch).toBe(1);
    expect(v).toHaveLength(512);
    const local = createEmbedder(decodeConfig({ ...embeddingShape, ...kinesisShape }, {}));
    expect(local.model).toBe('drugsync-lexical-v1');
  });

  it('uses dummy credentials only for an endpoint on this machine, and refuses a malformed endpoint', () => {
    expect(isLocalEndpoint(bedrock.endpoint)).toBe(true);
    expect(isLocalEndpoint('https://bedrock-runtime.us-east-1.amazonaws.com')).toBe(false);
    expect(isLocalEndpoint('https://vpce-0abc.bedrock-runtime.us-east-1.vpce.amazonaws.com')).toBe(false);
    const bad = (() => {
      try {
        return titan({ endpoint: 'not a url' });
      } catch (e) {
        return e;
      }
    })();
    expect(isDrugsyncError(bad, 'CONFIG_INVALID')).toBe(true);
  });

  it('surfaces throttling as a retryable EMBEDDING_THROTTLED and bad input as EMBEDDING_FAILED', async () => {
    bedrock.setOptions({ rpm: 0 });
    const throttled = await titan()
      .embed(['METFORMIN HCL 500 MG TABLET'])
      .catch((e: unknown) => e);
    bedrock.setOptions({ rpm: undefined, rejectMarker: '<<bad>>' });
    const rejected = await titan()
      .embed(['<<bad>> 5 MG'])
      .catch((e: unknown) => e);
    expect(isDrugsyncError(throttled, 'EMBEDDING_THROTTLED')).toBe(true);
    expect((throttled as { retryable: boolean }).retryable).toBe(true);
    expect((throttled as { context: { status: number } }).context.status).toBe(429);
    expect(isDrugsyncError(rejected, 'EMBEDDING_FAILED')).toBe(true);
    expect((rejected as { retryable: boolean }).retryable).toBe(false);
  });

  it('maps 5xx and ModelNotReady to a retryable EMBEDDING_TRANSIENT', async () => {
    bedrock.setOptions({ failNext: { count: 1, status: 503, errorType: 'ServiceUnavailableException' } });
    const unavailable = await titan()
      .embed(['AMLODIPINE BESYLATE 5 MG TABLET'])
      .catch((e: unknown) => e);
    bedrock.setOptions({ failNext: { count: 1, status: 429, errorType: 'ModelNotReadyException' } });
    const notReady = await titan()
      .embed(['AMLODIPINE BESYLATE 5 MG TABLET'])
      .catch((e: unknown) => e);
    bedrock.setOptions({ failNext: { count: 1, status: 500, errorType: 'InternalServerException' } });
    const internal = await titan()
      .embed(['AMLODIPINE BESYLATE 5 MG TABLET'])
      .catch((e: unknown) => e);
    for (const e of [unavailable, notReady, internal]) {
      expect(isDrugsyncError(e, 'EMBEDDING_TRANSIENT')).toBe(true);
      expect((e as { retryable: boolean }).retryable).toBe(true);
    }
  });

  it('cuts a text beyond the Titan input limit at a character boundary instead of failing', async () => {
    const lines: string[] = [];
    const logger = createLogger(
      { service: 'titan-test' },
      { level: 'warn', json: true, write: (l) => lines.push(l) },
    );
    const long = `SODIUM CHLORIDE 0.9 % ${'é'.repeat(30_000)} ${'X'.repeat(30_000)}`;
    const [v] = await titan({ logger }).embed([long]);
    expect(v).toHaveLength(256);
    expect(bedrock.stats.maxChars).toBeLessThanOrEqual(TITAN_MAX_BYTES);
    expect(lines.some((l) => l.includes('truncated'))).toBe(true);
    const cut = truncateUtf8(long, TITAN_MAX_BYTES);
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(TITAN_MAX_BYTES);
    expect(long.startsWith(cut)).toBe(true);
    expect(cut.endsWith('é')).toBe(true);
  });

  it('completes under a quota with 0 failures, slowing down instead of failing', async () => {
    // Prepare: a hidden quota at half the configured budget.
    const quota = 3_000;
    bedrock.setOptions({ rpm: quota, latencyMs: 2 });
    const okBefore = bedrock.stats.ok;
    const throttledBefore = bedrock.stats.throttled;
    const texts = names.slice(0, 250);
    // Act
    const res = await service(256, quota * 2).embedTexts(texts);
    // Assess: everything embedded once, the fake refused the excess, the service adapted.
    const ok = bedrock.stats.ok - okBefore;
    const throttled = bedrock.stats.throttled - throttledBefore;
    expect(res.failures.size).toBe(0);
    expect(res.vectors.size).toBe(texts.length);
    expect(ok).toBe(texts.length);
    expect(throttled).toBeGreaterThan(0);
    expect(res.stats.throttled).toBe(throttled);
    expect(res.stats.requests).toBe(ok + throttled);
    // AIMD backs off: the refused requests stay a small share of the accepted ones (hammering at the
    // budget would be refused about as often as accepted).
    expect(throttled).toBeLessThan(ok * 0.25);
  });

  it('completes under a quota with no budget configured at all', async () => {
    bedrock.setOptions({ rpm: 3_000, latencyMs: 2 });
    const okBefore = bedrock.stats.ok;
    const texts = names.slice(250, 400);
    const res = await service(256, Infinity).embedTexts(texts);
    expect(res.failures.size).toBe(0);
    expect(bedrock.stats.ok - okBefore).toBe(texts.length);
    expect(res.stats.throttled).toBeGreaterThan(0);
    expect(res.stats.throttled).toBeLessThan(texts.length);
  });

  it('retries transient server errors to success', async () => {
    bedrock.setOptions({ failNext: { count: 5, status: 503, errorType: 'ServiceUnavailableException' } });
    const texts = names.slice(400, 420);
    const res = await service(256, 60_000).embedTexts(texts);
    expect(res.failures.size).toBe(0);
    expect(res.vectors.size).toBe(texts.length);
    expect(res.stats.retries).toBe(5);
  });

  it('gives up on a text after its retries and reports it, without failing the others', async () => {
    bedrock.setOptions({ failNext: { count: 3, status: 500, errorType: 'InternalServerException' } });
    const res = await service(256, 60_000, 2).embedTexts(['ATORVASTATIN 40 MG TABLET']);
    expect(res.vectors.size).toBe(0);
    expect(isDrugsyncError(res.failures.get('ATORVASTATIN 40 MG TABLET'), 'EMBEDDING_TRANSIENT')).toBe(true);
    expect(res.stats).toMatchObject({ requests: 3, retries: 2, failed: 1 });
  });

  it('reports a rejected text per text and embeds the rest', async () => {
    bedrock.setOptions({ rejectMarker: '<<bad>>' });
    const res = await service(256, 6_000, 3).embedTexts([
      'ATORVASTATIN 40 MG TABLET',
      '<<bad>> NAME',
      'ZEPBOUND 5 MG/0.5 ML VIAL',
    ]);
    expect([...res.vectors.keys()].sort()).toEqual([
      'ATORVASTATIN 40 MG TABLET',
      'ZEPBOUND 5 MG/0.5 ML VIAL',
    ]);
    expect(isDrugsyncError(res.failures.get('<<bad>> NAME'), 'EMBEDDING_FAILED')).toBe(true);
    expect(res.stats.failed).toBe(1);
    expect(res.stats.retries).toBe(0);
  });
});
