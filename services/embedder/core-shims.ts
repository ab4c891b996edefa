/**
 * Stand-ins for shared helpers issue 16 moves into services/core (backoff.ts, kinesis-shards.ts, events.ts),
 * with the contract's signatures. Each goes, and its importers switch to the core module, once that lands.
 */
import { ListShardsCommand, type KinesisClient, type Shard } from '@aws-sdk/client-kinesis';
import { wrapError } from '../core/errors.ts';
import type { ChangeEvent } from '../core/events.ts';

/** Exponential backoff: `min(maxMs, baseMs * 2 ** attempt)` (attempt from 0), then jitter. */
export function backoffDelay(
  attempt: number,
  o: { baseMs: number; maxMs: number; jitter?: 'full' | 'half' | 'none' },
  random: () => number = Math.random,
): number {
  const cap = Math.min(o.maxMs, o.baseMs * 2 ** attempt);
  if (o.jitter === 'full') return random() * cap;
  if (o.jitter === 'half') return cap * (0.5 + random() / 2);
  return cap;
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects); clears its timer. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export type ShardLister = Pick<KinesisClient, 'send'>;

/** Every shard of the stream (ListShards paged with NextToken). */
export async function listAllShards(kinesis: ShardLister, stream: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  try {
    do {
      const out = await kinesis.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }),
      );
      shards.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
  } catch (e) {
    throw wrapError(e, 'KINESIS_LIST_SHARDS_FAILED', 'cannot list the shards of the stream', {
      context: { stream },
      retryable: true,
      remedy: 'check KINESIS_ENDPOINT / AWS credentials and that the stream exists',
    });
  }
  return shards;
}

const TYPE_RE = /"type":"([a-z]+)"/;
const TXID_RE = /"txid":"((?:[^"\\]|\\.)*)"/;
const TYPES = new Set<string>(['insert', 'update', 'delete', 'truncate', 'resync', 'commit']);

/** An event's type and transaction id read from its JSON text without parsing it (null when absent). */
export function peekChangeEvent(json: Uint8Array): { type: ChangeEvent['type'] | null; txid: string | null } {
  const text = Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
  const t = TYPE_RE.exec(text)?.[1];
  const txid = TXID_RE.exec(text)?.[1] ?? null;
  return { type: t !== undefined && TYPES.has(t) ? (t as ChangeEvent['type']) : null, txid };
}
