/**
 * Redis access: ioredis, RESP2 on purpose (documented array replies for FT.* commands), retrying through
 * a restart (a Redis replaying its AOF answers LOADING for a while: wait, do not fail).
 *
 * Transport: REDIS_TLS with TLS 1.2+ and the certificate verified against REDIS_TLS_CA_FILE (a private CA)
 * or Node's CAs; a certificate that does not verify makes `waitForRedis` fail at once with CONFIG_INVALID.
 *
 * Login: REDIS_USERNAME (an ACL user; unset or "default": the default user) with REDIS_PASSWORD, or the
 * password in the secret REDIS_SECRET_ARN names (ARN, or ARN:json-key:: as in ECS' valueFrom) (read by this process, so a rotation is followed: a login Redis refuses,
 * WRONGPASS, re-reads the secret through the process' one provider, ./credentials.ts, and the client's next
 * reconnect, on ioredis' own backoff, logs in with what it holds now). A secret is read asynchronously:
 * `openRedis` reads it first; `createRedis` needs it read already (or no secret).
 *
 * ACL: a command the user's ACL refuses (NOPERM, "ACL failure in script") rejects with REDIS_ACL_DENIED
 * naming the user, the command and the rule to apply (core/redis/acl.ts), wherever it was sent from.
 */
import { Redis } from 'ioredis';
import type { Command } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { backoffDelay, sleep } from '../backoff.ts';
import { DrugsyncError, errorMessage, wrapError } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import { readCaFile } from './ca-file.ts';
import {
  DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS,
  secretCredentials,
  sharedCredentials,
  staticCredentials,
} from './credentials.ts';
import type { Credentials, CredentialsProvider } from './credentials.ts';
import { parseSecretReference } from './secret-reference.ts';
import { resolveRedisPassword, secretsManagerSource } from './secrets.ts';
import type { SecretSource } from './secrets.ts';

export interface RedisSettings {
  REDIS_HOST: string;
  REDIS_PORT: number;
  REDIS_PASSWORD?: string | undefined;
  REDIS_USERNAME?: string | undefined;
  /** the secret of the password: its ARN, or ARN:json-key:: (./secret-reference.ts) */
  REDIS_SECRET_ARN?: string | undefined;
  REDIS_TLS: boolean;
  REDIS_TLS_CA_FILE?: string | undefined;
  CREDENTIALS_REFRESH_MIN_SECONDS?: number | undefined;
  AWS_REGION?: string | undefined;
}

export type RedisClient = Redis;

export interface RedisClientOptions {
  log?: Logger | undefined;
  /** another secret source (tests); default: Secrets Manager (SECRETS_MANAGER_ENDPOINT, else AWS) */
  source?: SecretSource | undefined;
}

/** ioredis reconnect waits: 100 ms doubling per attempt, capped at 2 s, no jitter. */
const RECONNECT_BACKOFF = { baseMs: 100, maxMs: 2_000 } as const;

/** Node's TLS options for Redis, or undefined without REDIS_TLS. */
export function redisTlsOptions(
  settings: Pick<RedisSettings, 'REDIS_TLS' | 'REDIS_TLS_CA_FILE'>,
): ConnectionOptions | undefined {
  if (!settings.REDIS_TLS) return undefined;
  const tls: ConnectionOptions = { minVersion: 'TLSv1.2', rejectUnauthorized: true };
  if (!settings.REDIS_TLS_CA_FILE) return tls;
  const ca = readCaFile(
    'REDIS_TLS_CA_FILE',
    settings.REDIS_TLS_CA_FILE,
    "the CA that signed the Redis server's certificate",
  );
  return ca === undefined ? tls : { ...tls, ca };
}

/** The user AUTH names: none for the default user ("default" is what a password-only AUTH logs in as). */
function aclUser(user: string): string | undefined {
  return user && user !== 'default' ? user : undefined;
}

export function redisOptions(
  settings: RedisSettings,
  extra: Partial<RedisOptions> = {},
  login: Credentials = { user: settings.REDIS_USERNAME ?? '', password: settings.REDIS_PASSWORD ?? '' },
): RedisOptions {
  const tls = redisTlsOptions(settings);
  return {
    host: settings.REDIS_HOST,
    port: settings.REDIS_PORT,
    username: aclUser(login.user),
    password: login.password || undefined,
    protocol: 2,
    ...(tls ? { tls } : {}),
    maxRetriesPerRequest: 20,
    enableOfflineQueue: true,
    // reconnect after 200 ms, 400 ms, ... at most 2 s
    retryStrategy: (times) => backoffDelay(Math.min(times, 5), RECONNECT_BACKOFF),
    connectTimeout: 10_000,
    ...extra,
  };
}

/**
 * The Redis login of this process: the one provider of REDIS_SECRET_ARN (re-read after a refused login, at
 * most once per CREDENTIALS_REFRESH_MIN_SECONDS), or REDIS_USERNAME / REDIS_PASSWORD as they are.
 */
export function redisCredentials(
  settings: RedisSettings,
  opts: RedisClientOptions = {},
): CredentialsProvider {
  const user = settings.REDIS_USERNAME ?? '';
  const ref = settings.REDIS_SECRET_ARN;
  if (!ref) return staticCredentials('Redis', { user, password: settings.REDIS_PASSWORD ?? '' });
  const secret = parseSecretReference(ref);
  if (typeof secret === 'string') {
    throw new DrugsyncError('CONFIG_INVALID', `REDIS_SECRET_ARN ${secret}`, {
      context: { variable: 'REDIS_SECRET_ARN' },
      remedy:
        'set REDIS_SECRET_ARN to the ARN of the Redis password secret, or ARN:json-key:: for a JSON secret',
    });
  }
  return sharedCredentials(`redis ${ref} ${user}`, () => {
    const source = opts.source ?? secretsManagerSource({ region: settings.AWS_REGION });
    return secretCredentials({
      what: 'Redis',
      secretArn: ref,
      read: async () => ({ user, password: await resolveRedisPassword(secret, source) }),
      minIntervalMs:
        1000 * (settings.CREDENTIALS_REFRESH_MIN_SECONDS ?? DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS),
      log: opts.log,
    });
  });
}

/** Redis refused the login (a wrong or rotated password, a disabled user). */
export function isRedisLoginRefused(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e);
  return /^(WRONGPASS|NOAUTH)\b|invalid password|invalid username-password pair/i.test(m);
}

const ACL_DENIED = /^NOPERM\s+(.*)$|ACL failure in script:\s*(.*?)(?:\s+script:.*)?$/s;

/** The key a denied command named: after EVAL/EVALSHA's script and key count, else its first argument. */
function deniedKey(name: string, args: readonly unknown[]): string | undefined {
  const at = /^(eval|evalsha|fcall)(_ro)?$/i.test(name) ? (Number(args[1]) > 0 ? 2 : -1) : 0;
  const k = at >= 0 ? args[at] : undefined;
  return typeof k === 'string' || Buffer.isBuffer(k) ? String(k).slice(0, 200) : undefined;
}

/**
 * A command the user's ACL refused, as REDIS_ACL_DENIED naming the user, the command, the key when a key
 * was refused, and the remedy; any other error as it is.
 */
export function redisAclError(
  e: unknown,
  user: string,
  name: string,
  args: readonly unknown[] = [],
): unknown {
  if (!(e instanceof Error) || e instanceof DrugsyncError) return e;
  const m = ACL_DENIED.exec(e.message);
  if (!m) return e;
  const reason = (m[1] ?? m[2] ?? e.message).trim();
  const command = name.toUpperCase();
  const who = user || 'default';
  const key = /key/i.test(reason) ? deniedKey(name, args) : undefined;
  return new DrugsyncError(
    'REDIS_ACL_DENIED',
    `Redis ACL: user "${who}" may not run ${command}${key ? ` on ${key}` : ''} (${reason})`,
    {
      context: { redis_user: who, command, ...(key ? { key } : {}) },
      cause: e,
      remedy:
        `give user "${who}" drugsync's ACL rule (\`drugsync redis-acl\` prints it for these prefixes; ` +
        'docs/deploy.md "Redis ACL"); if drugsync itself sent this command, the rule lacks it: report it',
    },
  );
}

const MAPPED = Symbol('drugsync.aclMapped');

/** ioredis with every command's ACL refusal mapped to REDIS_ACL_DENIED (pipelines and scripts included). */
class DrugsyncRedis extends Redis {
  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    const c = command as Command & { [MAPPED]?: true };
    if (!c[MAPPED]) {
      c[MAPPED] = true;
      const reject = c.reject;
      c.reject = (err: Error) =>
        reject(redisAclError(err, this.options.username ?? '', c.name, c.args) as Error);
    }
    return super.sendCommand(command, stream);
  }
}

/** The last connection error of each client (waitForRedis reports a certificate that does not verify). */
const lastConnectionError = new WeakMap<RedisClient, Error>();

/** Certificate failures: Node/OpenSSL's codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, SELF_SIGNED_CERT_IN_CHAIN …). */
const TLS_CERT_FAILURE =
  /^(ERR_TLS_CERT|CERT_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|ERR_SSL_)/;

function isTlsCertFailure(e: Error | undefined): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && TLS_CERT_FAILURE.test(code);
}

/**
 * The client's error events: a refused login re-reads the secret and sets the credentials of the next
 * reconnect; other connection errors are logged (the first of each kind, then at most every 30 s).
 */
function watchConnection(client: RedisClient, creds: CredentialsProvider, log: Logger): void {
  const logged = new Map<string, number>();
  client.on('ready', () => lastConnectionError.delete(client));
  client.on('error', (e: Error) => {
    lastConnectionError.set(client, e);
    if (isRedisLoginRefused(e)) {
      void creds.refresh(e).then((c) => {
        client.options.username = aclUser(c.user);
        client.options.password = c.password || undefined;
      });
      return;
    }
    const now = Date.now();
    const kind = errorMessage(e);
    if (now - (logged.get(kind) ?? -Infinity) < 30_000) return;
    logged.set(kind, now);
    log.warn('Redis connection error (reconnecting)', {
      redis: `${client.options.host}:${client.options.port}`,
      error: e,
    });
  });
}

/**
 * A client on the credentials in force. With REDIS_SECRET_ARN the secret must have been read already
 * (`openRedis`, or `await redisCredentials(s).current()`): INTERNAL otherwise.
 */
export function createRedis(
  settings: RedisSettings,
  extra: Partial<RedisOptions> = {},
  opts: RedisClientOptions = {},
): RedisClient {
  const creds = redisCredentials(settings, opts);
  if (!creds.cached) {
    throw new DrugsyncError(
      'INTERNAL',
      `the Redis secret ${settings.REDIS_SECRET_ARN} was not read before connecting`,
      {
        context: { secret_arn: settings.REDIS_SECRET_ARN },
        remedy: 'open the client with openRedis() (it reads the secret first)',
      },
    );
  }
  const client = new DrugsyncRedis({
    ...redisOptions(settings, extra, creds.cached),
    replyMapping: 'legacy',
  });
  watchConnection(client, creds, opts.log ?? createLogger({ component: 'redis' }));
  return client;
}

/** `createRedis` after reading the Redis secret (when REDIS_SECRET_ARN names one). */
export async function openRedis(
  settings: RedisSettings,
  extra: Partial<RedisOptions> = {},
  opts: RedisClientOptions = {},
): Promise<RedisClient> {
  await redisCredentials(settings, opts).current();
  return createRedis(settings, extra, opts);
}

function tlsFailed(redis: Pick<RedisClient, 'options'>, where: string, e: Error): DrugsyncError {
  return new DrugsyncError('CONFIG_INVALID', `TLS to Redis at ${where} failed: ${e.message}`, {
    context: { redis: where, error_code: String((e as { code?: unknown }).code) },
    cause: e,
    remedy:
      "set REDIS_TLS_CA_FILE to the PEM bundle of the CA that signed the server's certificate and connect " +
      `by a name the certificate holds (REDIS_HOST=${String(redis.options.host)})`,
  });
}

/**
 * Waits until Redis answers PING (not LOADING). Throws REDIS_UNAVAILABLE (with the last error as its cause)
 * after `timeoutMs`; CONFIG_INVALID at once when the server's certificate does not verify.
 */
export async function waitForRedis(
  redis: Pick<RedisClient, 'ping' | 'options'>,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  const where = `${String(redis.options.host)}:${String(redis.options.port)}`;
  let last: unknown = new Error('no answer to PING');
  while (Date.now() < until) {
    const connection = lastConnectionError.get(redis as RedisClient);
    if (isTlsCertFailure(connection)) throw tlsFailed(redis, where, connection as Error);
    // a PING waits in the offline queue while ioredis reconnects: look at the connection each second
    const tick = new AbortController();
    try {
      if ((await Promise.race([redis.ping(), sleep(1_000, tick.signal).then(() => null)])) === 'PONG') return;
    } catch (e) {
      last = e;
    } finally {
      tick.abort();
    }
    await sleep(250);
  }
  throw wrapError(last, 'REDIS_UNAVAILABLE', `Redis at ${where} did not answer PING within ${timeoutMs} ms`, {
    context: { redis: where, timeout_ms: timeoutMs },
    retryable: true,
    remedy:
      'check REDIS_HOST / REDIS_PORT / REDIS_USERNAME / REDIS_PASSWORD (or REDIS_SECRET_ARN) and that Redis is ' +
      'running (a restart replays its AOF first)',
  });
}
