/**
 * Where the binlog reader resumes, and where the backfill's snapshot stands: both are serialized
 * `BinlogPosition`s (services/core/position.ts: {file, pos, gtid?, source?}) in Redis, behind a small
 * interface so another durable store can replace Redis without touching the reader.
 *
 * - reader checkpoint (keys.readerCheckpoint): advanced by the binlog reader only after Kinesis
 *   acknowledged every event of a committed transaction; the start of the next transaction to read. The
 *   reader writes it through a fenced store (`createReaderCheckpointStore` with a lease): one Lua script
 *   writes it only while the reader lease holds the writer's token, and never moves it backwards on the
 *   same source, so a reader paused past its lease (GC pause, frozen task) cannot overwrite the newer
 *   checkpoint of the reader that took over. A refusal is READER_LEASE_HELD (the lease was lost: the
 *   session ends and the reader waits for the lease) or CHECKPOINT_BACKWARDS.
 * - backfill snapshot (keys.backfillSnapshot): written by the backfill when its consistent snapshot is
 *   taken; the reader starts there when it has no checkpoint of its own.
 *
 * Each position carries its server's identity (`source`, ./source-identity.ts) from the moment it is
 * written; `withSource` stamps the reader's writes with the identity of the server its session reads.
 */
import { DrugsyncError, wrapError } from './errors.ts';
import type { Keys } from './keys.ts';
import type { Lease } from './lease.ts';
import { binlogSequence, deserializePosition, formatBinlogPosition, serializePosition } from './position.ts';
import type { BinlogPosition } from './position.ts';

/** The subset of a Redis client the stores need (ioredis satisfies it). */
export interface PositionStoreRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * Where one `BinlogPosition` is kept: the reader's checkpoint or the backfill's snapshot position. (The
 * embedder's per-shard checkpoints are another thing: embedder/shard-checkpoints.ts.)
 */
export interface BinlogPositionStore {
  /** The stored position, or null when there is none. Throws CHECKPOINT_INVALID on a corrupt value. */
  load(): Promise<BinlogPosition | null>;
  save(p: BinlogPosition): Promise<void>;
  /** Removes the stored position (tests, `--reset`). */
  clear(): Promise<void>;
}

/** What a fenced write is checked against: the lease key and the token it holds while the lease is ours. */
export type CheckpointFence = Pick<Lease, 'key' | 'token'>;

/**
 * SET of the checkpoint only while the lease key holds the writer's token, and never to a position before
 * the stored one of the same source (a stored value without a source, or a write without one, compares as
 * the same source; another source's position is not comparable and is replaced: a failover resumed by GTID).
 * KEYS: lease, checkpoint. ARGV: token, value, file sequence, offset, source ('' = none).
 * Returns {'ok'}, {'lease', holder} or {'backwards', stored}.
 */
const FENCED_SET = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'lease', redis.call('GET', KEYS[1]) or ''}
end
local cur = redis.call('GET', KEYS[2])
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and type(c.file) == 'string' and type(c.pos) == 'number' then
    local src = type(c.source) == 'string' and c.source or ''
    if src == '' or ARGV[5] == '' or src == ARGV[5] then
      local seq = tonumber(string.match(c.file, '%.(%d+)$'))
      local nseq = tonumber(ARGV[3])
      local npos = tonumber(ARGV[4])
      if seq and (nseq < seq or (nseq == seq and npos < c.pos)) then return {'backwards', cur} end
    end
  end
end
redis.call('SET', KEYS[2], ARGV[2])
return {'ok', ''}`;

function redisStore(
  redis: PositionStoreRedis,
  key: string,
  what: string,
  fence?: CheckpointFence,
): BinlogPositionStore {
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
      if (fence) return fencedSave(redis, key, fence, p);
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

async function fencedSave(redis: PositionStoreRedis, key: string, fence: CheckpointFence, p: BinlogPosition) {
  const token = fence.token();
  let reply: unknown;
  try {
    reply =
      token === null
        ? ['lease', '']
        : await redis.eval(
            FENCED_SET,
            2,
            fence.key,
            key,
            token,
            serializePosition(p),
            binlogSequence(p.file),
            p.pos,
            p.source ?? '',
          );
  } catch (e) {
    throw wrapError(e, 'REDIS_COMMAND_FAILED', 'cannot write the binlog reader checkpoint', {
      context: { key },
      retryable: true,
      remedy: 'check that Redis is reachable; the reader restarts from its last checkpoint',
    });
  }
  const [outcome, other] = (reply as [string, string]) ?? [];
  if (outcome === 'ok') return;
  const at = formatBinlogPosition(p);
  if (outcome === 'lease') {
    throw new DrugsyncError(
      'READER_LEASE_HELD',
      `checkpoint ${at} refused: this reader no longer holds the lease`,
      {
        context: { key, lease: fence.key, holder: other ? other.split('|')[0] : null },
        retryable: true,
        remedy:
          'none needed: the reader that holds the lease carries on from its own checkpoint; this one waits for the lease',
      },
    );
  }
  throw new DrugsyncError('CHECKPOINT_BACKWARDS', `checkpoint ${at} refused: the stored one is newer`, {
    context: { key, stored: other },
    retryable: true,
    remedy: 'none needed: the reader restarts from the stored checkpoint; report it if it repeats',
  });
}

/**
 * The binlog reader's checkpoint in Redis (keys.readerCheckpoint). With `fence` (the reader lease) every
 * write is fenced as described above; without, a plain SET (tests and tools that plant a checkpoint).
 */
export function createReaderCheckpointStore(
  redis: PositionStoreRedis,
  keys: Keys,
  fence?: CheckpointFence,
): BinlogPositionStore {
  return redisStore(redis, keys.readerCheckpoint, 'binlog reader checkpoint', fence);
}

/** The backfill's snapshot position in Redis (keys.backfillSnapshot), as a BinlogPositionStore. */
export function createBackfillSnapshotStore(redis: PositionStoreRedis, keys: Keys): BinlogPositionStore {
  return redisStore(redis, keys.backfillSnapshot, 'backfill snapshot position');
}

/** `store` with every saved position stamped with `source` (a sourceKey): the server a session reads. */
export function withSource<S extends Pick<BinlogPositionStore, 'save'>>(store: S, source: string): S {
  return { ...store, save: (p: BinlogPosition) => store.save({ ...p, source }) };
}

export function readReaderCheckpoint(redis: PositionStoreRedis, keys: Keys): Promise<BinlogPosition | null> {
  return createReaderCheckpointStore(redis, keys).load();
}

/** The snapshot position the backfill recorded, or null. */
export function loadBackfillSnapshot(redis: PositionStoreRedis, keys: Keys): Promise<BinlogPosition | null> {
  return createBackfillSnapshotStore(redis, keys).load();
}

/**
 * Records the backfill's snapshot position (serializePosition JSON at keys.backfillSnapshot); the caller
 * stamps it with its source first (source-identity.ts `stampPosition`).
 */
export function saveBackfillSnapshot(
  redis: PositionStoreRedis,
  keys: Keys,
  p: BinlogPosition,
): Promise<void> {
  return createBackfillSnapshotStore(redis, keys).save(p);
}
