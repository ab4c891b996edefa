/**
 * Configuration is decoded once, at start-up, from the process environment layered over the stack file
 * (`.drugsync/stack.env`, written by `drugsync stack up`). Every problem is reported at once, each naming
 * its variable; the CLI exits with code 2 on a CONFIG_INVALID error.
 *
 * Each service declares the groups it needs (mysql, redis, kinesis, embedding, ...) plus its own settings,
 * so a command is never refused over a setting it does not use.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { MINILM_DIMENSIONS, MINILM_MODEL_ID } from './embedding/minilm-files.ts';
import { DrugsyncError } from './errors.ts';
import { LOG_LEVELS, registerSecret } from './log.ts';
import { LOCAL_STAGE } from './metrics.ts';
import { DEFAULT_ENV_FILE } from './paths.ts';
import { SYSTEM_CAS } from './clients/ca-file.ts';
import { DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS } from './clients/credentials.ts';
import { parseSecretReference } from './clients/secret-reference.ts';

export type Env = Record<string, string | undefined>;

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      if (!/^-?\d+$/.test(v.trim())) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number, got "${v}"` });
        return z.NEVER;
      }
      const n = Number(v);
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max}, got ${n}` });
        return z.NEVER;
      }
      return n;
    });

const num = (def: number, min = 0) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) {
        ctx.addIssue({ code: 'custom', message: `must be a number ≥ ${min}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const bool = (def: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return def;
      if (/^(1|true|yes|on)$/i.test(v)) return true;
      if (/^(0|false|no|off)$/i.test(v)) return false;
      ctx.addIssue({ code: 'custom', message: `must be true or false, got "${v}"` });
      return z.NEVER;
    });

const str = (def: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? def : v));
const optStr = () =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v));
const identifier = (def: string) =>
  str(def).refine((v) => /^[A-Za-z0-9_]+$/.test(v), {
    message: 'must be a plain SQL identifier [A-Za-z0-9_]',
  });

export const configFields = { int, num, bool, str, optStr, identifier };

/** Settings groups. Keys are the environment variable names (the seed system's names where they apply). */
export const mysqlShape = {
  DB_HOST: str('127.0.0.1'),
  DB_PORT: int(3306, 1, 65535),
  DB_NAME: identifier('fdb'),
  DB_TABLE: identifier('rndc14'),
  DB_USER: optStr(),
  DB_PASSWORD: optStr(),
  DB_SECRET_ARN: optStr(),
  /** Admin account, used only by local tooling (seed, tests, simulate-changes); never by the services. */
  DB_ADMIN_USER: optStr(),
  DB_ADMIN_PASSWORD: optStr(),
  DB_SERVER_ID: int(54321, 1, 4294967295),
  /** TLS on every MySQL connection (pool, control queries, binlog stream); the local stack sets false. */
  DB_TLS: bool(true),
  /** PEM file of the CA(s) that sign the server's certificate (the RDS bundle in the image); unset → Node's CAs. */
  DB_TLS_CA_FILE: optStr(),
  /** Least time between two re-reads of DB_SECRET_ARN / REDIS_SECRET_ARN after refused logins (rotation). */
  CREDENTIALS_REFRESH_MIN_SECONDS: num(DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS, 0),
  /** How a consistent snapshot finds its binlog position: auto (MariaDB → binlog-snapshot, MySQL → table-lock). */
  SNAPSHOT_METHOD: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? 'auto' : v))
    .pipe(z.enum(['auto', 'binlog-snapshot', 'table-lock'])),
};

/** VECTOR_SEARCH_BREADTH's default: recall@10 0.98 (SVS-VAMANA) / 0.99 (HNSW) on the full catalogue. */
export const DEFAULT_VECTOR_SEARCH_BREADTH = 100;

export const redisShape = {
  REDIS_HOST: str('127.0.0.1'),
  REDIS_PORT: int(6379, 1, 65535),
  REDIS_PASSWORD: optStr(),
  /** ACL user (unset: the default user); its rule: `drugsync redis-acl`, docs/deploy.md. */
  REDIS_USERNAME: optStr(),
  /**
   * Secrets Manager secret of the Redis password: its ARN, or ARN:json-key:: for a field of a JSON secret
   * (ECS' valueFrom form). Wins over REDIS_PASSWORD; re-read after a refused login.
   */
  REDIS_SECRET_ARN: optStr(),
  REDIS_TLS: bool(false),
  /** PEM file of the CA(s) that sign the Redis server's certificate (a private CA); unset or "system" → Node's CAs. */
  REDIS_TLS_CA_FILE: optStr(),
  CREDENTIALS_REFRESH_MIN_SECONDS: num(DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS, 0),
  /** Name of the RediSearch index and prefix of the documents. Tests use their own. */
  REDIS_INDEX: identifier('drugs_idx'),
  REDIS_DOC_PREFIX: str('drug:'),
  /** Prefix of every bookkeeping key (positions, tombstones, checkpoints, cache, DLQ): outside the index. */
  REDIS_STATE_PREFIX: str('drugsync:'),
  TOMBSTONE_TTL_SECONDS: int(7 * 24 * 3600, 60),
  /** HNSW build parameters (ignored where SVS-VAMANA is used). */
  HNSW_M: int(16, 2, 512),
  HNSW_EF_CONSTRUCTION: int(200, 1, 4096),
  /**
   * How widely a KNN query searches: EF_RUNTIME on HNSW, SEARCH_WINDOW_SIZE on SVS-VAMANA (FLAT is exact);
   * raised to k when k is larger. The servers' own default (10) misses neighbours (docs/search.md).
   */
  VECTOR_SEARCH_BREADTH: int(DEFAULT_VECTOR_SEARCH_BREADTH, 1, 10_000),
};

export const kinesisShape = {
  KINESIS_STREAM: str('drugsync-changes'),
  KINESIS_ENDPOINT: optStr(),
  AWS_REGION: str('us-east-1'),
};

export const embeddingShape = {
  EMBEDDING_PROVIDER: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? 'local' : v))
    .pipe(z.enum(['local', 'titan', 'minilm'])),
  EMBEDDING_MODEL: optStr(),
  EMBEDDING_DIMENSIONS: int(1024, 2, 8192),
  BEDROCK_REGION: optStr(),
  BEDROCK_ENDPOINT: optStr(),
  EMBEDDING_CONCURRENCY: int(8, 1, 512),
  EMBEDDING_RPM: int(6000, 1),
  EMBEDDING_MAX_RETRIES: int(6, 0, 100),
};

export const generalShape = {
  /** The stage a deployed task runs in (set by infra/container.ts): the Stage dimension of every metric. */
  DRUGSYNC_STAGE: str(LOCAL_STAGE),
  BATCH_SIZE: int(500, 1, 100000),
  MAX_DRUGS: int(0, 0),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? 'info' : v))
    .pipe(z.enum(LOG_LEVELS)),
};

/**
 * The settings the services share (MySQL, Redis, Kinesis, embedding, general): what `drugsync config`
 * prints and the operator commands decode; each service adds its own.
 */
export const sharedShape = {
  ...mysqlShape,
  ...redisShape,
  ...kinesisShape,
  ...embeddingShape,
  ...generalShape,
};

export type Shape = Record<string, z.ZodType<unknown, string | undefined>>;
export type Decoded<S extends Shape> = { [K in keyof S]: z.output<S[K]> };

/**
 * A setting whose value is a secret (masked everywhere): names with PASSWORD or SECRET, except those that
 * only point at a secret (`…_ARN`).
 */
export function isSecretSetting(key: string): boolean {
  return /PASSWORD|SECRET/.test(key) && !/_ARN$/.test(key);
}

/** Cross-field rules of the Redis transport settings (only when the shape has them). */
function redisTransportProblems(shape: Shape, raw: (k: string) => string | undefined): string[] {
  const problems: string[] = [];
  if (
    'REDIS_TLS_CA_FILE' in shape &&
    raw('REDIS_TLS_CA_FILE') &&
    raw('REDIS_TLS_CA_FILE') !== SYSTEM_CAS &&
    !/^(1|true|yes|on)$/i.test(raw('REDIS_TLS') ?? '')
  )
    problems.push('REDIS_TLS_CA_FILE: set while REDIS_TLS is not true (a CA file only applies to TLS)');
  const ref = 'REDIS_SECRET_ARN' in shape ? raw('REDIS_SECRET_ARN') : undefined;
  const parsed = ref === undefined ? undefined : parseSecretReference(ref);
  if (typeof parsed === 'string') problems.push(`REDIS_SECRET_ARN: ${parsed}`);
  return problems;
}

/** Reads a KEY=value file (comments and blank lines ignored, optional quotes). Missing file → {}. */
export function readEnvFile(file: string): Env {
  if (!fs.existsSync(file)) return {};
  const out: Env = {};
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    out[line.slice(0, eq).trim()] = value;
  }
  return out;
}

/** Process environment over the stack file (DRUGSYNC_ENV_FILE, default .drugsync/stack.env). */
export function resolveEnv(env: Env = process.env): Env {
  const file = env.DRUGSYNC_ENV_FILE ?? DEFAULT_ENV_FILE;
  const fromFile = env.DRUGSYNC_NO_ENV_FILE === '1' ? {} : readEnvFile(file);
  return { ...fromFile, ...env };
}

/**
 * Decodes the given settings groups at once. Throws CONFIG_INVALID naming every bad variable.
 * Cross-field rules (credentials) are checked here too, so the message lists everything.
 */
export function decodeConfig<S extends Shape>(shape: S, env: Env = resolveEnv()): Decoded<S> {
  // Secret values (not the ARNs that merely name a secret) are registered for masking before anything is
  // decoded or reported, so no log line or error shows them.
  for (const key of Object.keys(shape)) {
    if (isSecretSetting(key)) registerSecret(env[key]);
  }
  const schema = z.object(shape as Record<string, z.ZodType>);
  const result = schema.safeParse(env);
  const problems: string[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? '?');
      problems.push(`${key}: ${issue.message}`);
    }
  }
  const data = (result.success ? result.data : {}) as Record<string, unknown>;
  // Cross-field rules read the raw values, so they are reported together with the per-field problems.
  const raw = (k: string) => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  if ('DB_USER' in shape && !raw('DB_SECRET_ARN') && (!raw('DB_USER') || env.DB_PASSWORD === undefined)) {
    problems.push(
      'DB_USER/DB_PASSWORD: both are required unless DB_SECRET_ARN names a Secrets Manager secret',
    );
  }
  problems.push(...redisTransportProblems(shape, raw));
  if ('EMBEDDING_PROVIDER' in shape && raw('EMBEDDING_PROVIDER') === 'titan') {
    const dims = Number(raw('EMBEDDING_DIMENSIONS') ?? 1024);
    if (![256, 512, 1024].includes(dims)) {
      problems.push(`EMBEDDING_DIMENSIONS: Titan Text Embeddings v2 supports 256, 512 or 1024, got ${dims}`);
    }
  }
  if (problems.length > 0) {
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `configuration has ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`,
      {
        context: { variables: problems.map((p) => p.split(':')[0] ?? p) },
        remedy:
          'set the named variables (see README "Configuration"), or run `npx drugsync stack up` for the local stack',
      },
    );
  }
  // MiniLM's width is the model's own: EMBEDDING_DIMENSIONS (256 in the stack file) does not apply to it.
  if (data.EMBEDDING_PROVIDER === 'minilm' && 'EMBEDDING_DIMENSIONS' in shape)
    data.EMBEDDING_DIMENSIONS = MINILM_DIMENSIONS;
  return data as Decoded<S>;
}

/** The embedding model id actually in force (provider default when EMBEDDING_MODEL is unset). */
export function embeddingModelId(cfg: {
  EMBEDDING_PROVIDER: string;
  EMBEDDING_MODEL?: string | undefined;
}): string {
  if (cfg.EMBEDDING_MODEL) return cfg.EMBEDDING_MODEL;
  if (cfg.EMBEDDING_PROVIDER === 'minilm') return MINILM_MODEL_ID;
  return cfg.EMBEDDING_PROVIDER === 'titan' ? 'amazon.titan-embed-text-v2:0' : 'drugsync-lexical-v1';
}
