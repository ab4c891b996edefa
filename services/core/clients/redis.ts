/**
 * Redis access: ioredis, RESP2 on purpose (documented array replies for FT.* commands), retrying through
 * a restart (a Redis replaying its AOF answers LOADING for a while: wait, do not fail).
 */
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';

export interface RedisSettings {
  REDIS_HOST: string;
  REDIS_PORT: number;
  REDIS_PASSWORD?: string | undefined;
  REDIS_TLS: boolean;
}

export type RedisClient = Redis;

export function redisOptions(s: RedisSettings, extra: Partial<RedisOptions> = {}): RedisOptions {
  return {
    host: s.REDIS_HOST,
    port: s.REDIS_PORT,
    password: s.REDIS_PASSWORD,
    protocol: 2,
    ...(s.REDIS_TLS ? { tls: {} } : {}),
    maxRetriesPerRequest: 20,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    connectTimeout: 10_000,
    ...extra,
  };
}

export function createRedis(s: RedisSettings, extra: Partial<RedisOptions> = {}): RedisClient {
  return new Redis(redisOptions(s, extra));
}

/** Waits until Redis answers PING (not LOADING). Throws after `timeoutMs`. */
export async function waitForRedis(redis: RedisClient, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      if ((await redis.ping()) === 'PONG') return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw last instanceof Error ? last : new Error('Redis did not answer PING');
}
