/**
 * `drugsync backfill --retry-failed`: the rows listed as failed (./failures.ts) are embedded and written again
 * at their recorded position (the position rule still applies), leave the list, and the runs that listed
 * them count them failed no more.
 */
import type { RedisClient } from '../core/clients/redis.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { embeddingText } from '../core/mapping.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import { embeddedOps, listedFailures } from './failures.ts';
import { forgetFixedFailures } from './run-state.ts';

export interface RetrySummary {
  retried: number;
  succeeded: number;
  failed: number;
  /** entries still listed after this retry (all parts) */
  remaining: number;
  embeddings_requested: number;
  completed: boolean;
}

/** `--retry-failed`: rows listed as failed are embedded and written again at their recorded position. */
export async function retryFailed(deps: {
  redis: RedisClient;
  keys: Keys;
  store: RedisDrugStore;
  embeddings: EmbeddingService;
  log: Logger;
}): Promise<RetrySummary> {
  const { redis, keys } = deps;
  const entries = await listedFailures(deps);
  const embedded = await deps.embeddings.embedTexts(entries.map((e) => embeddingText(e.fields)));
  const { ops, failures: stillFailing } = embeddedOps(entries, embedded, deps.embeddings);
  let succeeded = 0;
  const written: string[] = [];
  for (let i = 0; i < ops.length; i += 500) {
    const results = await deps.store.apply(ops.slice(i, i + 500));
    if (results.length) await redis.hdel(keys.backfillFailures, ...results.map((r) => r.ndc));
    for (const r of results) written.push(r.ndc);
    succeeded += results.length;
  }
  // The runs that listed these rows no longer count them as failed (their `completed` follows).
  await forgetFixedFailures(deps, written);
  const failing = Object.keys(stillFailing);
  if (failing.length) {
    await redis.hset(keys.backfillFailures, stillFailing);
    deps.log.error('rows still fail to embed', { count: failing.length, example_ndc: failing[0] });
  }
  const remaining = await redis.hlen(keys.backfillFailures);
  return {
    retried: entries.length,
    succeeded,
    failed: entries.length - succeeded,
    remaining,
    embeddings_requested: embedded.stats.texts - embedded.stats.cacheHits,
    completed: remaining === 0,
  };
}
