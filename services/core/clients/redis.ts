/**
 * Redis access: ioredis, RESP2 on purpose (documented array replies for FT.* commands), retrying through
 * a restart (a Redis replaying its AOF answers LOADING for a while: wait, do not fail).
 */
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { backoffDelay, sleep } from '../backoff.ts';
import { wrapError } from '../errors.ts';

export interface RedisSettings {
  REDIS_HOST: string;
  REDIS_PORT: number;
  REDIS_PASSWORD?: string | undefined;
  REDIS_TLS: boolean;
}

export type RedisClient = Redis;

/** ioredis reconnect waits: 100 ms doubling per attempt, capped at 2 s, no jitter. */
const RECONNECT_BACKOFF = { baseMs: 100, maxMs: 2_000 } as const;

export function redisOptions(s: RedisSettings, extra: Partial<RedisOptions> = {}): RedisOptions {
  return {
    host: s.REDIS_HOST,
    port: s.REDIS_PORT,
    password: s.REDIS_PASSWORD,
    protocol: 2,
    ...(s.REDIS_TLS ? { tls: {} } : {}),
    maxRetriesPerRequest: 20,
    enableOfflineQueue: true,
    // reconnect after 200 ms, 400 ms, ... at most 2 s
    retryStrategy: (times) => backoffDelay(Math.min(times, 5), RECONNECT_BACKOFF),
    connectTimeout: 10_000,
    ...extra,
  };
}

export function createRedis(s: RedisSettings, extra: Partial<RedisOptions> = {}): RedisClient {
  return new Redis(redisOptions(s, extra));
}

/**
 * Waits until Redis answers PING (not LOADING). Throws REDIS_UNAVAILABLE (with the last error as its cause)
 * after `timeoutMs`.
 */
export async function waitForRedis(
  redis: Pick<RedisClient, 'ping' | 'options'>,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown = new Error('no answer to PING');
  while (Date.now() < until) {
    try {
      if ((await redis.ping()) === 'PONG') return;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  const where = `${String(redis.options.host)}:${String(redis.options.port)}`;
  throw wrapError(last, 'REDIS_UNAVAILABLE', `Redis at ${where} did not answer PING within ${timeoutMs} ms`, {
    context: { redis: where, timeout_ms: timeoutMs },
    retryable: true,
    remedy:
      'check REDIS_HOST / REDIS_PORT / REDIS_PASSWORD and that Redis is running (a restart replays its AOF first)',
  });
}
