import { describe, expect, it } from 'vitest';
import { redisOptions, waitForRedis } from '../services/core/clients/redis.ts';
import { isDrugsyncError, type DrugsyncError } from '../services/core/errors.ts';

const settings = { REDIS_HOST: 'redis.internal', REDIS_PORT: 16379, REDIS_TLS: false };

describe('Redis client options', () => {
  it('reconnects after 200 ms doubling to at most 2 s', () => {
    // Prepare
    const retry = redisOptions(settings).retryStrategy as (times: number) => number;
    // Act
    const waits = [1, 2, 3, 4, 5, 6, 50].map(retry);
    // Assess
    expect(waits).toEqual([200, 400, 800, 1_600, 2_000, 2_000, 2_000]);
  });
});

describe('waitForRedis', () => {
  it('returns once PING answers PONG, through LOADING replies', async () => {
    // Prepare: a Redis replaying its AOF answers LOADING twice
    const replies: (string | Error)[] = [
      new Error('LOADING Redis is loading the dataset in memory'),
      new Error('LOADING Redis is loading the dataset in memory'),
      'PONG',
    ];
    let calls = 0;
    const redis = {
      options: { host: 'redis.internal', port: 16379 },
      ping: async () => {
        const r = replies[calls++] as string | Error;
        if (r instanceof Error) throw r;
        return r;
      },
    } as unknown as Parameters<typeof waitForRedis>[0];
    // Act
    await waitForRedis(redis, 60_000);
    // Assess
    expect(calls).toBe(3);
  });

  it('fails with REDIS_UNAVAILABLE naming the server, the last error as cause', async () => {
    // Prepare: a server that refuses every connection
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:16379'), { code: 'ECONNREFUSED' });
    const redis = {
      options: { host: 'redis.internal', port: 16379 },
      ping: async () => {
        throw refused;
      },
    } as unknown as Parameters<typeof waitForRedis>[0];
    // Act
    const err: unknown = await waitForRedis(redis, 1).catch((e: unknown) => e);
    // Assess
    expect(isDrugsyncError(err, 'REDIS_UNAVAILABLE')).toBe(true);
    const e = err as DrugsyncError;
    expect(e.context.redis).toBe('redis.internal:16379');
    expect(e.cause).toBe(refused);
    expect(e.remedy).toMatch(/REDIS_HOST/);
    expect(e.retryable).toBe(true);
  });
});
