/**
 * A backfill run's state: one Redis hash per part (`keys.backfillRun(label)`), written whole once the
 * snapshot is spooled, its counters after every window, `deleted` / `cleaned` after the cleanup. The hash
 * holds strings; this module is its only reader and writer: `readRun` parses it once (zod) into a typed
 * `RunState`, and the writers below turn one back into the same fields.
 *
 * Fields (docs/backfill.md, "Resuming"): run, snapshot, exact, method, spool, spool_complete, spooled, capped,
 * snapshot_seconds, after, up_to, done, successful, failed, embeddings, hits, deleted, cleaned. Runs stored
 * before some of them existed read with their defaults (method binlog-snapshot, no range, counters 0).
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import type { RedisClient } from '../core/clients/redis.ts';
import { DrugsyncError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import { deserializePosition, serializePosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import type { SnapshotMethodUsed } from '../core/snapshot.ts';
import { inPart } from './part.ts';
import type { NdcRange } from './part.ts';

/** Counters of one run, persisted in its hash after every window. */
export interface Counters {
  /** spool lines written (or passed, in a dry run) */
  done: number;
  successful: number;
  failed: number;
  /** texts sent to the embedder */
  embeddings: number;
  /** texts found in the embedding cache */
  hits: number;
  /** documents the cleanup deleted */
  deleted: number;
}

/** What phase 1 leaves: a snapshot read whole into a spool file. */
export interface SpooledSnapshot {
  position: BinlogPosition;
  exact: boolean;
  method: SnapshotMethodUsed;
  spool: string;
  /** eligible rows in the spool */
  spooled: number;
  /** stopped at --max-drugs: never complete, never cleaned */
  capped: boolean;
  /** seconds the snapshot's transaction was open */
  seconds: number;
}

/** One run of a part whose snapshot is spooled: what a resumed run continues from. */
export interface RunState extends Omit<SpooledSnapshot, 'seconds'> {
  run: string;
  snapshotSeconds: number;
  /** the range the run was started with (undefined in runs stored before ranges were recorded) */
  range: NdcRange | undefined;
  counters: Counters;
  cleaned: boolean;
}

/**
 * What a part's hash holds: nothing; a run that never finished spooling its snapshot; a spooled run; or a
 * spooled run whose fields do not parse (`problems` names them).
 */
export type StoredRun =
  | { status: 'none' }
  | { status: 'unspooled'; spool: string | undefined }
  | { status: 'spooled'; spool: string; state: RunState }
  | { status: 'invalid'; spool: string; problems: string };

const flag = z.enum(['0', '1']).transform((v) => v === '1');
const whole = z.coerce.number().int();
const position = z.string().transform((text, ctx) => {
  try {
    return deserializePosition(text);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: e instanceof Error ? e.message : String(e) });
    return z.NEVER;
  }
});

const runHashSchema = z.object({
  run: z.string().min(1),
  snapshot: position,
  exact: flag.optional(),
  method: z.enum(['binlog-snapshot', 'table-lock']).default('binlog-snapshot'),
  spool: z.string().min(1),
  spooled: whole.nonnegative(),
  capped: flag.default(false),
  snapshot_seconds: z.coerce.number().nonnegative().default(0),
  after: z.string().optional(),
  up_to: z.string().optional(),
  done: whole.nonnegative().default(0),
  successful: whole.default(0),
  failed: whole.default(0),
  embeddings: whole.default(0),
  hits: whole.default(0),
  deleted: whole.default(0),
  cleaned: flag.default(false),
});

/** The part's run as its hash holds it, parsed once. */
export async function readRun(redis: RedisClient, key: string): Promise<StoredRun> {
  return parseRunHash(await redis.hgetall(key));
}

/** A run hash's fields (all strings, as HGETALL returns them) as a typed run. */
export function parseRunHash(hash: Record<string, string>): StoredRun {
  if (hash.spool_complete !== '1' || !hash.spool) {
    return hash.run ? { status: 'unspooled', spool: hash.spool } : { status: 'none' };
  }
  const parsed = runHashSchema.safeParse(hash);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    return { status: 'invalid', spool: hash.spool, problems };
  }
  const stored = parsed.data;
  return {
    status: 'spooled',
    spool: stored.spool,
    state: {
      run: stored.run,
      position: stored.snapshot,
      exact: stored.exact ?? stored.method === 'binlog-snapshot',
      method: stored.method,
      spool: stored.spool,
      spooled: stored.spooled,
      capped: stored.capped,
      snapshotSeconds: stored.snapshot_seconds,
      range:
        stored.after === undefined
          ? undefined
          : { after: stored.after, upTo: stored.up_to ? stored.up_to : undefined },
      counters: {
        done: stored.done,
        successful: stored.successful,
        failed: stored.failed,
        embeddings: stored.embeddings,
        hits: stored.hits,
        deleted: stored.deleted,
      },
      cleaned: stored.cleaned,
    },
  };
}

/** A spooled run whose state does not parse: resuming it could write at a wrong position or skip rows. */
export function invalidRunError(key: string, problems: string): DrugsyncError {
  return new DrugsyncError('CHECKPOINT_INVALID', `backfill run state ${key} is invalid: ${problems}`, {
    context: { key },
    remedy: 'run `drugsync backfill --restart` (a new snapshot; documents already loaded cost no index work)',
  });
}

/** A new run of `range` over a spooled snapshot, counters at 0. */
export function newRun(snapshot: SpooledSnapshot, range: NdcRange): RunState {
  const { seconds, ...spooled } = snapshot;
  return {
    ...spooled,
    run: crypto.randomUUID(),
    snapshotSeconds: Number(seconds.toFixed(2)),
    range: { after: range.after, upTo: range.upTo },
    counters: { done: 0, successful: 0, failed: 0, embeddings: 0, hits: 0, deleted: 0 },
    cleaned: false,
  };
}

/** Replaces the part's hash with a new run. */
export async function saveNewRun(redis: RedisClient, key: string, state: RunState): Promise<void> {
  await redis.del(key);
  await redis.hset(key, runHash(state));
}

/** A run's hash fields (what parseRunHash reads back). */
export function runHash(state: RunState): Record<string, string> {
  const { counters } = state;
  return {
    run: state.run,
    snapshot: serializePosition(state.position),
    exact: state.exact ? '1' : '0',
    method: state.method,
    spool: state.spool,
    spool_complete: '1',
    spooled: String(state.spooled),
    capped: state.capped ? '1' : '0',
    snapshot_seconds: state.snapshotSeconds.toFixed(2),
    after: state.range?.after ?? '',
    up_to: state.range?.upTo ?? '',
    done: String(counters.done),
    successful: String(counters.successful),
    failed: String(counters.failed),
    embeddings: String(counters.embeddings),
    hits: String(counters.hits),
    deleted: String(counters.deleted),
    cleaned: state.cleaned ? '1' : '0',
  };
}

/** Forgets the part's run (`--restart`). */
export async function forgetRun(redis: RedisClient, key: string): Promise<void> {
  await redis.del(key);
}

/** The counters after a window. */
export async function saveProgress(redis: RedisClient, key: string, counters: Counters): Promise<void> {
  const { done, successful, failed, embeddings, hits } = counters;
  await redis.hset(key, { done, successful, failed, embeddings, hits });
}

/** The cleanup's outcome: a resumed run does not clean again. */
export async function saveCleanup(redis: RedisClient, key: string, deleted: number): Promise<void> {
  await redis.hset(key, { deleted, cleaned: '1' });
}

/** The runs (any part, any split) that listed rows now written by `--retry-failed` count them failed no more. */
export async function forgetFixedFailures(
  deps: { redis: RedisClient; keys: Keys },
  written: readonly string[],
): Promise<void> {
  const { redis } = deps;
  const runPrefix = deps.keys.backfillRunPrefix;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const [after, upTo] = await redis.hmget(key, 'after', 'up_to');
      const range = { after: after ?? '', upTo: upTo ? upTo : undefined };
      const fixed = written.filter((ndc) => inPart(ndc, range)).length;
      if (fixed) {
        const left = await redis.hincrby(key, 'failed', -fixed);
        if (left < 0) await redis.hset(key, 'failed', 0);
      }
    }
  } while (cursor !== '0');
}
