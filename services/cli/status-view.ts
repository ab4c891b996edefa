/**
 * What `drugsync status` shows an operator: one table row per part of the pipeline (state, lag, rate,
 * checkpoint age, counts), warnings last. Pure: a StatusModel (status-model.ts) in, lines out; every age is
 * measured from the report's `collectedAt`, so the same model always draws the same table. The rows are
 * made by status-rows.ts (the pipeline) and status-job-rows.ts (the jobs), their cells by status-format.ts.
 */
import type { StatusModel } from './status-model.ts';
import { ago, count, duration } from './status-format.ts';
import type { Level, StatusRow } from './status-format.ts';
import { backfillRow, loadRows, resyncRow, tableRow } from './status-job-rows.ts';
import { binlogRow, embedderRow, kinesisRow, readerRow, redisRow } from './status-rows.ts';
import type { Thresholds } from './status-rows.ts';

export type { Level, StatusRow } from './status-format.ts';
export { bytes, count, duration, rate } from './status-format.ts';

export interface ViewOptions extends Partial<Thresholds> {
  color: boolean;
}

/**
 * A service whose status is older than this is shown stale (is it running?); the stalls are shown past
 * prod's alarm thresholds (infra/config.ts: reader-stall 120 s, embedder-stall 300 s).
 */
const DEFAULT_THRESHOLDS: Thresholds = {
  staleAfterSeconds: 120,
  readerStallSeconds: 120,
  embedderStallSeconds: 300,
};

const HEADER: StatusRow = {
  part: 'PART',
  state: 'STATE',
  level: 'info',
  lag: 'LAG',
  rate: 'RATE',
  checkpoint: 'CHECKPOINT',
  details: 'DETAILS',
};

function thresholds(o: Partial<Thresholds>): Thresholds {
  return {
    staleAfterSeconds: o.staleAfterSeconds ?? DEFAULT_THRESHOLDS.staleAfterSeconds,
    readerStallSeconds: o.readerStallSeconds ?? DEFAULT_THRESHOLDS.readerStallSeconds,
    embedderStallSeconds: o.embedderStallSeconds ?? DEFAULT_THRESHOLDS.embedderStallSeconds,
  };
}

/** The table's rows, one per part, in pipeline order (source to index, then the jobs). */
export function statusRows(model: StatusModel, o: Partial<Thresholds> = {}): StatusRow[] {
  const t = thresholds(o);
  return [
    binlogRow(model),
    readerRow(model, t),
    kinesisRow(model),
    embedderRow(model, t),
    redisRow(model),
    ...(model.backfill ? [backfillRow(model.backfill, model.report.collectedAt)] : []),
    ...loadRows(model),
    resyncRow(model),
    tableRow(model),
  ].filter((x): x is StatusRow => x !== null);
}

// ---------------------------------------------------------------- warnings

/** A running service that stopped rewriting its status, or that says it made no progress for a while. */
function silenceWarning(
  name: string,
  updatedAt: number | undefined,
  stall: { seconds: number; metric: string; threshold: number } | null,
  now: number,
  staleAfterSeconds: number,
): string | null {
  if (updatedAt !== undefined && now - updatedAt > staleAfterSeconds * 1000)
    return `${name} has not updated its status for ${duration((now - updatedAt) / 1000)}: is it running?`;
  if (stall && stall.seconds >= stall.threshold)
    return `${name} has made no progress for ${duration(stall.seconds)} (${stall.metric}): see docs/deploy.md, alarms`;
  return null;
}

function serviceWarnings(model: StatusModel, t: Thresholds): string[] {
  const { collectedAt: now, progress } = model.report;
  const reader = model.reader;
  const readerStall = progress.reader && {
    seconds: progress.reader.stallSeconds,
    metric: 'ReaderStallSeconds',
    threshold: t.readerStallSeconds,
  };
  const embedderStall = progress.embedder && {
    seconds: progress.embedder.stallSeconds,
    metric: 'EmbedderStallSeconds',
    threshold: t.embedderStallSeconds,
  };
  const out = [
    reader && silenceWarning('binlog-reader', reader.updated_at, readerStall, now, t.staleAfterSeconds),
    model.embedder &&
      silenceWarning('embedder', model.embedder.updated_at, embedderStall, now, t.staleAfterSeconds),
  ];
  if (reader?.last_error) {
    const at = ago(reader.last_error_at, now);
    out.push(`binlog-reader last error${at ? ` (${at})` : ''}: ${reader.last_error}`);
  }
  return out.filter((x): x is string => typeof x === 'string');
}

/** What needs the operator's attention, most important first. */
export function statusWarnings(model: StatusModel, o: Partial<Thresholds> = {}): string[] {
  const r = model.report;
  const out = [...r.binlog.warnings];
  if (r.kinesis.error) out.push(`kinesis: ${r.kinesis.error}`);
  out.push(...serviceWarnings(model, thresholds(o)));
  if (model.backfill?.completed === false)
    out.push('the last backfill did not complete: run it again (it resumes) or see `drugsync status --json`');
  if (model.resync?.error) out.push(`re-sync failed: ${model.resync.error}`);
  const v = r.redis.vectorIndex;
  for (const s of v?.substitutions ?? [])
    out.push(`vector index ${v?.index} built otherwise than asked: ${s}`);
  if (v?.error) out.push(`vector index ${v.index} unreadable: ${v.error}`);
  if (r.redis.deadLetters > 0)
    out.push(`${count(r.redis.deadLetters)} dead-lettered record(s): see \`drugsync dlq list\``);
  out.push(...r.problems);
  return out;
}

// ---------------------------------------------------------------- drawing

const COLORS: Record<Level, string> = { ok: '32', info: '0', warn: '33', bad: '31' };

function paint(text: string, code: string, color: boolean): string {
  return color && code !== '0' ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** Colour only when writing to a terminal and NO_COLOR is unset or empty (https://no-color.org). */
export function colorWanted(isTTY: boolean, env: Record<string, string | undefined>): boolean {
  return isTTY && !env.NO_COLOR;
}

/** The table and then the warnings, as lines (ANSI colours only with `color`). */
export function renderStatus(model: StatusModel, opts: ViewOptions): string[] {
  const rows = statusRows(model, opts);
  const cols = ['part', 'state', 'lag', 'rate', 'checkpoint'] as const;
  const width = Object.fromEntries(
    cols.map((c) => [c, Math.max(HEADER[c].length, ...rows.map((x) => x[c].length))]),
  ) as Record<(typeof cols)[number], number>;
  const line = (x: StatusRow, header: boolean): string =>
    cols
      .map((c) => {
        const cell = x[c].padEnd(width[c]);
        if (header) return paint(cell, '1', opts.color);
        return c === 'state' ? paint(cell, COLORS[x.level], opts.color) : cell;
      })
      .join('  ') +
    '  ' +
    (header ? paint(x.details, '1', opts.color) : x.details);
  const lines = [line(HEADER, true), ...rows.map((x) => line(x, false))].map((l) => l.trimEnd());
  for (const w of statusWarnings(model, opts))
    lines.push(`${paint('WARNING', COLORS.warn, opts.color)}  ${w}`);
  return lines;
}

/**
 * The escape codes that move the cursor back to the start of the previous frame and clear below it, so
 * the next frame is drawn in place (lines wider than the terminal count as the rows they wrap to).
 */
export function redrawPrefix(previousFrame: string, columns: number | undefined): string {
  const width = columns && columns > 0 ? columns : 80;
  // eslint-disable-next-line no-control-regex
  const visible = (l: string) => l.replace(/\x1b\[[0-9;]*m/g, '').length;
  const rows = previousFrame.split('\n').reduce((a, l) => a + Math.max(1, Math.ceil(visible(l) / width)), 0);
  return `\x1b[${rows}F\x1b[J`;
}
