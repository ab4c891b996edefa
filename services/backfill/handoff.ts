/**
 * The hand-over to the binlog reader: as soon as a part's snapshot is open, its position is recorded, and
 * the reader's start (`keys.backfillSnapshot`) becomes the oldest position among the parts of the split,
 * stamped with the source's identity (core/source-identity.ts).
 */
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { readReaderCheckpoint, saveBackfillSnapshot } from '../core/checkpoint.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { compareBinlogPositions, deserializePosition, serializePosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { stampPosition } from '../core/source-identity.ts';
import type { Part } from './part.ts';

/**
 * Records the part's snapshot position and the reader's start: the oldest position among the parts of
 * this split (each part writes its documents at its own snapshot's position; a reader starting at the
 * oldest sees every change after any part's snapshot, and the older changes it replays are refused or
 * converge under the position rule). The reader uses keys.backfillSnapshot only when it has no checkpoint
 * of its own: an existing reader checkpoint is never moved.
 */
export async function handOff(
  deps: { mysql: MysqlPool; redis: RedisClient; keys: Keys; log: Logger },
  part: Part,
  position: BinlogPosition,
): Promise<void> {
  const { mysql, redis, keys, log } = deps;
  const partsKey = keys.backfillSnapshots;
  await redis.hset(partsKey, part.label, serializePosition(position));
  const all = Object.entries(await redis.hgetall(partsKey))
    .filter(([label]) => label.endsWith(`of${part.count}`))
    .map(([, v]) => deserializePosition(v));
  const oldest = all.sort(compareBinlogPositions)[0] as BinlogPosition;
  const checkpoint = await readReaderCheckpoint(redis, keys);
  // stamped with the server it belongs to (and, on MariaDB, the exact GTID at that position)
  await saveBackfillSnapshot(redis, keys, await stampPosition(mysql, oldest));
  if (checkpoint) {
    log.info('the binlog reader already streams: its checkpoint stays where it is', {
      checkpoint: serializePosition(checkpoint),
    });
  } else {
    log.info('binlog reader will start at the backfill snapshot', { position: serializePosition(oldest) });
  }
}
