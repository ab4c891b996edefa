import { describe, expect, it } from 'vitest';
import { ListShardsCommand, type ListShardsCommandInput, type Shard } from '@aws-sdk/client-kinesis';
import { isOpenShard, listAllShards, type ShardLister } from '../services/core/kinesis-shards.ts';
import { isDrugsyncError, type DrugsyncError } from '../services/core/errors.ts';

function shard(id: number, closed = false): Shard {
  return {
    ShardId: `shardId-${String(id).padStart(12, '0')}`,
    HashKeyRange: { StartingHashKey: String(id * 1000), EndingHashKey: String(id * 1000 + 999) },
    SequenceNumberRange: {
      StartingSequenceNumber: `4963${id}`,
      ...(closed ? { EndingSequenceNumber: `4964${id}` } : {}),
    },
  };
}

/** A fake ListShards serving `pages` in turn, each page pointing at the next with a NextToken. */
function pagedLister(pages: Shard[][]): { lister: ShardLister; inputs: ListShardsCommandInput[] } {
  const inputs: ListShardsCommandInput[] = [];
  const lister = {
    send: async (cmd: unknown) => {
      if (!(cmd instanceof ListShardsCommand)) throw new Error('unexpected command');
      inputs.push(cmd.input);
      const page = cmd.input.NextToken ? Number(cmd.input.NextToken.slice('page-'.length)) : 0;
      const next = page + 1 < pages.length ? `page-${page + 1}` : undefined;
      return { Shards: pages[page], ...(next ? { NextToken: next } : {}) };
    },
  } as unknown as ShardLister;
  return { lister, inputs };
}

describe('listAllShards', () => {
  it('pages through every shard: the stream name first, then the NextToken only', async () => {
    // Prepare
    const { lister, inputs } = pagedLister([[shard(0), shard(1, true)], [shard(2)], [shard(3)]]);
    // Act
    const shards = await listAllShards(lister, 'drugsync-changes');
    // Assess
    expect(shards.map((s) => s.ShardId)).toEqual([0, 1, 2, 3].map((i) => shard(i).ShardId));
    expect(inputs).toEqual([
      { StreamName: 'drugsync-changes' },
      { NextToken: 'page-1' },
      { NextToken: 'page-2' },
    ]);
  });

  it('makes one call when the first page is the last', async () => {
    // Prepare
    const { lister, inputs } = pagedLister([[shard(0), shard(1)]]);
    // Act
    const shards = await listAllShards(lister, 'drugsync-changes');
    // Assess
    expect(shards).toHaveLength(2);
    expect(inputs).toHaveLength(1);
  });

  it('fails with KINESIS_LIST_SHARDS_FAILED naming the stream and a remedy', async () => {
    // Prepare
    const lister = {
      send: async () => {
        throw Object.assign(new Error('Stream drugsync-gone not found'), {
          name: 'ResourceNotFoundException',
        });
      },
    } as unknown as ShardLister;
    // Act
    const err: unknown = await listAllShards(lister, 'drugsync-gone').catch((e: unknown) => e);
    // Assess
    expect(isDrugsyncError(err)).toBe(true);
    const e = err as DrugsyncError;
    expect(e.code).toBe('KINESIS_LIST_SHARDS_FAILED');
    expect(e.context.stream).toBe('drugsync-gone');
    expect(e.message).toContain('drugsync-gone');
    expect(e.remedy).toMatch(/ListShards/);
    expect(e.retryable).toBe(true);
  });
});

describe('isOpenShard', () => {
  it('tells an open shard from one closed by a split or merge', () => {
    // Prepare
    const open = shard(4);
    const closed = shard(5, true);
    // Act
    const result = [open, closed, { ShardId: 'shardId-x' } as Shard].map(isOpenShard);
    // Assess
    expect(result).toEqual([true, false, true]);
  });
});
