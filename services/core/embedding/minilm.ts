/**
 * all-MiniLM-L6-v2 (sentence-transformers, 384-d): a real, SEMANTIC, local embedder. The int8 ONNX export
 * runs on onnxruntime-node, the WordPiece tokenizer on @huggingface/tokenizers, both fully offline from the
 * files scripts/models.sh installs (see minilm-files.ts). A text becomes what sentence-transformers makes of
 * it: [CLS] tokens [SEP] (lower-cased, at most 256 tokens), the last hidden state mean-pooled over the real
 * tokens, then L2-normalised. Texts go in batches padded to their longest; one batch runs at a time, on as
 * many intra-op threads as the machine has (concurrent calls queue rather than fight for the cores).
 *
 * Both runtime packages are optionalDependencies: a checkout's `npm ci` installs them, the production image
 * (`npm ci --omit=optional`, see the Dockerfile) leaves them out (~290 MB). When the embedder is created, the
 * packages must resolve and the model must be installed (every file's sha256), so an absent runtime or a
 * missing or damaged model stops the job at start with one message naming what to install; the runtime itself
 * (the native library, the tokenizer) is loaded on the first call and only then, so other providers never
 * pay for it.
 */
import os from 'node:os';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DrugsyncError } from '../errors.ts';
import type { Embedder } from './types.ts';
import {
  assertMinilmInstalled,
  INSTALL_COMMAND,
  MINILM_DIMENSIONS,
  MINILM_MODEL_ID,
  minilmDir,
  minilmProblems,
} from './minilm-files.ts';

/** The npm packages MiniLM runs on (package.json optionalDependencies; not in the production image). */
export const MINILM_RUNTIME_PACKAGES = ['onnxruntime-node', '@huggingface/tokenizers'] as const;
/** What installs them in a checkout (no install script runs: onnxruntime-node's CPU binaries are in the package). */
export const MINILM_RUNTIME_INSTALL = 'npm ci --include=optional --ignore-scripts';

/** sentence-transformers' max_seq_length for this model. */
export const MINILM_MAX_TOKENS = 256;

export interface MinilmSettings {
  /** model id carried by vectors and cache keys (default MINILM_MODEL_ID) */
  model?: string;
  /** directory holding the installed files (default: minilmDir()) */
  dir?: string;
  /** intra-op threads (default: the machine's available parallelism) */
  threads?: number;
  /** texts per inference (default 32) */
  maxBatch?: number;
}

interface Encoded {
  ids: number[];
}
interface TokenizerLike {
  encode(text: string): Encoded;
}
interface Tensor {
  data: Float32Array;
  dims: readonly number[];
}
interface SessionLike {
  run(feeds: Record<string, unknown>): Promise<Record<string, Tensor>>;
}
interface Runtime {
  tokenizer: TokenizerLike;
  session: SessionLike;
  makeTensor: (data: BigInt64Array, dims: number[]) => unknown;
}

async function loadRuntime(dir: string, threads: number): Promise<Runtime> {
  const [ort, { Tokenizer }] = await Promise.all([
    import('onnxruntime-node'),
    import('@huggingface/tokenizers'),
  ]);
  const readJson = (f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as object;
  const tokenizer = new Tokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  return {
    tokenizer,
    session: session as unknown as SessionLike,
    makeTensor: (data, dims) => new ort.Tensor('int64', data, dims),
  };
}

/** Token ids of one text, cut to MINILM_MAX_TOKENS with its final [SEP] kept. */
function tokenIds(tokenizer: TokenizerLike, text: string): number[] {
  const ids = tokenizer.encode(text).ids;
  if (ids.length <= MINILM_MAX_TOKENS) return ids;
  return [...ids.slice(0, MINILM_MAX_TOKENS - 1), ids[ids.length - 1] as number];
}

/** The model's three int64 inputs for a batch, padded (id 0, mask 0) to its longest text. */
export function batchInputs(idLists: readonly number[][]): {
  inputIds: BigInt64Array;
  mask: BigInt64Array;
  typeIds: BigInt64Array;
  length: number;
} {
  const length = Math.max(1, ...idLists.map((l) => l.length));
  const inputIds = new BigInt64Array(idLists.length * length);
  const mask = new BigInt64Array(idLists.length * length);
  idLists.forEach((ids, b) => {
    ids.forEach((id, t) => {
      inputIds[b * length + t] = BigInt(id);
      mask[b * length + t] = 1n;
    });
  });
  return { inputIds, mask, typeIds: new BigInt64Array(idLists.length * length), length };
}

/**
 * Mean pooling over the real tokens of each text (hidden: [batch, length, width] row-major), then L2
 * normalisation: what sentence-transformers' Pooling(mean) + Normalize modules do.
 */
export function meanPoolNormalize(
  hidden: Float32Array,
  tokenCounts: readonly number[],
  length: number,
  width: number,
): number[][] {
  return tokenCounts.map((count, b) => {
    const v = new Float64Array(width);
    for (let t = 0; t < count; t++) {
      const base = (b * length + t) * width;
      for (let i = 0; i < width; i++) v[i]! += hidden[base + i] as number;
    }
    let norm = 0;
    for (let i = 0; i < width; i++) {
      v[i]! /= Math.max(count, 1);
      norm += (v[i] as number) ** 2;
    }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    return Array.from(v, (x) => Math.fround(x / norm));
  });
}

async function embedBatch(rt: Runtime, texts: readonly string[]): Promise<number[][]> {
  const idLists = texts.map((t) => tokenIds(rt.tokenizer, t));
  const { inputIds, mask, typeIds, length } = batchInputs(idLists);
  const dims = [texts.length, length];
  const out = await rt.session.run({
    input_ids: rt.makeTensor(inputIds, dims),
    attention_mask: rt.makeTensor(mask, dims),
    token_type_ids: rt.makeTensor(typeIds, dims),
  });
  const hidden = out.last_hidden_state;
  if (!hidden || hidden.dims.length !== 3 || hidden.dims[2] !== MINILM_DIMENSIONS) {
    throw new DrugsyncError(
      'EMBEDDING_FAILED',
      'the MiniLM model did not return a [batch, tokens, 384] state',
      {
        context: { dims: hidden ? hidden.dims.join('x') : null },
        remedy: `reinstall the model: rm -r ${minilmDir()} && scripts/models.sh install minilm`,
      },
    );
  }
  return meanPoolNormalize(
    hidden.data,
    idLists.map((l) => l.length),
    length,
    MINILM_DIMENSIONS,
  );
}

/** The runtime packages that do not resolve from this module (from the bundle: from the image's node_modules). */
export function missingMinilmRuntime(): string[] {
  const require = createRequire(import.meta.url);
  return MINILM_RUNTIME_PACKAGES.filter((pkg) => {
    try {
      require.resolve(pkg);
      return false;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return true;
      throw e;
    }
  });
}

/**
 * Throws one CONFIG_INVALID naming the missing runtime packages, the command that installs them, and the
 * model's problems too when it is missing as well (every problem at once), unless the runtime resolves.
 */
export function assertMinilmRuntime(dir: string, missing = missingMinilmRuntime()): void {
  if (missing.length === 0) return;
  const model = minilmProblems(dir);
  const steps = [`\`${MINILM_RUNTIME_INSTALL}\``, ...(model.length > 0 ? [`\`${INSTALL_COMMAND}\``] : [])];
  throw new DrugsyncError(
    'CONFIG_INVALID',
    `EMBEDDING_PROVIDER=minilm, but its runtime is not installed: npm package(s) ${missing.join(', ')} missing ` +
      `(optional dependencies: the production image and \`npm ci --omit=optional\` leave them out)` +
      (model.length > 0
        ? `; the all-MiniLM-L6-v2 model is not installed in ${dir} either (${model.join(', ')})`
        : ''),
    {
      context: { variables: ['EMBEDDING_PROVIDER'], missing_packages: missing, directory: dir },
      remedy: `in a checkout run ${steps.join(' then ')}; MiniLM is a local option, not in the image: set EMBEDDING_PROVIDER=titan (or local) there`,
    },
  );
}

export function createMinilmEmbedder(settings: MinilmSettings = {}): Embedder {
  const dir = settings.dir ?? minilmDir();
  assertMinilmRuntime(dir);
  assertMinilmInstalled(dir);
  const threads = settings.threads ?? os.availableParallelism();
  let runtime: Promise<Runtime> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  const load = () => {
    runtime ??= loadRuntime(dir, threads).catch((e: unknown) => {
      runtime = null; // the next call tries again
      throw new DrugsyncError('EMBEDDING_TRANSIENT', 'loading the MiniLM model on onnxruntime-node failed', {
        context: { directory: dir },
        cause: e,
        retryable: true,
        remedy: `check that \`${MINILM_RUNTIME_INSTALL}\` installed onnxruntime-node for this platform (node_modules/onnxruntime-node/bin)`,
      });
    });
    return runtime;
  };
  return {
    model: settings.model ?? MINILM_MODEL_ID,
    dimensions: MINILM_DIMENSIONS,
    maxBatch: settings.maxBatch ?? 32,
    embed(texts) {
      // one inference at a time: each already uses every core
      const run = queue.then(async () => embedBatch(await load(), texts));
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
