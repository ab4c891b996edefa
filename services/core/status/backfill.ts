/**
 * The backfill's status hash (`keys.serviceStatus('backfill')`), written by services/backfill in two steps:
 * after each window its progress (`part`, `done`, `total`, `failed`, `snapshot`), and when a run ends
 * `completed` and `last_summary` (the run's summary, as the command prints it with --json). The fields of
 * both steps are optional: a hash holds what the runs so far wrote. Read by `drugsync status`.
 */
import { z } from 'zod';
import { field, statusHash } from './hash.ts';
import type { StatusOf } from './hash.ts';

/** What a backfill run did (services/backfill's `BackfillSummary`). */
export const backfillSummarySchema = z.object({
  total_processed: z.number().int(),
  successful: z.number().int(),
  failed: z.number().int(),
  duration_seconds: z.number(),
  drugs_per_second: z.number(),
  completed: z.boolean(),
  embeddings_requested: z.number().int(),
  embedding_cache_hits: z.number().int(),
  snapshot_position: z.string(),
  deleted_stale: z.number().int(),
  /** `i/n` */
  part: z.string(),
  resumed: z.boolean(),
  dry_run: z.boolean(),
  /** 'binlog-snapshot' (exact, MariaDB) or 'table-lock' (lower bound, MySQL 8 / Aurora) */
  snapshot_method: z.string(),
  eligible_in_snapshot: z.number().int(),
  /** seconds the MySQL snapshot transaction was open (reading and spooling rows only) */
  snapshot_seconds: z.number(),
});

export type BackfillRunSummary = z.output<typeof backfillSummarySchema>;

export const backfillStatus = statusHash('backfill status', {
  updated_at: field.isoTime(),
  /** the part of the table (`i/n`) the last window or run was about */
  part: field.text().optional(),
  /** eligible rows written so far, of `total` in the snapshot */
  done: field.int().optional(),
  total: field.int().optional(),
  failed: field.int().optional(),
  /** the snapshot position (`file:pos`) */
  snapshot: field.text().optional(),
  /** written when a run ends: whether every eligible row of its part landed */
  completed: field.trueFalse().optional(),
  last_summary: field.orEmpty(field.json(backfillSummarySchema)).optional(),
});

export type BackfillStatus = StatusOf<typeof backfillStatus>;
