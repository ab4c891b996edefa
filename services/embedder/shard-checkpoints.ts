/**
 * Shard checkpoints (Redis hash keys.shardCheckpoints(stream): shard id → last applied sequence number,
 * `<shard>#closed` → '1' once a parent shard is read to its end). Every write is fenced on the consumer
 * lease's token, so none lands after a loss; a refusal is a lease loss. Per shard, writes are chained in
 * order on one connection and run while the next batch is read and decoded.
 */
import { DrugsyncError, isDrugsyncError, wrapError } from '../core/errors.ts';
import type { Lease } from '../core/lease.ts';
import type { RedisClient } from '../core/clients/redis.ts';

/** HSET of a checkpoint field only while the lease key holds our token (-1: the lease is not ours). */
const FENCED_HSET = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;

/** The checkpoint field marking a shard read to its end (resharding: its children may start). */
export const closedField = (shardId: string): string => `${shardId}#closed`;

export const isLeaseError = (e: unknown): boolean => isDrugsyncError(e, 'CONSUMER_LEASE_HELD');

/** Where a stream's shard checkpoints go: the hash, the lease that fences every write, what a refusal does. */
export interface ShardCheckpointStore {
  redis: RedisClient;
  lease: Lease;
  /** keys.shardCheckpoints(stream) */
  key: string;
  stream: string;
  /** called when a write is refused because the lease is no longer ours */
  onLeaseLost: (cause: unknown) => void;
}

/** Writes a shard checkpoint field only while the lease is ours; a refusal is a lease loss. */
export async function writeFencedCheckpoint(
  c: ShardCheckpointStore,
  field: string,
  value: string,
): Promise<void> {
  const token = c.lease.token();
  const r =
    token === null ? -1 : Number(await c.redis.eval(FENCED_HSET, 2, c.lease.key, c.key, token, field, value));
  if (r === 1) return;
  c.onLeaseLost(new Error(`the lease no longer holds our token when checkpointing ${field}`));
  throw new DrugsyncError(
    'CONSUMER_LEASE_HELD',
    'checkpoint refused: this consumer no longer holds the lease',
    {
      context: { stream: c.stream, key: c.lease.key, field },
      retryable: true,
      remedy: 'none needed: the consumer waits to take the lease again and resumes from the last checkpoint',
    },
  );
}

/** Every shard's checkpoint (empty when none was written yet). */
export async function readCheckpoints(redis: RedisClient, key: string): Promise<Record<string, string>> {
  try {
    return await redis.hgetall(key);
  } catch (e) {
    throw wrapError(e, 'REDIS_UNAVAILABLE', 'cannot read shard checkpoints', {
      context: { key },
      retryable: true,
      remedy: 'check that Redis is reachable; shards are listed again shortly',
    });
  }
}

/** One shard's checkpoint writes, in order, behind the batches they follow. */
export class ShardCheckpoints {
  private chain: Promise<unknown> = Promise.resolve();
  private error: unknown = null;

  constructor(
    private readonly store: ShardCheckpointStore,
    private readonly shardId: string,
  ) {}

  /** Queues the write of `sequenceNumber`; a failure surfaces at the next `throwIfFailed`. */
  queue(sequenceNumber: string): void {
    this.chain = this.chain.then(() => writeFencedCheckpoint(this.store, this.shardId, sequenceNumber));
    this.chain.catch((e: unknown) => (this.error ??= e));
  }

  /** Throws (once) the failure of an earlier queued write, so the shard re-reads from its checkpoint. */
  throwIfFailed(): void {
    if (this.error === null) return;
    const e = this.error;
    this.error = null;
    this.chain = Promise.resolve();
    throw wrapError(e, 'REDIS_UNAVAILABLE', `writing the checkpoint of ${this.shardId} failed`, {
      retryable: true,
      remedy: 'check that Redis is reachable; the shard is re-read from its last checkpoint',
    });
  }

  /** Waits for every queued write; rejects with the first failure. */
  settled(): Promise<unknown> {
    return this.chain;
  }

  /** Marks the shard read to its end, after its last checkpoint. */
  async close(): Promise<void> {
    await this.chain;
    await writeFencedCheckpoint(this.store, closedField(this.shardId), '1');
  }
}
