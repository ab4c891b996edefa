/**
 * The re-sync's status hash (`keys.resyncStatus`): services/embedder/resync.ts clears it
 * when a re-sync by difference starts and adds to it phase by phase (scan → compare → write → done, or
 * failed); `drugsync status` shows its progress or outcome. Only `phase` and `updated_at` are always there.
 */
import { field, statusHash } from './hash.ts';
import type { StatusOf } from './hash.ts';

/** scan / compare: the comparison with the snapshot (`done` of `total`); write: the differences; done; failed. */
export const RESYNC_PHASES = ['scan', 'compare', 'write', 'done', 'failed'] as const;

export const resyncStatus = statusHash('re-sync status', {
  phase: field.oneOf(RESYNC_PHASES),
  updated_at: field.isoTime(),
  /** the pending resync events (their positions) this re-sync handles */
  resyncs: field.list().optional(),
  started_at: field.isoTime().optional(),
  /** the comparison's progress */
  done: field.int().optional(),
  total: field.int().optional(),
  /** what the comparison found (from `write` on) */
  missing: field.int().optional(),
  extra: field.int().optional(),
  stale: field.int().optional(),
  /** the outcome (`done`): the snapshot position the re-sync reflects, what it read, wrote and cost */
  position: field.text().optional(),
  source_rows: field.int().optional(),
  redis_docs: field.int().optional(),
  in_flight: field.int().optional(),
  snapshot_method: field.text().optional(),
  written: field.int().optional(),
  deleted: field.int().optional(),
  refused: field.int().optional(),
  names_embedded: field.int().optional(),
  embeddings_requested: field.int().optional(),
  cache_hits: field.int().optional(),
  seconds: field.number().optional(),
  finished_at: field.isoTime().optional(),
  /** why it failed (`failed`): `CODE: message` */
  error: field.text().optional(),
});

export type ResyncStatus = StatusOf<typeof resyncStatus>;
