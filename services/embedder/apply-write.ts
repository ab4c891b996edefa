/**
 * Step 5 of `applyBatch` (apply.ts): the optimistic, position-checked write. Every plan's operation is first
 * sent without a vector; the store answers 'stale', 'unchanged', 'fields_updated', 'written', 'deleted' /
 * 'tombstoned', or 'needs_embedding' (a new document or a changed text). Only those are embedded (together: the
 * embedding service deduplicates and consults its cache) and written again, once. A plan that cannot be
 * written fails: transient → its NDC's records are 'failed' (retried by the consumer), poison → dead-lettered.
 */
import { DrugsyncError } from '../core/errors.ts';
import type { StoreOp, UpsertOp } from '../core/drug-store-contract.ts';
import { setResult } from './apply-run.ts';
import type { BatchRun, Plan, WriteOutcome } from './apply-run.ts';

/** 5. Writes the plans (position-checked); 'needs_embedding' ones are embedded and written again, once. */
export async function writePlans(run: BatchRun, live: Plan[]): Promise<void> {
  let toWrite = live;
  for (let attempt = 0; attempt < 2 && toWrite.length > 0; attempt++) {
    const out = await run.deps.store.apply(toWrite.map((p) => p.op as StoreOp));
    const retry: Plan[] = [];
    const writtenAt = run.now();
    out.forEach((r, k) => {
      const p = toWrite[k] as Plan;
      if (r.outcome !== 'needs_embedding') recordOutcome(run, p, r.outcome, writtenAt);
      else if (attempt === 0) retry.push(p);
      else
        failPlan(
          run,
          p,
          new DrugsyncError('INTERNAL', 'stored text kept changing under the write; will retry', {
            context: { ndc: p.ndc, pos: p.final.event.pos },
            retryable: true,
          }),
        );
    });
    await embedInto(run, retry);
    toWrite = retry.filter((p) => p.op !== null);
  }
}

/** Counts a write's outcome and records it as the newest record's result. */
function recordOutcome(run: BatchRun, plan: Plan, outcome: WriteOutcome, writtenAt: number): void {
  const { stats } = run;
  switch (outcome) {
    case 'stale':
      stats.staleRefused++;
      break;
    case 'written':
      stats.upserted++;
      break;
    case 'fields_updated':
      stats.fieldsUpdated++;
      break;
    case 'unchanged':
      stats.unchanged++;
      break;
    case 'deleted':
    case 'tombstoned':
      stats.deleted++;
      break;
  }
  if (outcome !== 'stale') stats.latencyMs.push(Math.max(0, writtenAt - plan.final.event.ts));
  setResult(run.results, plan.final, plan.ndc, plan.final.event.pos, 'applied', outcome);
}

/** Embeds the plans' texts into their upserts; a text without a vector fails its plan. */
async function embedInto(run: BatchRun, batch: Plan[]): Promise<void> {
  if (batch.length === 0) return;
  const { stats } = run;
  const res = await run.deps.embeddings.embedTexts(batch.map((p) => p.text as string));
  stats.embeddingTexts += res.stats.texts;
  stats.embeddingsRequested += res.stats.requests;
  stats.cacheHits += res.stats.cacheHits;
  for (const p of batch) {
    const v = res.vectors.get(p.text as string);
    if (v) {
      (p.op as UpsertOp).embedding = v;
      continue;
    }
    const err =
      res.failures.get(p.text as string) ??
      new DrugsyncError('EMBEDDING_FAILED', 'embedding service returned no vector and no reason', {
        context: { ndc: p.ndc, pos: p.final.event.pos },
      });
    failPlan(run, p, withContext(err, { ndc: p.ndc, pos: p.final.event.pos }));
  }
}

/**
 * A plan that cannot be written. Transient: nothing of this NDC is applied (the consumer retries from the
 * first failed record). Poison: the newest state goes to the dead-letter queue (it supersedes the older
 * records).
 */
function failPlan(run: BatchRun, plan: Plan, err: DrugsyncError): void {
  plan.op = null;
  if (err.retryable) {
    run.stats.failed += plan.group.length;
    plan.group.forEach((d, k) =>
      setResult(
        run.results,
        d,
        plan.ndc,
        d.event.pos,
        'failed',
        k === 0 ? 'embedding_failed' : 'blocked',
        err,
      ),
    );
    return;
  }
  run.dead.push({
    record: plan.final.record,
    error: err,
    ndc: plan.ndc,
    pos: plan.final.event.pos,
    stream: run.deps.stream,
  });
  setResult(run.results, plan.final, plan.ndc, plan.final.event.pos, 'dead_lettered', 'poison', err);
}

function withContext(e: DrugsyncError, ctx: Record<string, string>): DrugsyncError {
  for (const [k, v] of Object.entries(ctx)) if (e.context[k] === undefined) e.context[k] = v;
  return e;
}
