/**
 * The rows of the jobs beside the pipeline, shown when known: the backfill, the load the embedder applies
 * (or the last one), the re-sync by difference, and table events waiting (a truncate, resyncs).
 */
import type { StatusModel } from './status-model.ts';
import { NONE, ago, agoIso, count, counts, duration, joinParts, rate, row } from './status-format.ts';
import type { StatusRow } from './status-format.ts';

type Backfill = NonNullable<StatusModel['backfill']>;

/** Rows written of the snapshot's, while a run goes: "40,000 / 98,234 rows (40%)". */
function backfillProgress(h: Backfill): string | null {
  const { done, total } = h;
  if (done === undefined || total === undefined) return null;
  return `${count(done)} / ${count(total)} rows (${total ? Math.floor((done / total) * 100) : 100}%)`;
}

export function backfillRow(h: Backfill, now: number): StatusRow {
  const s = h.last_summary ?? null;
  const state = h.completed === true ? 'completed' : h.completed === false ? 'incomplete' : 'running';
  return row('backfill', {
    state,
    level: state === 'completed' ? 'ok' : state === 'incomplete' ? 'warn' : 'info',
    rate: s ? rate(s.drugs_per_second, 'drugs') : NONE,
    checkpoint: h.updated_at !== undefined ? `updated ${ago(h.updated_at, now)}` : NONE,
    details: s
      ? joinParts([
          counts(s, [
            ['total_processed', 'processed'],
            ['successful', 'successful'],
            ['failed', 'failed'],
            ['deleted_stale', 'stale deleted'],
          ]),
          `in ${duration(s.duration_seconds)}`,
          `snapshot ${s.snapshot_position} (${s.snapshot_method})`,
          `part ${s.part}`,
        ])
      : joinParts([backfillProgress(h), counts(h, [['failed', 'failed']]), h.part && `part ${h.part}`]),
  });
}

const LOAD_COUNTS = [
  ['written', 'written'],
  ['fields_updated', 'fields updated'],
  ['unchanged', 'unchanged'],
  ['deleted', 'deleted'],
  ['stale_refused', 'stale refused'],
] as const;

export function loadRows(model: StatusModel): StatusRow[] {
  const { load: l, collectedAt: now } = model.report;
  const rows: StatusRow[] = [];
  if (l.inProgress) {
    rows.push(
      row('load', {
        state: 'in progress',
        lag: l.rowsBehind !== null ? count(l.rowsBehind, 'records') : NONE,
        rate: rate(l.eventsPerSecond, 'records'),
        checkpoint: l.startedAt ? `started ${agoIso(l.startedAt, now) ?? '?'}` : NONE,
        details: count(l.rowEvents, 'row events applied'),
      }),
    );
  }
  const last = l.last;
  if (last) {
    rows.push(
      row('last load', {
        state: 'done',
        level: 'ok',
        rate: last.seconds ? rate(last.row_events / last.seconds, 'row events') : NONE,
        checkpoint: `started ${agoIso(last.started_at, now) ?? '?'}`,
        details: joinParts([
          `${count(last.row_events, 'row events')} in ${duration(last.seconds)}`,
          counts(last, LOAD_COUNTS),
          counts(last, [
            ['names_embedded', 'names embedded'],
            ['embeddings_requested', 'embedding calls'],
            ['cache_hits', 'cache hits'],
          ]),
          counts(last, [['dead_lettered', 'dead-lettered']]),
        ]),
      }),
    );
  }
  return rows;
}

export function resyncRow(model: StatusModel): StatusRow | null {
  const x = model.resync;
  if (!x?.phase) return null;
  const finished = x.phase === 'done';
  return row('resync', {
    state: x.phase,
    level: x.error ? 'bad' : finished ? 'ok' : 'info',
    checkpoint: x.updated_at !== undefined ? `updated ${ago(x.updated_at, model.report.collectedAt)}` : NONE,
    details: joinParts([
      (x.phase === 'scan' || x.phase === 'compare') &&
        `${count(x.done ?? 0)} / ${x.total === undefined ? '?' : count(x.total)} rows`,
      x.phase === 'write' &&
        counts(x, [
          ['missing', 'missing'],
          ['extra', 'extra'],
          ['stale', 'stale'],
        ]),
      finished && x.position && `at ${x.position}`,
      finished &&
        counts(x, [
          ['source_rows', 'rows'],
          ['written', 'written'],
          ['deleted', 'deleted'],
          ['embeddings_requested', 'embedding calls'],
        ]),
      finished && x.seconds !== undefined && `in ${duration(x.seconds)}`,
    ]),
  });
}

export function tableRow(model: StatusModel): StatusRow | null {
  const t = model.report.table;
  if (!t.truncatePending && t.resyncsPending.length === 0) return null;
  return row('table', {
    state: 'pending',
    details: joinParts([
      t.truncatePending && `truncate at ${t.truncatePending}: swept once the reload has been quiet`,
      t.resyncsPending.length > 0 &&
        `${count(t.resyncsPending.length)} re-sync(s) (table replaced: ${t.resyncsPending.map((x) => x.statement).join('; ')})`,
    ]),
  });
}
