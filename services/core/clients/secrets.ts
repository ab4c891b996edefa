/**
 * Secrets Manager behind the subset drugsync needs (one GetSecretValue), and the decoding of the MySQL
 * secret (RDS JSON: {"username","password", …}).
 *
 * A secret's text is registered for masking the moment it arrives, before it is parsed and before
 * anything can log, so no log line or error shows it. A secret in an unexpected format gives
 * SECRET_INVALID naming the secret ARN and the format expected; never the text, never JSON.parse's message
 * (which quotes the text), and never that error as cause (describe() and toJSON() print causes).
 *
 * The Redis secret is the password itself, or JSON holding it under the key REDIS_SECRET_ARN names after
 * the ARN (`ARN:password::`, ECS' `valueFrom` form; ./secret-reference.ts).
 *
 * `SECRETS_MANAGER_ENDPOINT` points the client at another endpoint (a local fake in tests); the client then
 * signs with placeholder credentials, as the Kinesis client does for kinesalite.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import { DrugsyncError } from '../errors.ts';
import { redact, registerSecret } from '../log.ts';
import { keepAliveHandler } from './http.ts';
import type { SecretReference } from './secret-reference.ts';

/** The subset of Secrets Manager drugsync uses: a secret's string value, undefined when it has none. */
export interface SecretSource {
  getSecretString(arn: string): Promise<string | undefined>;
}

export interface SecretSourceOptions {
  region?: string | undefined;
  /** Another endpoint (default: SECRETS_MANAGER_ENDPOINT, else AWS). */
  endpoint?: string | undefined;
}

export function secretsManagerSource(opts: SecretSourceOptions = {}): SecretSource {
  const endpoint = opts.endpoint ?? (process.env.SECRETS_MANAGER_ENDPOINT || undefined);
  const config: SecretsManagerClientConfig = {
    ...(opts.region ? { region: opts.region } : {}),
    ...(endpoint
      ? {
          endpoint,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
          requestHandler: keepAliveHandler(2),
        }
      : {}),
    maxAttempts: 3,
  };
  const client = new SecretsManagerClient(config);
  return {
    async getSecretString(arn) {
      const out = await client.send(new GetSecretValueCommand({ SecretId: arn }));
      registerSecret(out.SecretString);
      return out.SecretString;
    },
  };
}

/**
 * Reads a secret's string. A failed call is CONFIG_INVALID naming the ARN (retryable when the SDK says the
 * failure is transient); its message is masked, as every message is, in case it echoes a response.
 */
export async function readSecretString(source: SecretSource, arn: string, what: string): Promise<string> {
  let text: string | undefined;
  try {
    text = await source.getSecretString(arn);
  } catch (e) {
    const err = e as {
      name?: string;
      message?: string;
      $retryable?: unknown;
      $metadata?: { httpStatusCode?: number };
    };
    const status = err.$metadata?.httpStatusCode;
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `cannot read ${what} ${arn}: ${redact(`${err.name ?? 'Error'}: ${err.message ?? String(e)}`)}`,
      {
        context: { secret_arn: arn, http_status: status },
        retryable: err.$retryable !== undefined || status === undefined || status >= 500,
        remedy: 'check the ARN and that this role may call secretsmanager:GetSecretValue on it',
      },
    );
  }
  registerSecret(text);
  if (text === undefined || text === '') {
    throw new DrugsyncError('SECRET_INVALID', `${what} ${arn} has no SecretString`, {
      context: { secret_arn: arn },
      remedy: 'store the secret as a string (SecretString), not as binary',
    });
  }
  return text;
}

export interface DbSecret {
  username: string | undefined;
  password: string;
}

const DB_SECRET_SHAPE = '{"username": "…", "password": "…"} (RDS secret JSON)';

function invalidDbSecret(arn: string, problem: string): DrugsyncError {
  return new DrugsyncError(
    'SECRET_INVALID',
    `the MySQL secret ${arn} ${problem}; expected ${DB_SECRET_SHAPE}`,
    {
      context: { secret_arn: arn },
      remedy:
        'store the MySQL credentials in that secret as JSON with string fields "username" and "password"',
    },
  );
}

/** A JSON value's kind, for messages that must not show the value itself. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Decodes the MySQL secret's text (registered for masking first, whatever it holds). */
export function parseDbSecret(arn: string, text: string): DbSecret {
  registerSecret(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: neither it nor the error goes any further.
    throw invalidDbSecret(arn, 'is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidDbSecret(arn, `is JSON but ${kindOf(parsed)}, not an object`);
  }
  const { username, password } = parsed as Record<string, unknown>;
  if (typeof password === 'number' || typeof password === 'boolean') registerSecret(String(password));
  if (typeof password === 'string') registerSecret(password);
  if (typeof password !== 'string' || password === '') {
    const found =
      password === undefined
        ? 'has no "password"'
        : `has a "password" that is ${password === '' ? 'empty' : kindOf(password)}`;
    throw invalidDbSecret(arn, found);
  }
  if (username !== undefined && typeof username !== 'string') {
    throw invalidDbSecret(arn, `has a "username" that is ${kindOf(username)}`);
  }
  return { username, password };
}

export interface DbCredentialSettings {
  DB_USER?: string | undefined;
  DB_PASSWORD?: string | undefined;
  DB_SECRET_ARN?: string | undefined;
}

/**
 * MySQL user and password: from the secret DB_SECRET_ARN names (its "username" wins over DB_USER), else
 * DB_USER / DB_PASSWORD (registered for masking by decodeConfig).
 */
export async function resolveDbCredentials(
  settings: DbCredentialSettings,
  o: SecretSourceOptions & { source?: SecretSource } = {},
): Promise<{ user: string; password: string }> {
  registerSecret(settings.DB_PASSWORD);
  if (!settings.DB_SECRET_ARN) return { user: settings.DB_USER ?? '', password: settings.DB_PASSWORD ?? '' };
  const source = o.source ?? secretsManagerSource(o);
  const secret = parseDbSecret(
    settings.DB_SECRET_ARN,
    await readSecretString(source, settings.DB_SECRET_ARN, 'the MySQL secret'),
  );
  const user = secret.username ?? settings.DB_USER;
  if (!user) throw invalidDbSecret(settings.DB_SECRET_ARN, 'has no "username" and DB_USER is not set');
  return { user, password: secret.password };
}

function invalidRedisSecret(arn: string, problem: string, expected: string): DrugsyncError {
  return new DrugsyncError('SECRET_INVALID', `the Redis secret ${arn} ${problem}; expected ${expected}`, {
    context: { secret_arn: arn },
    remedy:
      'store the Redis password as the whole secret string (REDIS_SECRET_ARN = the ARN), or as JSON with ' +
      'the password under the key REDIS_SECRET_ARN names after the ARN (ARN:key::)',
  });
}

/** Decodes the Redis secret's text: the password itself, or JSON with the password under `jsonKey`. */
export function parseRedisSecret(arn: string, text: string, jsonKey?: string): string {
  registerSecret(text);
  if (!jsonKey) return text;
  const expected = `JSON with a string "${jsonKey}" (the key after the ARN in REDIS_SECRET_ARN)`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: neither it nor the error goes any further.
    throw invalidRedisSecret(arn, 'is not JSON', expected);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidRedisSecret(arn, `is JSON but ${kindOf(parsed)}, not an object`, expected);
  }
  const password = (parsed as Record<string, unknown>)[jsonKey];
  if (typeof password === 'number' || typeof password === 'boolean') registerSecret(String(password));
  if (typeof password !== 'string' || password === '') {
    const found = password === undefined ? `has no "${jsonKey}"` : `has a "${jsonKey}" that is not a string`;
    throw invalidRedisSecret(arn, found, expected);
  }
  registerSecret(password);
  return password;
}

/** The Redis password from the secret `ref` names (REDIS_SECRET_ARN: an ARN, or ARN:json-key::). */
export async function resolveRedisPassword(ref: SecretReference, source: SecretSource): Promise<string> {
  const text = await readSecretString(source, ref.arn, 'the Redis secret');
  return parseRedisSecret(ref.arn, text, ref.jsonKey);
}
