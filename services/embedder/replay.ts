/**
 * `drugsync dlq replay`: re-applies dead-lettered records through `applyBatch` (so the position rule still
 * holds: a letter older than what Redis reflects is refused as stale, which also counts as done). A letter
 * is removed only once its record is applied; one that fails again stays where it is (it is not written a
 * second time) and is reported with its new error.
 */
import type { DrugsyncError } from '../core/errors.ts';
import { applyBatch } from './apply.ts';
import type { ApplyDeps } from './apply.ts';
import { deadLetterRecord } from './dlq.ts';
import type { DeadLetter, DeadLetterInput, DeadLetterQueue } from './dlq.ts';
import type { BatchStats, RecordResult } from './types.ts';

export interface ReplayOutcome {
  letter: DeadLetter;
  result: RecordResult;
  removed: boolean;
  error?: DrugsyncError | undefined;
}

export interface ReplayReport {
  considered: number;
  applied: number;
  removed: number;
  stillFailing: number;
  outcomes: ReplayOutcome[];
  stats: BatchStats | null;
}

/** Keeps letters of a replay from being queued again (the original letter stays until applied). */
function capturingQueue(inner: DeadLetterQueue): DeadLetterQueue & { captured: DeadLetterInput[] } {
  const captured: DeadLetterInput[] = [];
  return {
    kind: inner.kind,
    captured,
    async put(entries) {
      captured.push(...entries);
    },
    list: (limit) => inner.list(limit),
    remove: (ids) => inner.remove(ids),
  };
}

export async function replayDeadLetters(
  deps: ApplyDeps,
  opts: { ids?: readonly string[]; limit?: number } = {},
): Promise<ReplayReport> {
  const all = await deps.dlq.list(opts.limit ?? 10_000);
  const wanted = opts.ids && opts.ids.length > 0 ? new Set(opts.ids) : null;
  const letters = wanted ? all.filter((l) => wanted.has(l.id)) : all;
  const report: ReplayReport = {
    considered: letters.length,
    applied: 0,
    removed: 0,
    stillFailing: 0,
    outcomes: [],
    stats: null,
  };
  if (letters.length === 0) return report;
  const queue = capturingQueue(deps.dlq);
  // Replayed in the order they were dead-lettered; applyBatch orders each NDC's changes by position.
  const { results, stats } = await applyBatch(letters.map(deadLetterRecord), { ...deps, dlq: queue });
  report.stats = stats;
  const done: string[] = [];
  letters.forEach((letter, i) => {
    const result = results[i] as RecordResult;
    const ok = result.status === 'applied';
    if (ok) {
      report.applied++;
      done.push(letter.id);
    } else report.stillFailing++;
    report.outcomes.push({ letter, result, removed: ok, error: result.error });
  });
  report.removed = await deps.dlq.remove(done);
  return report;
}
