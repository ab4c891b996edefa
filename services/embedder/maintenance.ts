/**
 * The table state's periodic work (`runMaintenance`), run by the consumer between batches: starts pending
 * re-syncs (resync.ts) and sweeps a pending truncate once the reload has settled. `applyBatch` (apply.ts) only
 * records table events; this is where they take effect.
 */
import type { SourcePosition } from '../core/position.ts';
import type { ApplyDeps } from './apply-run.ts';

export interface MaintenanceResult {
  truncatePending: SourcePosition | null;
  swept: SourcePosition | null;
  sweepResult?: unknown;
  resyncsPending: number;
}

/**
 * Periodic work the consumer runs between batches: starts pending re-syncs, and sweeps a pending truncate
 * once no row event has been applied for the quiet period. Safe to run from several processes at once (the
 * sweep is idempotent).
 */
export async function runMaintenance(deps: ApplyDeps): Promise<MaintenanceResult> {
  const now = (deps.now ?? Date.now)();
  const quiet = deps.truncateQuietMs ?? 10_000;
  const st = await deps.tableState.read();
  const t = st.truncate;
  const base: MaintenanceResult = {
    truncatePending: t?.pos ?? null,
    swept: null,
    resyncsPending: st.resyncs.length,
  };
  if (st.resyncs.length > 0) deps.resync?.kick(st.resyncs);
  if (!t) return base;
  const quietFor = now - Math.max(t.seenAt, t.lastRowAt);
  if (quietFor < quiet) return base;
  if (typeof deps.store.sweepOlderThan !== 'function') {
    deps.log.warn('truncate pending but this store cannot sweep yet; documents older than it stay', {
      pos: t.pos,
    });
    return base;
  }
  const source = deps.source;
  if (source && !(await source.hasRows())) {
    const waited = now - t.seenAt;
    const maxWait = deps.truncateEmptyWaitMs ?? 600_000;
    if (waited < maxWait) return base; // the reload has not committed anything yet: keep everything
    deps.log.warn('the table is still empty after the truncate: sweeping every document older than it', {
      pos: t.pos,
      waited_ms: waited,
    });
  }
  const sweepResult = await deps.store.sweepOlderThan(
    t.pos,
    source ? { inSource: (ndcs) => source.present(ndcs) } : {},
  );
  await deps.tableState.completeTruncate(t.pos);
  deps.log.info('truncate settled: swept documents not rewritten since it', {
    pos: t.pos,
    quiet_ms: quietFor,
    shards_seen: t.shards,
    result: sweepResult,
  });
  return { truncatePending: null, swept: t.pos, sweepResult, resyncsPending: st.resyncs.length };
}
