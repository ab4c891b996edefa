/**
 * One reader at a time: a Redis key (keys.readerLease) holding the owner id with a PX expiry, taken with
 * SET NX PX and renewed with a compare-and-renew script while the reader lives. A second reader waits,
 * logging who holds the lease, and takes over once the holder stops renewing (it died) or releases it.
 */
import { wrapError } from '../core/errors.ts';
import type { RedisClient } from '../core/clients/redis.ts';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface LeaseHolder {
  owner: string | null;
  ttlMs: number;
}

export interface Lease {
  readonly key: string;
  readonly owner: string;
  /** true when taken (or already ours). */
  tryAcquire(): Promise<boolean>;
  /** true while still ours (expiry pushed out); false when another owner holds it or it expired. */
  renew(): Promise<boolean>;
  release(): Promise<void>;
  holder(): Promise<LeaseHolder>;
}

export function createRedisLease(redis: RedisClient, key: string, owner: string, ttlMs: number): Lease {
  const fail = (e: unknown, op: string) =>
    wrapError(e, 'REDIS_COMMAND_FAILED', `cannot ${op} the reader lease`, {
      context: { key },
      retryable: true,
      remedy: 'check that Redis is reachable',
    });
  return {
    key,
    owner,
    async tryAcquire() {
      try {
        const ok = await redis.set(key, owner, 'PX', ttlMs, 'NX');
        if (ok === 'OK') return true;
        return Number(await redis.eval(RENEW, 1, key, owner, String(ttlMs))) === 1;
      } catch (e) {
        throw fail(e, 'take');
      }
    },
    async renew() {
      try {
        return Number(await redis.eval(RENEW, 1, key, owner, String(ttlMs))) === 1;
      } catch (e) {
        throw fail(e, 'renew');
      }
    },
    async release() {
      try {
        await redis.eval(RELEASE, 1, key, owner);
      } catch (e) {
        throw fail(e, 'release');
      }
    },
    async holder() {
      const [o, t] = await Promise.all([redis.get(key), redis.pttl(key)]);
      return { owner: o, ttlMs: t };
    },
  };
}
