/**
 * The persistent embedding cache in Redis: one key per (model, dimensions, text hash), holding the vector
 * as little-endian float32 bytes (4 bytes a dimension, a quarter of its JSON text). Shared by backfill,
 * embedder and verify --repair, so a text is embedded once, ever, per model.
 */
import type { RedisClient } from '../clients/redis.ts';
import { wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';

export interface EmbeddingCache {
  getMany(textHashes: readonly string[]): Promise<Map<string, number[]>>;
  putMany(entries: ReadonlyMap<string, readonly number[]>): Promise<void>;
}

export function encodeVector(v: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i] as number, i * 4);
  return b;
}

export function decodeVector(b: Buffer): number[] {
  const out = new Array<number>(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(i * 4);
  return out;
}

export function createRedisEmbeddingCache(
  redis: RedisClient,
  keys: Keys,
  model: string,
  dimensions: number,
): EmbeddingCache {
  const key = (h: string) => keys.embedding(model, dimensions, h);
  return {
    async getMany(hashes) {
      const out = new Map<string, number[]>();
      if (hashes.length === 0) return out;
      try {
        for (let i = 0; i < hashes.length; i += 1000) {
          const chunk = hashes.slice(i, i + 1000);
          const values = await redis.mgetBuffer(...chunk.map(key));
          chunk.forEach((h, j) => {
            const v = values[j];
            if (v && v.length === dimensions * 4) out.set(h, decodeVector(v));
          });
        }
      } catch (e) {
        throw wrapError(e, 'REDIS_UNAVAILABLE', 'reading the embedding cache failed', { retryable: true });
      }
      return out;
    },
    async putMany(entries) {
      if (entries.size === 0) return;
      const pipe = redis.pipeline();
      for (const [h, v] of entries) pipe.set(key(h), encodeVector(v));
      try {
        const res = await pipe.exec();
        const failed = res?.find(([err]) => err);
        if (failed?.[0]) throw failed[0];
      } catch (e) {
        throw wrapError(e, 'REDIS_UNAVAILABLE', 'writing the embedding cache failed', { retryable: true });
      }
    },
  };
}
