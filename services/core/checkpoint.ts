/**
 * Where the binlog reader resumes, and where the backfill's snapshot stands: both are serialized
 * `BinlogPosition`s (services/core/position.ts) in Redis, behind a small interface so another durable
 * store can replace Redis without touching the reader.
 *
 * - reader checkpoint (keys.readerCheckpoint): advanced by the binlog reader only after Kinesis
 *   acknowledged every event of a committed transaction; the start of the next transaction to read.
 * - backfill snapshot (keys.backfillSnapshot): written by the backfill when its consistent snapshot is
 *   taken; the reader starts there when it has no checkpoint of its own.
 */
import { DrugsyncError, wrapError } from './errors.ts';
import type { Keys } from './keys.ts';
import { deserializePosition, serializePosition } from './position.ts';
import type { BinlogPosition } from './position.ts';

/** The subset of a Redis client the stores need (ioredis satisfies it). */
export interface CheckpointRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
}

export interface CheckpointStore {
  /** The stored position, or null when there is none. Throws CHECKPOINT_INVALID on a corrupt value. */
  load(): Promise<BinlogPosition | null>;
  save(p: BinlogPosition): Promise<void>;
  /** Removes the stored position (tests, `--reset`). */
  clear(): Promise<void>;
}

function redisStore(redis: CheckpointRedis, key: string, what: string): CheckpointStore {
  const fail = (e: unknown, op: string) =>
    wrapError(e, 'REDIS_COMMAND_FAILED', `cannot ${op} the ${what}`, {
      context: { key },
      retryable: true,
      remedy: 'check that Redis is reachable (`npx drugsync stack status` locally)',
    });
  return {
    async load() {
      let text: string | null;
      try {
        text = await redis.get(key);
      } catch (e) {
        throw fail(e, 'read');
      }
      if (text === null) return null;
      try {
        return deserializePosition(text);
      } catch (e) {
        if (e instanceof DrugsyncError) {
          throw new DrugsyncError(e.code, `${what} at ${key} is unreadable: ${e.message}`, {
            context: { key },
            cause: e,
            remedy: `inspect it with \`redis-cli GET ${key}\`; delete it and re-run the backfill to start over`,
          });
        }
        throw e;
      }
    },
    async save(p) {
      try {
        await redis.set(key, serializePosition(p));
      } catch (e) {
        throw fail(e, 'write');
      }
    },
    async clear() {
      try {
        await redis.del(key);
      } catch (e) {
        throw fail(e, 'delete');
      }
    },
  };
}

/** The binlog reader's checkpoint in Redis (keys.readerCheckpoint). */
export function createRedisCheckpointStore(redis: CheckpointRedis, keys: Keys): CheckpointStore {
  return redisStore(redis, keys.readerCheckpoint, 'binlog reader checkpoint');
}

/** The backfill's snapshot position in Redis (keys.backfillSnapshot), as a CheckpointStore. */
export function createBackfillSnapshotStore(redis: CheckpointRedis, keys: Keys): CheckpointStore {
  return redisStore(redis, keys.backfillSnapshot, 'backfill snapshot position');
}

export function readReaderCheckpoint(redis: CheckpointRedis, keys: Keys): Promise<BinlogPosition | null> {
  return createRedisCheckpointStore(redis, keys).load();
}

export function writeReaderCheckpoint(redis: CheckpointRedis, keys: Keys, p: BinlogPosition): Promise<void> {
  return createRedisCheckpointStore(redis, keys).save(p);
}

/** The snapshot position the backfill recorded, or null. */
export function loadBackfillSnapshot(redis: CheckpointRedis, keys: Keys): Promise<BinlogPosition | null> {
  return createBackfillSnapshotStore(redis, keys).load();
}

/** Records the backfill's snapshot position (serializePosition JSON at keys.backfillSnapshot). */
export function saveBackfillSnapshot(redis: CheckpointRedis, keys: Keys, p: BinlogPosition): Promise<void> {
  return createBackfillSnapshotStore(redis, keys).save(p);
}

/** In-memory store for unit tests and the benchmark. */
export function createMemoryCheckpointStore(initial: BinlogPosition | null = null): CheckpointStore & {
  saves: BinlogPosition[];
} {
  let current = initial;
  const saves: BinlogPosition[] = [];
  return {
    saves,
    load: async () => current,
    save: async (p) => {
      current = { ...p };
      saves.push({ ...p });
    },
    clear: async () => {
      current = null;
    },
  };
}
