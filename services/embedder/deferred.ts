/**
 * Deletes held back until their transaction's commit event (the consumer's answer to a DELETE-all +
 * INSERT-all transaction larger than it may hold in memory). When a shard's held records reach the bound
 * inside a transaction that deletes rows, the consumer writes that transaction's delete events (NDC and
 * position) to a Redis hash per shard and transaction, applies the rest of the batch and checkpoints; the
 * deferred deletes are durable, so a restart loses nothing. When the transaction's `commit` event arrives
 * on that shard, every row event of the transaction has been applied there, and the deferred deletes are
 * applied through the position-checked store: an NDC the same transaction inserted again has a newer
 * position, so its delete is refused as stale; only NDCs really gone are deleted. Search never loses a
 * drug that exists before and after.
 */
import type { RedisClient } from '../core/clients/redis.ts';
import { wrapError } from '../core/errors.ts';
import type { DrugStore, StoreOp } from '../core/drug-store-contract.ts';

export interface DeferredDeletes {
  defer(shardId: string, txid: string, items: readonly { ndc: string; pos: string }[]): Promise<void>;
  /** Applies and forgets the deferred deletes of a transaction on a shard (none: a no-op). */
  release(shardId: string, txid: string, store: DrugStore): Promise<{ deleted: number; refused: number }>;
}

/**
 * `key`: the hash of a shard's transaction; the consumer passes keys.deferredDeletes for its stream
 * (`<state>embedder:shards:<stream>:deferred:<shard>:<txid>`, beside the stream's shard checkpoints).
 */
export function createDeferredDeletes(
  redis: RedisClient,
  key: (shardId: string, txid: string) => string,
): DeferredDeletes {
  const guard = async <T>(what: string, k: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw wrapError(e, 'REDIS_UNAVAILABLE', `cannot ${what} (deferred deletes)`, {
        context: { key: k },
        retryable: true,
        remedy: 'check that Redis is reachable; the batch is retried from the last checkpoint',
      });
    }
  };
  return {
    defer: (shardId, txid, items) =>
      guard('record deletes', key(shardId, txid), async () => {
        const k = key(shardId, txid);
        for (let i = 0; i < items.length; i += 5000) {
          const flat = items.slice(i, i + 5000).flatMap((x) => [x.ndc, x.pos]);
          await redis.hset(k, ...flat);
        }
      }),
    release: (shardId, txid, store) =>
      guard('apply deletes', key(shardId, txid), async () => {
        const k = key(shardId, txid);
        const res = { deleted: 0, refused: 0 };
        let cursor = '0';
        do {
          const [next, flat] = await redis.hscan(k, cursor, 'COUNT', 5000);
          cursor = next;
          const ops: StoreOp[] = [];
          for (let i = 0; i < flat.length; i += 2)
            ops.push({ kind: 'delete', ndc: flat[i] as string, pos: flat[i + 1] as string });
          for (const r of await store.apply(ops)) {
            if (r.outcome === 'stale') res.refused++;
            else res.deleted++;
          }
        } while (cursor !== '0');
        await redis.del(k);
        return res;
      }),
  };
}
