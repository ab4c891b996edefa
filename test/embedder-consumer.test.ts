/**
 * The local/ECS consumer's shard mechanics against a scripted Kinesis (shards, sequence numbers, closed
 * parents) with checkpoints in the real Redis: checkpoint only after apply, resume AFTER_SEQUENCE_NUMBER,
 * re-read from the first failed record, children after their parent, clean stop. The store is the unit-test
 * fake; the real stack path is test/embedder-integration.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { DrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { encodeChangeEvent } from '../services/core/events.ts';
import type { ChangeEvent } from '../services/core/events.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import type { KinesisReader } from '../services/embedder/consumer.ts';
import type { ApplyDeps } from '../services/embedder/apply-run.ts';
import { EventFactory, makeRow } from './support/events.ts';
import { MemoryDeadLetterQueue } from './support/fake-dlq.ts';
import { MemoryDrugStore } from './support/fake-drug-store.ts';
import { MemoryEmbeddingService } from './support/fake-embedding.ts';
import { MemoryTableState } from './support/fake-table-state.ts';
import { eventually, resetSuiteRedis, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';

interface FakeShard {
  id: string;
  parent?: string;
  records: { seq: string; data: Uint8Array; key: string }[];
  closed: boolean;
}

/** A scripted Kinesis: iterators are "shard|index"; records appear when pushed. */
class ScriptedKinesis implements KinesisReader {
  readonly shards = new Map<string, FakeShard>();
  readonly iteratorRequests: { shard: string; type: string; after?: string }[] = [];
  private seq = 1000n;
  addShard(id: string, parent?: string): void {
    this.shards.set(id, { id, parent, records: [], closed: false });
  }
  push(shard: string, e: ChangeEvent): string {
    this.seq += 7n;
    const seq = this.seq.toString().padStart(20, '0');
    this.shards.get(shard)!.records.push({ seq, data: encodeChangeEvent(e), key: 'k' });
    return seq;
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  send = (async (cmd: { constructor: { name: string }; input: any }) => {
    const name = cmd.constructor.name;
    const input = cmd.input;
    if (name === 'ListShardsCommand') {
      return {
        Shards: [...this.shards.values()].map((s) => ({
          ShardId: s.id,
          ParentShardId: s.parent,
          SequenceNumberRange: {
            StartingSequenceNumber: '0',
            EndingSequenceNumber: s.closed ? 'x' : undefined,
          },
        })),
      };
    }
    if (name === 'GetShardIteratorCommand') {
      this.iteratorRequests.push({
        shard: input.ShardId,
        type: input.ShardIteratorType,
        after: input.StartingSequenceNumber,
      });
      const s = this.shards.get(input.ShardId)!;
      const idx =
        input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER'
          ? s.records.findIndex((r) => r.seq === input.StartingSequenceNumber) + 1
          : 0;
      return { ShardIterator: `${s.id}|${idx}` };
    }
    if (name === 'GetRecordsCommand') {
      const [id, idxText] = String(input.ShardIterator).split('|') as [string, string];
      const s = this.shards.get(id)!;
      const idx = Number(idxText);
      const recs = s.records.slice(idx, idx + (input.Limit as number));
      const next = idx + recs.length;
      const end = s.closed && next >= s.records.length;
      return {
        Records: recs.map((r) => ({ SequenceNumber: r.seq, Data: r.data, PartitionKey: r.key })),
        NextShardIterator: end ? undefined : `${id}|${next}`,
        MillisBehindLatest: next >= s.records.length ? 0 : 1000,
      };
    }
    throw new Error(`unexpected command ${name}`);
  }) as unknown as KinesisReader['send'];
}

/** Holds every store.apply at a gate until release(): a batch stays in flight while the test acts. */
function holdApplies(store: ApplyDeps['store']): { readonly entered: boolean; release(): void } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const apply = store.apply.bind(store);
  const held = { entered: false, release: () => release() };
  store.apply = async (ops) => {
    held.entered = true;
    await gate;
    return apply(ops);
  };
  return held;
}

describe('embedder consumer (shard mechanics)', () => {
  const env = suiteEnv('embedder_consumer');
  let redis: RedisClient;
  const config = { KINESIS_STREAM: 'test', EMBEDDER_GETRECORDS_LIMIT: 50, EMBEDDER_IDLE_POLL_MS: 20 };
  const keys = suiteKeys(env);
  const cpKey = keys.shardCheckpoints(config.KINESIS_STREAM);
  beforeAll(async () => {
    redis = suiteRedis(env);
  });
  afterAll(async () => {
    await resetSuiteRedis(env, redis);
    redis.disconnect();
  });

  function deps(kinesis: KinesisReader) {
    const apply = {
      store: new MemoryDrugStore(),
      embeddings: new MemoryEmbeddingService(8),
      dlq: new MemoryDeadLetterQueue(),
      tableState: new MemoryTableState(),
      log: createLogger({ service: 'consumer-test' }, { level: 'error' }),
    } satisfies ApplyDeps;
    return { kinesis, redis, keys, apply, log: apply.log };
  }

  /**
   * A consumer under a 1.5 s lease that applied 10 inserts (rows from `firstRow`) and holds its next batch
   * (10 more, from `nextRow`) in flight until `held.release()`.
   */
  async function batchInFlight(firstRow: number, nextRow: number) {
    await resetSuiteRedis(env, redis);
    const shard = 'shardId-000000000000';
    const k = new ScriptedKinesis();
    k.addShard(shard);
    const ev = new EventFactory();
    const first = Array.from({ length: 10 }, (_, i) => k.push(shard, ev.insert(makeRow(firstRow + i))));
    const d = deps(k);
    const c = startEmbedderConsumer({ ...config, EMBEDDER_LEASE_TTL_MS: 1500 }, d);
    await eventually(async () => (await redis.hget(cpKey, shard)) === first.at(-1), 20_000, 'first batch');
    const held = holdApplies(d.apply.store);
    for (let i = 0; i < 10; i++) k.push(shard, ev.insert(makeRow(nextRow + i)));
    await eventually(async () => held.entered, 10_000, 'a batch in flight');
    return { shard, k, ev, first, d, c, held };
  }

  it('checkpoints after applying, resumes AFTER_SEQUENCE_NUMBER, and re-reads from the first failed record', async () => {
    await resetSuiteRedis(env, redis);
    const k = new ScriptedKinesis();
    k.addShard('shardId-000000000000');
    const ev = new EventFactory();
    const rows = Array.from({ length: 120 }, (_, i) =>
      i === 70 ? makeRow(i, { LN: 'WARFARIN 5 MG TABLET' }) : makeRow(i),
    );
    const seqs = rows.map((r) => k.push('shardId-000000000000', ev.insert(r)));
    const d = deps(k);
    // the 70th row's name is throttled for now: the shard must stop there
    const blocked = rows[70]!;
    d.apply.embeddings.failing.set(
      String(blocked.LN),
      new DrugsyncError('EMBEDDING_THROTTLED', 'still throttled', { retryable: true }),
    );
    const c = startEmbedderConsumer(config, d);
    await eventually(async () => k.iteratorRequests.length >= 2, 20_000, 'a re-read after the failure');
    expect(await redis.hget(cpKey, 'shardId-000000000000')).toBe(seqs[69]);
    expect(k.iteratorRequests[1]).toMatchObject({ type: 'AFTER_SEQUENCE_NUMBER', after: seqs[69] });
    expect(d.apply.store.docs.has(String(blocked.NDC))).toBe(false);
    // the cause goes away: the shard moves on to the end
    d.apply.embeddings.failing.clear();
    await eventually(
      async () => (await redis.hget(cpKey, 'shardId-000000000000')) === seqs[119],
      20_000,
      'end',
    );
    c.stop();
    await c.done;
    expect(d.apply.store.docs.size).toBe(120);

    // restart: resumes after the checkpoint, reads only the new records
    const more = Array.from({ length: 5 }, (_, i) => makeRow(500 + i)).map((r) =>
      k.push('shardId-000000000000', ev.insert(r)),
    );
    const d2 = deps(k);
    const stats = await startEmbedderConsumer(config, d2, { exitWhenIdleMs: 200 }).done;
    expect(k.iteratorRequests.at(-1)).toMatchObject({ type: 'AFTER_SEQUENCE_NUMBER', after: seqs[119] });
    expect(stats.totals.records).toBe(5);
    expect(await redis.hget(cpKey, 'shardId-000000000000')).toBe(more[4]);
  });

  it('holds the deletes of a DELETE-all + INSERT-all transaction until its commit event: nothing is deleted', async () => {
    // Prepare: 30 documents, then the first half of one transaction (its deletes) on the stream
    await resetSuiteRedis(env, redis);
    const shard = 'shardId-000000000000';
    const k = new ScriptedKinesis();
    k.addShard(shard);
    const ev = new EventFactory();
    const rows = Array.from({ length: 30 }, (_, i) => makeRow(200 + i));
    const inserted = rows.map((r) => k.push(shard, ev.insert(r)));
    const d = deps(k);
    const c = startEmbedderConsumer(config, d);
    await eventually(async () => (await redis.hget(cpKey, shard)) === inserted.at(-1), 20_000, 'loaded');
    // Act: the deletes arrive; the inserts of the same transaction come much later than a few polls
    for (const r of rows) k.push(shard, { ...ev.delete(r), txid: 'T9' });
    await new Promise((r) => setTimeout(r, 1500));
    // Assess: nothing applied or checkpointed while the transaction is open
    expect(d.apply.store.docs.size).toBe(30);
    expect(await redis.hget(cpKey, shard)).toBe(inserted.at(-1));
    // Act: the rest of the transaction and its commit
    for (const r of rows) k.push(shard, { ...ev.insert({ ...r, PS: '99.000' }), txid: 'T9' });
    const commit = k.push(shard, ev.commit('T9'));
    await eventually(async () => (await redis.hget(cpKey, shard)) === commit, 20_000, 'the commit applied');
    c.stop();
    await c.done;
    // Assess: one collapsed upsert per NDC, never a delete
    expect(d.apply.store.docs.size).toBe(30);
    expect(d.apply.store.applied.filter((op) => op.kind === 'delete')).toEqual([]);
  });

  it('defers the deletes of a transaction too large to hold until its commit: only NDCs really gone go', async () => {
    // Prepare: 30 documents; one transaction deletes all 30 and inserts 25 of them again
    await resetSuiteRedis(env, redis);
    const shard = 'shardId-000000000000';
    const k = new ScriptedKinesis();
    k.addShard(shard);
    const ev = new EventFactory();
    const rows = Array.from({ length: 30 }, (_, i) => makeRow(300 + i));
    const loaded = rows.map((r) => k.push(shard, ev.insert(r)));
    const d = deps(k);
    const c = startEmbedderConsumer(config, d, { maxPendingRecords: 20 });
    await eventually(async () => (await redis.hget(cpKey, shard)) === loaded.at(-1), 20_000, 'loaded');
    const survivors = rows.slice(0, 25).map((r) => String(r.NDC));
    const present = () => survivors.filter((n) => d.apply.store.docs.has(n)).length;
    let smallest = present();
    const sampler = setInterval(() => (smallest = Math.min(smallest, present())), 1);
    // Act
    for (const r of rows) k.push(shard, { ...ev.delete(r), txid: 'T7' });
    await eventually(
      async () => (await redis.hget(cpKey, shard)) !== loaded.at(-1),
      20_000,
      'deletes deferred',
    );
    const heldDeletes = await redis.hlen(keys.deferredDeletes(config.KINESIS_STREAM, shard, 'T7'));
    for (const r of rows.slice(0, 25)) k.push(shard, { ...ev.insert(r), txid: 'T7' });
    const commit = k.push(shard, ev.commit('T7'));
    await eventually(async () => (await redis.hget(cpKey, shard)) === commit, 20_000, 'the commit applied');
    clearInterval(sampler);
    c.stop();
    await c.done;
    // Assess: the deletes waited (durably), the re-inserted NDCs never left, the 5 others are gone
    expect(heldDeletes).toBe(30);
    expect(smallest).toBe(25);
    expect([...d.apply.store.docs.keys()].sort()).toEqual(
      rows
        .slice(0, 25)
        .map((r) => String(r.NDC))
        .sort(),
    );
    expect(await redis.exists(keys.deferredDeletes(config.KINESIS_STREAM, shard, 'T7'))).toBe(0);
  });

  it('starts a child shard only after its parent is read to the end', async () => {
    await resetSuiteRedis(env, redis);
    const k = new ScriptedKinesis();
    k.addShard('shardId-000000000000');
    k.addShard('shardId-000000000002', 'shardId-000000000000');
    const ev = new EventFactory();
    const row = makeRow(1);
    const v2 = { ...row, LN: 'LISINOPRIL 40 MG TABLET' };
    k.push('shardId-000000000000', ev.insert(row));
    k.push('shardId-000000000002', ev.update(row, v2));
    const d = deps(k);
    const c = startEmbedderConsumer(config, d, { discoverEveryMs: 50 });
    await eventually(async () => d.apply.store.docs.size === 1, 20_000, 'parent applied');
    // the parent is still open: the child must not have been read
    expect(k.iteratorRequests.some((r) => r.shard === 'shardId-000000000002')).toBe(false);
    k.shards.get('shardId-000000000000')!.closed = true;
    await eventually(
      async () => d.apply.store.docs.get(String(row.NDC))?.fields.drug_name === 'LISINOPRIL 40 MG TABLET',
      20_000,
      'child applied after parent closed',
    );
    c.stop();
    await c.done;
    expect(await redis.hget(cpKey, 'shardId-000000000000#closed')).toBe('1');
  });

  it('stop() finishes the in-flight batch and checkpoints it', async () => {
    await resetSuiteRedis(env, redis);
    const k = new ScriptedKinesis();
    k.addShard('shardId-000000000000');
    const ev = new EventFactory();
    const seqs = Array.from({ length: 40 }, (_, i) => k.push('shardId-000000000000', ev.insert(makeRow(i))));
    const d = deps(k);
    const held = holdApplies(d.apply.store);
    const c = startEmbedderConsumer(config, d);
    await eventually(async () => held.entered, 10_000, 'a batch in flight');
    c.stop();
    held.release();
    const stats = await c.done;
    expect(stats.totals.records).toBe(40);
    expect(await redis.hget(cpKey, 'shardId-000000000000')).toBe(seqs[39]);
  });

  it('on a lease loss stops applying at once, writes no checkpoint after it, and waits to take the lease again', async () => {
    // Prepare: a consumer applying under its lease; its next batch is in flight when the lease is lost
    const { shard, k, ev, first, d, c, held } = await batchInFlight(600, 700);
    const store = d.apply.store;
    // Act: another consumer takes the lease (as after an expiry), then the in-flight batch ends
    const leaseKey = keys.consumerLease(config.KINESIS_STREAM);
    await redis.set(leaseKey, 'elsewhere:4242:abcd|1700000000000', 'PX', 60_000);
    held.release();
    await eventually(async () => c.stats.state === 'waiting-lease', 10_000, 'the consumer to wait');
    for (let i = 0; i < 10; i++) k.push(shard, ev.insert(makeRow(800 + i)));
    await new Promise((r) => setTimeout(r, 800));
    // Assess: the checkpoint stayed where it was before the loss; nothing after the loss was applied
    expect(await redis.hget(cpKey, shard)).toBe(first.at(-1));
    expect(c.stats.leaseLost).toBe(1);
    expect(c.stats.leaseHolder).toMatchObject({ host: 'elsewhere', pid: 4242 });
    expect(store.docs.has(String(makeRow(800).NDC))).toBe(false);
    // Act: the other holder releases: this consumer takes over and re-reads from its checkpoint
    await redis.del(leaseKey);
    await eventually(async () => store.docs.has(String(makeRow(809).NDC)), 20_000, 'applied after re-take');
    c.stop();
    await c.done;
    expect(c.stats.leaseTaken).toBe(2);
    expect(await redis.exists(leaseKey)).toBe(0);
  });

  it('starts a shard reader again when it ended while the consumer kept its lease (a renewal overdue for a moment)', async () => {
    // Prepare: a consumer applying under its lease; a batch in flight
    const { shard, k, ev, d, c, held } = await batchInFlight(900, 1000);
    // Act: as the batch ends, the lease's last renewal looks older than 2/3 of its TTL (the clock jumps, as
    // after a busy event loop) for a moment the shard sees; then time runs normally and renewals land again
    const realNow = Date.now.bind(Date);
    let skewMs = 1_200;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skewMs);
    try {
      held.release();
      await new Promise((r) => setTimeout(r, 30));
    } finally {
      skewMs = 0;
      clock.mockRestore();
    }
    const later = Array.from({ length: 10 }, (_, i) => k.push(shard, ev.insert(makeRow(1100 + i))));
    // Assess: the shard goes on to the end of the stream (from its checkpoint), nothing skipped
    await eventually(
      async () => (await redis.hget(cpKey, shard)) === later.at(-1),
      20_000,
      'the shard to go on',
    );
    c.stop();
    await c.done;
    for (const n of [900, 1000, 1009, 1100, 1109])
      expect(d.apply.store.docs.has(String(makeRow(n).NDC))).toBe(true);
  });
});
