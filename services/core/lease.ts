/**
 * One holder at a time (the binlog reader, the embedder consumer of a stream): a Redis key holding the
 * holder's token with a PX expiry, taken with SET NX PX and renewed with a compare-and-renew script while
 * the holder lives. A second process waits, logging who holds the lease (host, pid, since), and takes over
 * once the holder stops renewing (it died) or releases it (a clean stop).
 *
 * The token is `<host>:<pid>:<id>|<taken at, epoch ms>`; a new token is made at every fresh take, so a
 * holder that lost its lease and took it again never mistakes the old holding for the new one. Writes that
 * must not happen after a loss (checkpoints) are fenced on the token (see `token()`).
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { wrapError } from './errors.ts';
import type { RedisClient } from './clients/redis.ts';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface LeaseHolder {
  /** the holder's owner id (`host:pid:id`), null when nobody holds the lease */
  owner: string | null;
  host: string | null;
  pid: number | null;
  /** when the holder took the lease (ISO time), when known */
  since: string | null;
  /** milliseconds until the lease expires unless renewed (-2: not held) */
  ttlMs: number;
}

export interface Lease {
  readonly key: string;
  readonly owner: string;
  /** true when taken (or already ours). */
  tryAcquire(): Promise<boolean>;
  /** true while still ours (expiry pushed out); false when another owner holds it or it expired. */
  renew(): Promise<boolean>;
  /** Deletes the lease if it is still ours, so a successor starts at once. */
  release(): Promise<void>;
  holder(): Promise<LeaseHolder>;
  /** The value the lease key holds while it is ours (null before the first take): fence writes on it. */
  token(): string | null;
}

/** An owner id naming this process: `host:pid:random`. */
export function leaseOwnerId(): string {
  return `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** Reads a lease value back into who holds it. */
export function parseLeaseValue(value: string | null, ttlMs: number): LeaseHolder {
  if (value === null) return { owner: null, host: null, pid: null, since: null, ttlMs };
  const [owner = value, takenAt] = value.split('|');
  const [host = null, pidText] = owner.split(':');
  const pid = Number(pidText);
  const at = Number(takenAt);
  return {
    owner,
    host,
    pid: Number.isInteger(pid) ? pid : null,
    since: takenAt !== undefined && Number.isFinite(at) ? new Date(at).toISOString() : null,
    ttlMs,
  };
}

export function createRedisLease(
  redis: RedisClient,
  key: string,
  owner: string,
  ttlMs: number,
  label = 'lease',
): Lease {
  let token: string | null = null;
  const fail = (e: unknown, op: string) =>
    wrapError(e, 'REDIS_COMMAND_FAILED', `cannot ${op} the ${label}`, {
      context: { key, owner },
      retryable: true,
      remedy: 'check that Redis is reachable',
    });
  const renewToken = async (t: string | null) =>
    t !== null && Number(await redis.eval(RENEW, 1, key, t, String(ttlMs))) === 1;
  return {
    key,
    owner,
    token: () => token,
    async tryAcquire() {
      try {
        if (await renewToken(token)) return true;
        const fresh = `${owner}|${Date.now()}`;
        if ((await redis.set(key, fresh, 'PX', ttlMs, 'NX')) !== 'OK') return false;
        token = fresh;
        return true;
      } catch (e) {
        throw fail(e, 'take');
      }
    },
    async renew() {
      try {
        return await renewToken(token);
      } catch (e) {
        throw fail(e, 'renew');
      }
    },
    async release() {
      if (token === null) return;
      try {
        await redis.eval(RELEASE, 1, key, token);
        token = null;
      } catch (e) {
        throw fail(e, 'release');
      }
    },
    async holder() {
      try {
        const [value, ttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
        return parseLeaseValue(value, ttl);
      } catch (e) {
        throw fail(e, 'read');
      }
    },
  };
}

export interface LeaseKeeper {
  /** true while the lease is surely ours: renewed recently enough and never found taken. */
  valid(): boolean;
  stop(): void;
}

/**
 * Renews `lease` every sixth of its TTL until stop(). `onLost` is called once, as soon as the lease is found
 * held by another owner, or when no renewal succeeded for two thirds of the TTL (Redis unreachable: the key
 * may expire before we can tell, so we give up before it can).
 */
export function keepLease(lease: Lease, ttlMs: number, onLost: (cause: unknown) => void): LeaseKeeper {
  let okAt = Date.now();
  let lost = false;
  const margin = Math.floor(ttlMs / 3);
  const loseOnce = (cause: unknown) => {
    if (lost) return;
    lost = true;
    clearInterval(timer);
    onLost(cause);
  };
  const tick = () => {
    if (lost) return;
    if (Date.now() - okAt > ttlMs - margin) loseOnce(new Error('the lease could not be renewed in time'));
    const sent = Date.now(); // the new expiry counts from no earlier than this
    lease.renew().then(
      (ok) => {
        if (ok && !lost) okAt = Math.max(okAt, sent);
        else if (!ok) loseOnce(new Error('the lease is held by another owner or expired'));
      },
      () => {
        if (Date.now() - okAt > ttlMs - margin) loseOnce(new Error('the lease could not be renewed in time'));
      },
    );
  };
  const timer = setInterval(tick, Math.max(100, Math.floor(ttlMs / 6)));
  timer.unref?.();
  return {
    valid: () => !lost && Date.now() - okAt <= ttlMs - margin,
    stop: () => {
      lost = true;
      clearInterval(timer);
    },
  };
}
