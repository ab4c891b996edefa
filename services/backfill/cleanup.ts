/**
 * Phase 3: documents of the part's NDC range whose NDC is not an eligible row of the snapshot are deleted at
 * the snapshot's position, so a document the stream wrote after the snapshot (newer position) is kept. A
 * re-run thereby also repairs drift (rows deleted or made ineligible while nothing streamed).
 */
import type { RedisClient } from '../core/clients/redis.ts';
import type { StoreOp } from '../core/drug-store-contract.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { SourcePosition } from '../core/position.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import { inPart } from './part.ts';
import type { Part } from './part.ts';
import { spoolWindows } from './spool.ts';

/** Deletes the part's documents the spool does not have, at `writePosition`; returns how many went. */
export async function cleanUp(
  deps: { redis: RedisClient; keys: Keys; store: RedisDrugStore; log: Logger },
  part: Part,
  spool: string,
  writePosition: SourcePosition,
): Promise<number> {
  const { redis, keys } = deps;
  const keep = new Set<string>();
  for await (const window of spoolWindows(spool, 0, 10_000))
    for (const fields of window) keep.add(fields.ndc);
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.docPrefix}*`, 'COUNT', 2000);
    cursor = next;
    const ops: StoreOp[] = [];
    for (const key of found) {
      const ndc = key.slice(keys.docPrefix.length);
      if (!inPart(ndc, part) || keep.has(ndc)) continue;
      ops.push({ kind: 'delete', ndc, pos: writePosition });
    }
    for (const r of await deps.store.apply(ops)) if (r.outcome === 'deleted') deleted++;
  } while (cursor !== '0');
  if (deleted)
    deps.log.info('removed documents no longer eligible in the snapshot', { part: part.label, deleted });
  return deleted;
}
