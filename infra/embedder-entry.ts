/**
 * Entry point of the embedder Lambda bundle: services/embedder/lambda.ts's `handler`, preceded once per
 * cold start by reading the Redis password from Secrets Manager.
 *
 * ECS injects REDIS_PASSWORD from Secrets Manager (`secrets`); Lambda has no such injection and the
 * password must never be a plain environment value. So the function gets REDIS_PASSWORD_SECRET_ARN (and
 * REDIS_PASSWORD_SECRET_JSON_KEY when the secret is JSON), and this wrapper puts the value into
 * process.env.REDIS_PASSWORD before the embedder decodes its configuration (on its first invocation).
 * A failed read is thrown (Lambda retries the batch) and retried on the next invocation.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { handler as embedderHandler } from '../services/embedder/lambda.ts';
import { DrugsyncError, wrapError } from '../services/core/errors.ts';
import { registerSecret } from '../services/core/log.ts';

export type Env = Record<string, string | undefined>;
export type GetSecretString = (arn: string) => Promise<string | undefined>;

/** The Redis password named by the environment, or undefined when none is configured that way. */
export async function resolveRedisPassword(
  env: Env,
  getSecret: GetSecretString,
): Promise<string | undefined> {
  const arn = env.REDIS_PASSWORD_SECRET_ARN;
  if (!arn || env.REDIS_PASSWORD) return env.REDIS_PASSWORD;
  const key = env.REDIS_PASSWORD_SECRET_JSON_KEY ?? '';
  let secret: string | undefined;
  try {
    secret = await getSecret(arn);
  } catch (e) {
    throw wrapError(e, 'CONFIG_INVALID', 'cannot read the Redis password secret', {
      context: { secret_arn: arn },
      remedy:
        'check REDIS_PASSWORD_SECRET_ARN and that the embedder role may call secretsmanager:GetSecretValue on it',
      retryable: true,
    });
  }
  if (secret === undefined || secret === '') {
    throw new DrugsyncError('CONFIG_INVALID', 'the Redis password secret has no SecretString', {
      context: { secret_arn: arn },
      remedy:
        'store the password as a string secret (or JSON with REDIS_PASSWORD_SECRET_JSON_KEY naming its key)',
    });
  }
  if (!key) return secret;
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch (e) {
    throw wrapError(e, 'CONFIG_INVALID', 'the Redis password secret is not JSON but a JSON key was named', {
      context: { secret_arn: arn, json_key: key },
      remedy: 'set redis_auth_secret_json_key to "" when the secret string is the password itself',
    });
  }
  const value = (parsed as Record<string, unknown> | null)?.[key];
  if (typeof value !== 'string' || value === '') {
    throw new DrugsyncError('CONFIG_INVALID', `the Redis password secret has no string field "${key}"`, {
      context: { secret_arn: arn, json_key: key },
      remedy: 'fix redis_auth_secret_json_key, or the secret',
    });
  }
  return value;
}

function secretsManager(): GetSecretString {
  const client = new SecretsManagerClient({});
  return async (arn) => (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
}

export function createEntryHandler(
  inner: (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>,
  getSecret: () => GetSecretString = secretsManager,
  env: Env = process.env,
): (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse> {
  let ready: Promise<void> | null = null;
  const prepare = async () => {
    const password = await resolveRedisPassword(env, getSecret());
    if (password !== undefined) {
      registerSecret(password);
      env.REDIS_PASSWORD = password;
    }
  };
  return async (event) => {
    ready ??= prepare().catch((e: unknown) => {
      ready = null; // retried on the next invocation
      throw e;
    });
    await ready;
    return inner(event);
  };
}

export const handler = createEntryHandler(embedderHandler);
