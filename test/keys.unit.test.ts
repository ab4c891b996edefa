/**
 * Every Redis key name, pinned as text: deployed data lives under these names, so a change to
 * services/core/keys.ts that renames a key (or a new key without its pinned text here) fails. The names are
 * those of the default settings (REDIS_INDEX=drugs_idx, REDIS_DOC_PREFIX=drug:, REDIS_STATE_PREFIX=drugsync:).
 */
import { describe, expect, it } from 'vitest';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';

const keys = makeKeys({
  REDIS_INDEX: 'drugs_idx',
  REDIS_DOC_PREFIX: 'drug:',
  REDIS_STATE_PREFIX: 'drugsync:',
});
const STREAM = 'drugsync-prod-changes';
const SHARD = 'shardId-000000000001';
const SEQUENCE = '49654389012345678901234567890123456789012345678901234562';

/** Each member of Keys and its text (functions applied to realistic arguments). */
const PINNED: Record<keyof Keys, string> = {
  index: 'drugs_idx',
  docPrefix: 'drug:',
  doc: 'drug:00002063202',
  statePrefix: 'drugsync:',
  meta: 'drugsync:meta:00002063202',
  metaPrefix: 'drugsync:meta:',
  indexVectorSpec: 'drugsync:index:drugs_idx:vector',
  embedding: 'drugsync:emb:amazon.titan-embed-text-v2:0:1024:6f1ed002ab5595859014ebf0951522d9',
  embeddingPrefix: 'drugsync:emb:amazon.titan-embed-text-v2:0:1024:',
  embeddingCachePrefix: 'drugsync:emb:',
  readerCheckpoint: 'drugsync:reader:checkpoint',
  readerLease: 'drugsync:reader:lease',
  backfillSnapshot: 'drugsync:backfill:snapshot',
  backfillSnapshots: 'drugsync:backfill:snapshots',
  backfillSplit: 'drugsync:backfill:split:4',
  backfillRun: 'drugsync:backfill:run:2of4',
  backfillRunPrefix: 'drugsync:backfill:run:',
  backfillFailures: 'drugsync:backfill:failures',
  shardCheckpoints: 'drugsync:embedder:shards:drugsync-prod-changes',
  consumerLease: 'drugsync:embedder:shards:drugsync-prod-changes:lease',
  deferredDeletes: `drugsync:embedder:shards:drugsync-prod-changes:deferred:${SHARD}:0-12-3456`,
  pendingTruncate: 'drugsync:embedder:truncate',
  truncateFloor: 'drugsync:embedder:truncate_floor',
  pendingResyncs: 'drugsync:embedder:resync',
  resyncFloor: 'drugsync:embedder:resync_floor',
  resyncLease: 'drugsync:embedder:resync_lease',
  resyncStatus: 'drugsync:embedder:resync_status',
  deadLetters: 'drugsync:dlq',
  deadLetterMarker: `drugsync:dlq:seen:${SHARD}:${SEQUENCE}`,
  deadLetterMarkerPrefix: 'drugsync:dlq:seen:',
  serviceStatus: 'drugsync:status:binlog-reader',
};

/** The text of each member: a function called with the arguments its pinned text shows. */
function texts(k: Keys): Record<keyof Keys, string> {
  return {
    ...(k as unknown as Record<keyof Keys, string>),
    doc: k.doc('00002063202'),
    meta: k.meta('00002063202'),
    embedding: k.embedding('amazon.titan-embed-text-v2:0', 1024, '6f1ed002ab5595859014ebf0951522d9'),
    embeddingPrefix: k.embeddingPrefix('amazon.titan-embed-text-v2:0', 1024),
    backfillSplit: k.backfillSplit(4),
    backfillRun: k.backfillRun('2of4'),
    shardCheckpoints: k.shardCheckpoints(STREAM),
    consumerLease: k.consumerLease(STREAM),
    deferredDeletes: k.deferredDeletes(STREAM, SHARD, '0-12-3456'),
    deadLetterMarker: k.deadLetterMarker({ shardId: SHARD, sequenceNumber: SEQUENCE }),
    serviceStatus: k.serviceStatus('binlog-reader'),
  };
}

describe('Redis key names (services/core/keys.ts)', () => {
  it('are the deployed names, byte for byte, and every member is pinned here', () => {
    // Act
    const actual = texts(keys);
    // Assess
    expect(Object.keys(keys).sort()).toEqual(Object.keys(PINNED).sort());
    expect(actual).toEqual(PINNED);
  });

  it('put every key but the documents under the state prefix, outside the index prefix', () => {
    // Prepare
    const other = makeKeys({
      REDIS_INDEX: 'site2_idx',
      REDIS_DOC_PREFIX: 's2:drug:',
      REDIS_STATE_PREFIX: 's2:ds:',
    });
    // Act
    const all = Object.entries(texts(other)).filter(
      ([name]) => !['index', 'docPrefix', 'doc'].includes(name),
    );
    // Assess
    for (const [name, text] of all) {
      expect(text.startsWith('s2:ds:'), name).toBe(true);
      expect(text.startsWith('s2:drug:'), name).toBe(false);
    }
    expect(other.doc('00002063202')).toBe('s2:drug:00002063202');
  });
});
