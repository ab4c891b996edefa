/**
 * Table events (truncate, resync) as durable state in Redis, so every shard, every consumer restart and
 * every `drugsync dlq replay` sees them:
 *
 * - A truncate does not delete at once (issue 9): it is recorded as a pending sweep at its position T.
 *   Row events of the reload are upserted as usual (unchanged names cost no embedding). Once no row event
 *   has been applied for the quiet period (TRUNCATE_QUIET_SECONDS), documents whose recorded position is
 *   older than T are swept. From the moment T is known, any upsert older than T is refused (the
 *   "truncate floor"), so a lagging shard cannot bring back a row the truncate removed.
 * - A resync (table replaced by RENAME / DROP+CREATE) is recorded as pending. The re-sync by difference
 *   (services/embedder/resync.ts) runs from a snapshot taken after it and, once done, raises the resync floor
 *   to that snapshot's position: pending resyncs at or below the floor are cleared, and a later sighting of
 *   the same event on another shard (or a replay) is ignored. Pending resyncs are never dropped otherwise.
 */
import type { RedisClient } from '../core/clients/redis.ts';
import { wrapError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import type { SourcePosition } from '../core/position.ts';
import type { TableEvent } from '../core/events.ts';

export interface PendingTruncate {
  pos: SourcePosition;
  statement: string;
  /** epoch ms when the first shard saw it */
  seenAt: number;
  /** epoch ms of the last applied row event since */
  lastRowAt: number;
  /** shards that have passed it */
  shards: string[];
}

export interface PendingResync {
  pos: SourcePosition;
  statement: string;
  ts: number;
  seenAt: number;
  shards: string[];
}

export interface TableStateSnapshot {
  truncate: PendingTruncate | null;
  /** the newest truncate already swept */
  floor: SourcePosition | null;
  resyncs: PendingResync[];
  /** resync events at or below this position are done */
  resyncFloor: SourcePosition | null;
}

export interface TableState {
  read(): Promise<TableStateSnapshot>;
  /** Records a truncate seen on a shard. Returns false when a newer (or the same) one is already known. */
  recordTruncate(e: TableEvent, shardId: string, now: number): Promise<boolean>;
  /** Notes that row events were applied (keeps a pending truncate from settling). */
  noteRowActivity(now: number): Promise<void>;
  /** Records a resync event (ignored at or below the resync floor); returns the number of pending resyncs. */
  recordResync(e: TableEvent, shardId: string, now: number): Promise<number>;
  /** After a re-sync from a snapshot at `pos`: clears pending resyncs at or below it, raises the floor. */
  completeResync(pos: SourcePosition): Promise<void>;
  /** After sweeping: clears the pending truncate if it is still `pos`, raises the floor. */
  completeTruncate(pos: SourcePosition): Promise<void>;
}

const RECORD_TRUNCATE = `
local floor = redis.call('GET', KEYS[2])
if floor and floor >= ARGV[1] then return 0 end
local cur = redis.call('HGET', KEYS[1], 'pos')
if cur and cur > ARGV[1] then return 0 end
if cur == ARGV[1] then
  redis.call('HSET', KEYS[1], 'shard:' .. ARGV[4], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'pos', ARGV[1], 'seenAt', ARGV[2], 'lastRowAt', ARGV[2], 'statement', ARGV[3], 'shard:' .. ARGV[4], ARGV[2])
return 1`;

const NOTE_ROWS = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local cur = tonumber(redis.call('HGET', KEYS[1], 'lastRowAt') or '0')
  if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], 'lastRowAt', ARGV[1]) end
  return 1
end
return 0`;

const COMPLETE = `
if redis.call('HGET', KEYS[1], 'pos') == ARGV[1] then redis.call('DEL', KEYS[1]) end
local floor = redis.call('GET', KEYS[2])
if (not floor) or floor < ARGV[1] then redis.call('SET', KEYS[2], ARGV[1]) end
return 1`;

const COMPLETE_RESYNC = `
local floor = redis.call('GET', KEYS[2])
if (not floor) or floor < ARGV[1] then redis.call('SET', KEYS[2], ARGV[1]) end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f <= ARGV[1] then redis.call('HDEL', KEYS[1], f) end
end
return 1`;

export function createRedisTableState(redis: RedisClient, keys: Keys): TableState {
  const guard = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw wrapError(e, 'REDIS_UNAVAILABLE', `cannot ${what} (embedder table-event state)`, {
        context: { key: keys.pendingTruncate },
        retryable: true,
        remedy: 'check that Redis is reachable; the batch fails as a whole and is retried',
      });
    }
  };
  return {
    read: () =>
      guard('read truncate/resync state', async () => {
        const [t, floor, r, rf] = await Promise.all([
          redis.hgetall(keys.pendingTruncate),
          redis.get(keys.truncateFloor),
          redis.hgetall(keys.pendingResyncs),
          redis.get(keys.resyncFloor),
        ]);
        const truncate: PendingTruncate | null = t.pos
          ? {
              pos: t.pos,
              statement: t.statement ?? '',
              seenAt: Number(t.seenAt ?? 0),
              lastRowAt: Number(t.lastRowAt ?? 0),
              shards: Object.keys(t)
                .filter((f) => f.startsWith('shard:'))
                .map((f) => f.slice(6)),
            }
          : null;
        const resyncs = Object.values(r)
          .map((v) => JSON.parse(v) as PendingResync)
          .sort((a, b) => (a.pos < b.pos ? -1 : 1));
        return { truncate, floor: floor ?? null, resyncs, resyncFloor: rf ?? null };
      }),
    recordTruncate: (e, shardId, now) =>
      guard('record a truncate', async () => {
        const r = await redis.eval(
          RECORD_TRUNCATE,
          2,
          keys.pendingTruncate,
          keys.truncateFloor,
          e.pos,
          String(now),
          e.statement.slice(0, 500),
          shardId,
        );
        return Number(r) === 1;
      }),
    noteRowActivity: (now) =>
      guard('note row activity', async () => {
        await redis.eval(NOTE_ROWS, 1, keys.pendingTruncate, String(now));
      }),
    recordResync: (e, shardId, now) =>
      guard('record a resync', async () => {
        const done = await redis.get(keys.resyncFloor);
        if (done !== null && done >= e.pos) return redis.hlen(keys.pendingResyncs);
        const prev = await redis.hget(keys.pendingResyncs, e.pos);
        const cur: PendingResync = prev
          ? (JSON.parse(prev) as PendingResync)
          : { pos: e.pos, statement: e.statement.slice(0, 500), ts: e.ts, seenAt: now, shards: [] };
        if (!cur.shards.includes(shardId)) cur.shards.push(shardId);
        await redis.hset(keys.pendingResyncs, e.pos, JSON.stringify(cur));
        return redis.hlen(keys.pendingResyncs);
      }),
    completeResync: (pos) =>
      guard('complete a resync', async () => {
        await redis.eval(COMPLETE_RESYNC, 2, keys.pendingResyncs, keys.resyncFloor, pos);
      }),
    completeTruncate: (pos) =>
      guard('complete a truncate sweep', async () => {
        await redis.eval(COMPLETE, 2, keys.pendingTruncate, keys.truncateFloor, pos);
      }),
  };
}
