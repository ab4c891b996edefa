/**
 * The MiniLM provider on the real stack: a 5,000-row seeded catalogue (seed 42) backfilled with
 * EMBEDDING_PROVIDER=minilm (the suite asks for 32-d: MiniLM's 384 wins), searched by meaning, then a
 * change streamed through binlog reader → Kinesis → embedder, re-embedded with MiniLM and found. The model
 * is installed by the project's own step (scripts/models.sh) when missing. Pure parts (padding, pooling,
 * the install check) are tested on hand-computed cases.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig, embeddingModelId, embeddingShape } from '../services/core/config.ts';
import {
  assertMinilmRuntime,
  batchInputs,
  createMinilmEmbedder,
  meanPoolNormalize,
  MINILM_RUNTIME_INSTALL,
  MINILM_RUNTIME_PACKAGES,
  missingMinilmRuntime,
} from '../services/core/embedding/minilm.ts';
import {
  installMinilm,
  MINILM_DIMENSIONS,
  MINILM_MODEL_ID,
  minilmProblems,
} from '../services/core/embedding/minilm-files.ts';
import type { Embedder } from '../services/core/embedding/types.ts';
import { DrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import { mapRow } from '../services/core/mapping.ts';
import { knnSearch } from '../services/core/redis/knn.ts';
import type { KnnHit } from '../services/core/redis/knn.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { insertRows, makeRow } from './support/factories.ts';
import { preparePipeline, runCli, startProc } from './support/pipeline.ts';
import type { Proc } from './support/pipeline.ts';
import { eventually, suiteEnv, suiteRedis } from './support/stack.ts';

describe('MiniLM pooling and batching (hand-computed)', () => {
  it('pads a batch to its longest text, mask 1 on the real tokens only', () => {
    // Prepare
    const ids = [
      [101, 7, 102],
      [101, 102],
    ];
    // Act
    const b = batchInputs(ids);
    // Assess
    expect(b.length).toBe(3);
    expect([...b.inputIds]).toEqual([101n, 7n, 102n, 101n, 102n, 0n]);
    expect([...b.mask]).toEqual([1n, 1n, 1n, 1n, 1n, 0n]);
    expect([...b.typeIds]).toEqual([0n, 0n, 0n, 0n, 0n, 0n]);
  });

  it('mean-pools the real tokens only and L2-normalises', () => {
    // Prepare: batch 2, length 2, width 2; the second text has one real token and one pad row of 100s
    const hidden = new Float32Array([1, 0, 3, 4, 0, 2, 100, 100]);
    // Act
    const [a, b] = meanPoolNormalize(hidden, [2, 1], 2, 2);
    // Assess: mean (2, 2) → (0.7071, 0.7071); (0, 2) → (0, 1), the pad row ignored
    expect(a?.[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(a?.[1]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(b).toEqual([0, 1]);
  });
});

describe('MiniLM configuration and install check', () => {
  it('EMBEDDING_PROVIDER=minilm decodes to 384-d and the MiniLM model id, whatever EMBEDDING_DIMENSIONS says', () => {
    // Prepare / Act
    const cfg = decodeConfig(embeddingShape, { EMBEDDING_PROVIDER: 'minilm', EMBEDDING_DIMENSIONS: '256' });
    // Assess
    expect(cfg.EMBEDDING_DIMENSIONS).toBe(MINILM_DIMENSIONS);
    expect(embeddingModelId(cfg)).toBe(MINILM_MODEL_ID);
  });

  it('a missing model is one CONFIG_INVALID naming the directory and the install command', () => {
    // Prepare
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'minilm-missing-'));
    try {
      // Act
      let error: unknown;
      try {
        createMinilmEmbedder({ dir: empty });
      } catch (e) {
        error = e;
      }
      // Assess
      expect(error).toBeInstanceOf(DrugsyncError);
      const err = error as DrugsyncError;
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toContain(empty);
      expect(err.message).toContain('model.onnx missing');
      expect(err.remedy).toContain('scripts/models.sh install minilm');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('the runtime resolves in a checkout; absent, it is one CONFIG_INVALID naming the packages, npm and the model too', () => {
    // Prepare: the checkout's install (optional dependencies included), and an empty model directory
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'minilm-no-runtime-'));
    try {
      expect(missingMinilmRuntime()).toEqual([]);
      // Act: the check as the production image meets it (both packages left out)
      let error: unknown;
      try {
        assertMinilmRuntime(empty, [...MINILM_RUNTIME_PACKAGES]);
      } catch (e) {
        error = e;
      }
      // Assess: every problem at once, each with what installs it
      expect(error).toBeInstanceOf(DrugsyncError);
      const err = error as DrugsyncError;
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toContain('onnxruntime-node, @huggingface/tokenizers missing');
      expect(err.message).toContain(`${empty} either (model.onnx missing`);
      expect(err.remedy).toContain(`\`${MINILM_RUNTIME_INSTALL}\` then \`scripts/models.sh install minilm\``);
      expect(err.remedy).toContain('EMBEDDING_PROVIDER=titan');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('a damaged file is refused by its sha256', () => {
    // Prepare: a copy of the installed model with one configuration file changed
    const dir = installMinilm();
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'minilm-damaged-'));
    try {
      fs.cpSync(dir, copy, { recursive: true });
      fs.appendFileSync(path.join(copy, 'config.json'), '\n');
      // Act
      const problems = minilmProblems(copy);
      // Assess
      expect(problems).toEqual(['config.json is not the pinned file']);
      expect(minilmProblems(dir)).toEqual([]);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('MiniLM provider on the stack: backfill, semantic search, a streamed change', () => {
  const env = suiteEnv('minilm', { EMBEDDING_PROVIDER: 'minilm' });
  const keys = makeKeys({
    REDIS_INDEX: env.REDIS_INDEX!,
    REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
    REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
  });
  let admin: Connection;
  let redis: RedisClient;
  let catalogue: Rndc14Row[];
  let embedder: Embedder;
  const procs: Proc[] = [];

  const search = async (text: string, k = 5): Promise<KnnHit[]> => {
    const [v] = await embedder.embed([text.toUpperCase()]);
    return knnSearch(redis, keys, v as number[], { k, breadth: 100 });
  };

  beforeAll(async () => {
    installMinilm();
    embedder = createMinilmEmbedder();
    ({ admin, catalogue } = await preparePipeline(env, 5_000, 42));
    redis = suiteRedis(env);
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    expect(backfill.json.completed).toBe(true);
  }, 600_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await admin?.end();
    await redis?.quit();
  });

  it('indexes 384-d MiniLM vectors that verify recognises as the current model', async () => {
    // Act
    const info = (await redis.call('FT.INFO', env.REDIS_INDEX as string)) as unknown[];
    const verify = await runCli(env, ['verify', '--json']);
    // Assess
    expect(JSON.stringify(info)).toContain('"dim",384');
    expect(verify.status, verify.stderr.slice(-2000)).toBe(0);
    expect(verify.json).toMatchObject({ ok: true, missing: 0, extra: 0, stale: 0 });
    expect(verify.json.redis_docs).toBe(catalogue.filter((r) => mapRow(r) !== null).length);
  }, 120_000);

  it('finds by meaning: "cholesterol lowering statin" ranks a statin label in the top 5', async () => {
    // Act
    const hits = await search('cholesterol lowering statin');
    // Assess
    expect(hits.map((h) => h.fields.drug_name).join(' | ')).toMatch(
      /ATORVASTATIN|SIMVASTATIN|PRAVASTATIN|ROSUVASTATIN|LOVASTATIN|LIPITOR|ZOCOR|CRESTOR|PRAVACHOL/,
    );
  });

  it('finds by meaning: "pain killer opioid" ranks an opioid label in the top 5', async () => {
    // Act
    const hits = await search('pain killer opioid');
    // Assess
    expect(hits.map((h) => h.fields.drug_name).join(' | ')).toMatch(
      /MORPHINE|OXYCODONE|HYDROCODONE|FENTANYL|CODEINE|TRAMADOL|BUPRENORPHINE|OXYCONTIN|ROXICODONE|NORCO|VICODIN/,
    );
  });

  it('a brand query finds the brand labels first', async () => {
    // Prepare: a real brand the catalogue holds (seed 42: 7 ZOLOFT labels)
    const zoloft = catalogue.filter((r) => mapRow(r)?.brand_name === 'ZOLOFT');
    expect(zoloft.length).toBeGreaterThan(0);
    // Act
    const hits = await search('zoloft', zoloft.length);
    // Assess: every hit is a ZOLOFT label (brand → generic, SERTRALINE, is not what MiniLM links: see docs)
    expect(hits.map((h) => h.fields.brand_name)).toEqual(zoloft.map(() => 'ZOLOFT'));
  });

  it('a name change streamed through the pipeline is re-embedded with MiniLM and found', async () => {
    // Prepare
    procs.push(startProc(env, ['binlog-reader']), startProc(env, ['embedder']));
    const row: Rndc14Row = {
      ...makeRow({}, 11, 42),
      NDC: '90000000384',
      LN: 'ZEPBOUND 2.5 MG/0.5 ML PEN',
      LN60: 'ZEPBOUND 2.5 MG/0.5 ML PEN',
      BN: 'ZEPBOUND',
    };
    // Act
    await insertRows(admin, [row]);
    const doc = await eventually(
      async () => {
        const raw = (await redis.call('JSON.GET', keys.doc('90000000384'))) as string | null;
        return raw ? (JSON.parse(raw) as { drug_name: string; embedding: number[] }) : null;
      },
      90_000,
      'the streamed insert in Redis',
    );
    // Assess: the stored vector is MiniLM's embedding of the name, and a query by it finds the label
    const [expected] = await embedder.embed(['ZEPBOUND 2.5 MG/0.5 ML PEN']);
    const cosine = doc.embedding.reduce((s, x, i) => s + x * (expected as number[])[i]!, 0);
    expect(doc.embedding).toHaveLength(MINILM_DIMENSIONS);
    expect(cosine).toBeGreaterThan(0.999);
    const hits = await search('zepbound pen');
    expect(hits.map((h) => h.ndc)).toContain('90000000384');
  }, 120_000);

  it('backfill and search asked for MiniLM without its model exit 2 naming it, instead of hanging on open clients', async () => {
    // Prepare: the suite's stack settings, a model directory with nothing in it
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'minilm-none-'));
    try {
      // Act: each must end by itself well before the timeout that would SIGKILL it (exit status null)
      const over = { ...env, DRUGSYNC_MODELS_DIR: empty };
      const backfill = await runCli(over, ['backfill', '--json'], 60_000);
      const search = await runCli(over, ['search', 'lipitor', '--mode', 'vector'], 60_000);
      // Assess
      for (const r of [backfill, search]) {
        expect(r.status, r.stderr.slice(-2000)).toBe(2);
        expect(r.stderr).toContain('CONFIG_INVALID');
        expect(r.stderr).toContain('model.onnx missing');
      }
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  }, 150_000);
});
