/**
 * Offline esbuild bundle of the embedder Lambda (services/embedder/lambda.ts → `handler`, wrapped by
 * infra/embedder-entry.ts for the Redis password), built at synth time into .gen/embedder-lambda/ and
 * zipped by a TerraformAsset. ESM for node22; every dependency is in
 * the bundle except `@aws-sdk/*`, which the nodejs22.x runtime provides. A `require` shim keeps CommonJS
 * dependencies that call require() on Node built-ins working inside the ES module.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import type { Metafile } from 'esbuild';
import { DrugsyncError, errorMessage } from '../services/core/errors.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const EMBEDDER_ENTRY = path.join(PROJECT_ROOT, 'services', 'embedder', 'lambda.ts');
/** What the bundle starts from: the embedder's handler behind the Secrets Manager read. */
export const BUNDLE_ENTRY = path.join(PROJECT_ROOT, 'infra', 'embedder-entry.ts');
export const EMBEDDER_BUNDLE_DIR = path.join(PROJECT_ROOT, '.gen', 'embedder-lambda');
/** Lambda handler string: file index.mjs, export `handler`. */
export const EMBEDDER_HANDLER = 'index.handler';
export const LAMBDA_RUNTIME = 'nodejs22.x';
export const EXTERNALS = ['@aws-sdk/*'];

export interface Bundle {
  dir: string;
  file: string;
  bytes: number;
  metafile: Metafile;
}

let cached: Bundle | undefined;

export function bundleEmbedder(opts: { entry?: string; outDir?: string } = {}): Bundle {
  const entry = opts.entry ?? BUNDLE_ENTRY;
  const dir = opts.outDir ?? EMBEDDER_BUNDLE_DIR;
  if (cached && cached.dir === dir && opts.entry === undefined) return cached;
  if (!fs.existsSync(EMBEDDER_ENTRY)) {
    throw new DrugsyncError('CONFIG_INVALID', `embedder Lambda entry ${EMBEDDER_ENTRY} does not exist`, {
      context: { entry: EMBEDDER_ENTRY },
      remedy: 'the embedder service must export `handler` from services/embedder/lambda.ts before synth',
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'index.mjs');
  let metafile: Metafile;
  try {
    const result = buildSync({
      entryPoints: [entry],
      outfile: file,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      external: EXTERNALS,
      sourcemap: 'external',
      sourcesContent: false,
      metafile: true,
      legalComments: 'none',
      logLevel: 'silent',
      banner: {
        js: "import { createRequire as __drugsyncCreateRequire } from 'node:module'; const require = __drugsyncCreateRequire(import.meta.url);",
      },
    });
    metafile = result.metafile;
  } catch (e) {
    throw new DrugsyncError('CONFIG_INVALID', `esbuild could not bundle ${entry}: ${errorMessage(e)}`, {
      context: { entry },
      remedy: 'fix the import named above (the Lambda bundle may only leave @aws-sdk/* external)',
    });
  }
  // the sourcemap's "file"/"sources" are relative; nothing machine-specific ends up in the asset. Fixed
  // mtimes make the zip byte-identical for identical code, so a re-synth does not change the Lambda's
  // source_code_hash (no spurious code update in every plan).
  const fixed = new Date('2020-01-01T00:00:00Z');
  for (const f of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, f), fixed, fixed);
  const bundle: Bundle = { dir, file, bytes: fs.statSync(file).size, metafile };
  if (opts.entry === undefined) cached = bundle;
  return bundle;
}
