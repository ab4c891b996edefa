/**
 * What `drugsync status` shows an operator: one table row per part of the pipeline (state, lag, rate,
 * checkpoint age, counts), warnings last. Pure: a StatusReport in, lines out; every age is measured from
 * the report's `collectedAt`, so the same report always draws the same table.
 */
import type { BinlogPosition } from '../core/position.ts';
import type { StatusReport } from './status.ts';

export type Level = 'ok' | 'info' | 'warn' | 'bad';

export interface StatusRow {
  part: string;
  state: string;
  level: Level;
  lag: string;
  rate: string;
  /** the position or time the part last checkpointed, and how long ago */
  checkpoint: string;
  details: string;
}

export interface ViewOptions {
  color: boolean;
  /** a service whose status hash is older than this is shown stale (is it running?) */
  staleAfterSeconds?: number;
}

const DEFAULT_STALE_AFTER_SECONDS = 120;
const NONE = '—';
const HEADER: StatusRow = {
  part: 'PART',
  state: 'STATE',
  level: 'info',
  lag: 'LAG',
  rate: 'RATE',
  checkpoint: 'CHECKPOINT',
  details: 'DETAILS',
};

// ---------------------------------------------------------------- formats

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** 12,345 (no fraction); `unit` appended with a space. */
export function count(n: number, unit?: string): string {
  const text = intFormat.format(n);
  return unit ? `${text} ${unit}` : text;
}

/** 1,234 events/s; one decimal below 10 (0.4 events/s). */
export function rate(perSecond: number, unit: string): string {
  return `${(perSecond < 10 ? oneDecimal : intFormat).format(perSecond)} ${unit}/s`;
}

/** 512 B, 12.3 KiB, 4.5 MiB, 1.2 GiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${intFormat.format(v)} B` : `${oneDecimal.format(v)} ${units[u]}`;
}

/** 0.4 s, 42 s, 3 min 12 s, 5 h 3 min, 2 d 4 h. */
export function duration(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 10) return `${oneDecimal.format(s)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small ? `${count(big)} ${bigUnit} ${small} ${smallUnit}` : `${count(big)} ${bigUnit}`;
  if (s < 3600) return pair(Math.floor(s / 60), 'min', Math.floor(s % 60), 's');
  if (s < 86400) return pair(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min');
  return pair(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h');
}

/** How long before `now` the time `atMs` was ("3 s ago"); null when unknown. */
function ago(atMs: number | null, now: number): string | null {
  return atMs === null ? null : `${duration((now - atMs) / 1000)} ago`;
}

function position(p: BinlogPosition | null): string {
  return p ? `${p.file}:${p.pos}` : NONE;
}

/** A number field of a status hash; null when absent or not a number. */
function num(h: Record<string, string> | Record<string, unknown>, key: string): number | null {
  const v = h[key];
  if (v === undefined || v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** A time field (ms since the epoch or an ISO date) as ms; null when absent or unreadable. */
function timeOf(v: unknown): number | null {
  if (typeof v !== 'string' || v === '') return null;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  return Number.isFinite(n) ? n : null;
}

/** The labelled counts that are known, joined: "12 written, 3 deleted". */
function counts(h: Record<string, unknown>, fields: readonly (readonly [string, string])[]): string {
  return fields
    .map(([key, label]) => [num(h, key), label] as const)
    .filter((x): x is readonly [number, string] => x[0] !== null)
    .map(([n, label]) => `${count(n)} ${label}`)
    .join(', ');
}

function joinParts(parts: readonly (string | null | false | undefined)[]): string {
  return parts.filter((x): x is string => typeof x === 'string' && x !== '').join(' · ');
}

// ---------------------------------------------------------------- rows

function row(part: string, over: Partial<StatusRow>): StatusRow {
  return { part, state: NONE, level: 'info', lag: NONE, rate: NONE, checkpoint: NONE, details: '', ...over };
}

function binlogRow(r: StatusReport): StatusRow {
  const b = r.binlog;
  const retention =
    b.retentionSeconds === null
      ? 'retention unlimited or unknown'
      : `retention ${duration(b.retentionSeconds)}` +
        (b.retentionLeftSeconds !== null
          ? `, ${duration(b.retentionLeftSeconds)} left for the checkpoint`
          : '');
  const [state, level]: [string, Level] =
    b.server === null
      ? ['no binlog', 'bad']
      : b.checkpointFilePresent === false
        ? ['purged', 'bad']
        : ['ok', 'ok'];
  return row('binlog', {
    state,
    level,
    details: joinParts([
      `server ${position(b.server)}`,
      retention,
      b.snapshot && `snapshot ${position(b.snapshot)}`,
      r.redis.eligibleRows !== null && count(r.redis.eligibleRows, 'eligible rows'),
    ]),
  });
}

/** A service's state from its hash: stale when its hash was not updated for a while. */
function serviceState(
  h: Record<string, string> | undefined,
  state: string,
  level: Level,
  now: number,
  staleAfterSeconds: number,
): Pick<StatusRow, 'state' | 'level'> {
  if (!h) return { state: 'no status', level: 'warn' };
  const updated = timeOf(h.updated_at);
  if (updated !== null && now - updated > staleAfterSeconds * 1000)
    return { state: `${state}, stale`, level: 'warn' };
  return { state, level };
}

const READER_LEVELS: Record<string, Level> = {
  streaming: 'ok',
  starting: 'info',
  'waiting-lease': 'info',
  backoff: 'warn',
  stopping: 'warn',
  stopped: 'warn',
  failed: 'bad',
};

function readerRow(r: StatusReport, now: number, staleAfter: number): StatusRow {
  const h = r.services['binlog-reader'];
  const b = r.binlog;
  const st = h?.state ?? 'unknown';
  const commitAt = timeOf(h?.checkpoint_commit_ts ?? h?.last_commit_ts);
  const lag = [
    b.behindBytes !== null && bytes(b.behindBytes),
    b.behindSeconds !== null && duration(b.behindSeconds),
  ];
  const events = num(h ?? {}, 'events_per_sec');
  const tx = num(h ?? {}, 'tx_per_sec');
  return row('binlog-reader', {
    ...serviceState(h, st, READER_LEVELS[st] ?? 'info', now, staleAfter),
    lag: joinParts(lag) || NONE,
    rate: joinParts([events !== null && rate(events, 'events'), tx !== null && rate(tx, 'tx')]) || NONE,
    checkpoint: b.checkpoint
      ? `${position(b.checkpoint)}${commitAt !== null ? `, commit ${ago(commitAt, now)}` : ''}`
      : NONE,
    details: h
      ? joinParts([
          counts(h, [
            ['events_total', 'events'],
            ['tx_total', 'transactions'],
          ]),
          counts(h, [['queue_records', 'records queued']]),
          num(h, 'put_latency_ms') !== null && `put ${oneDecimal.format(num(h, 'put_latency_ms') ?? 0)} ms`,
          counts(h, [
            ['put_retried_records', 'records retried'],
            ['restarts', 'restarts'],
          ]),
          h.lease_holder && `lease held by ${h.lease_holder}`,
          h.updated_at && `updated ${ago(timeOf(h.updated_at), now)}`,
        ])
      : 'no status hash: has the binlog reader run?',
  });
}

function kinesisRow(r: StatusReport): StatusRow {
  const k = r.kinesis;
  if (k.error) return row('kinesis', { state: 'error', level: 'bad', details: `stream ${k.stream}` });
  const known = k.shards.every((s) => s.lagRecords !== null);
  const total = k.shards.reduce((a, s) => a + (s.lagRecords ?? 0), 0);
  const bounded = k.shards.some((s) => s.lagBounded);
  const behind = k.shards.filter((s) => (s.lagRecords ?? 0) > 0);
  const open = k.shards.filter((s) => s.open).length;
  return row('kinesis', {
    state: k.shards.length ? 'ok' : 'no shards',
    level: k.shards.length ? 'ok' : 'warn',
    lag: known ? `${bounded ? '≥ ' : ''}${count(total, 'records')}` : NONE,
    details: joinParts([
      `stream ${k.stream}`,
      `${count(k.shards.length)} shards (${count(open)} open)`,
      behind.length === 0
        ? 'all caught up'
        : behind
            .slice(0, 4)
            .map((s) => `${s.shardId} ${s.lagBounded ? '≥ ' : ''}${count(s.lagRecords ?? 0)} behind`)
            .join(', ') + (behind.length > 4 ? `, ${behind.length - 4} more` : ''),
    ]),
  });
}

const EMBEDDER_COUNTS = [
  ['records', 'records'],
  ['upserted', 'written'],
  ['fields_updated', 'fields updated'],
  ['unchanged', 'unchanged'],
  ['deleted', 'deleted'],
  ['stale_refused', 'stale refused'],
] as const;

function embedderRow(r: StatusReport, now: number, staleAfter: number): StatusRow {
  const h = r.services.embedder;
  const perSec = num(h ?? {}, 'records_per_sec');
  const st = r.load.inProgress ? 'loading' : perSec ? 'applying' : 'idle';
  const p50 = num(h ?? {}, 'latency_p50_ms');
  const p99 = num(h ?? {}, 'latency_p99_ms');
  return row('embedder', {
    ...serviceState(h, st, 'ok', now, staleAfter),
    lag: r.load.rowsBehind !== null ? count(r.load.rowsBehind, 'records') : NONE,
    rate: perSec !== null ? rate(perSec, 'records') : NONE,
    checkpoint: h?.updated_at ? `updated ${ago(timeOf(h.updated_at), now)}` : NONE,
    details: h
      ? joinParts([
          counts(h, EMBEDDER_COUNTS),
          counts(h, [
            ['embeddings_requested', 'embedding calls'],
            ['cache_hits', 'cache hits'],
          ]),
          counts(h, [
            ['dead_lettered', 'dead-lettered'],
            ['failed', 'failed'],
          ]),
          p50 !== null && p99 !== null && `latency p50 ${count(p50)} ms, p99 ${count(p99)} ms`,
        ])
      : 'no status hash: has the embedder run?',
  });
}

/** "vector HNSW", "vector SVS-VAMANA GlobalSQ8 (LeanVec4x8 asked)": the index as the server built it. */
function vectorDetail(v: StatusReport['redis']['vectorIndex']): string | null {
  if (!v?.built) return null;
  const asked = v.asked?.compression;
  const built = v.built.compression;
  return `vector ${v.built.algorithm ?? 'unreported'}${built ? ` ${built}` : ''}${asked && asked !== built ? ` (${asked} asked)` : ''}`;
}

function redisRow(r: StatusReport): StatusRow {
  const x = r.redis;
  const diff = x.documents !== null && x.eligibleRows !== null ? x.documents - x.eligibleRows : null;
  return row('redis', {
    state: diff === null ? 'unknown' : diff === 0 ? 'in sync' : 'differs',
    level: diff === 0 ? 'ok' : 'warn',
    lag: diff ? count(Math.abs(diff), diff < 0 ? 'documents missing' : 'documents extra') : NONE,
    details: joinParts([
      `${x.documents === null ? '?' : count(x.documents)} documents / ${x.eligibleRows === null ? '?' : count(x.eligibleRows)} eligible rows`,
      count(x.embeddingCache, 'cached embeddings'),
      count(x.deadLetters, 'dead letters'),
      vectorDetail(x.vectorIndex),
    ]),
  });
}

function parseJson(text: string | undefined): Record<string, unknown> | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function backfillRow(h: Record<string, string>, now: number): StatusRow {
  const s = parseJson(h.last_summary);
  const state = h.completed === 'true' ? 'completed' : h.completed === 'false' ? 'incomplete' : 'running';
  const done = num(h, 'done');
  const total = num(h, 'total');
  const progress =
    done !== null && total !== null
      ? `${count(done)} / ${count(total)} rows (${total ? Math.floor((done / total) * 100) : 100}%)`
      : null;
  const perSec = s ? num(s, 'drugs_per_second') : null;
  const seconds = s ? num(s, 'duration_seconds') : null;
  return row('backfill', {
    state,
    level: state === 'completed' ? 'ok' : state === 'incomplete' ? 'warn' : 'info',
    rate: perSec !== null ? rate(perSec, 'drugs') : NONE,
    checkpoint: h.updated_at ? `updated ${ago(timeOf(h.updated_at), now)}` : NONE,
    details: s
      ? joinParts([
          counts(s, [
            ['total_processed', 'processed'],
            ['successful', 'successful'],
            ['failed', 'failed'],
            ['deleted_stale', 'stale deleted'],
          ]),
          seconds !== null && `in ${duration(seconds)}`,
          typeof s.snapshot_position === 'string' &&
            `snapshot ${s.snapshot_position} (${String(s.snapshot_method)})`,
          typeof s.part === 'string' && `part ${s.part}`,
        ])
      : joinParts([progress, counts(h, [['failed', 'failed']]), h.part && `part ${h.part}`]),
  });
}

const LOAD_COUNTS = [
  ['written', 'written'],
  ['fields_updated', 'fields updated'],
  ['unchanged', 'unchanged'],
  ['deleted', 'deleted'],
  ['stale_refused', 'stale refused'],
] as const;

function loadRows(r: StatusReport, now: number): StatusRow[] {
  const l = r.load;
  const rows: StatusRow[] = [];
  if (l.inProgress) {
    rows.push(
      row('load', {
        state: 'in progress',
        lag: l.rowsBehind !== null ? count(l.rowsBehind, 'records') : NONE,
        rate: rate(l.eventsPerSecond, 'records'),
        checkpoint: l.startedAt ? `started ${ago(timeOf(l.startedAt), now)}` : NONE,
        details: count(l.rowEvents, 'row events applied'),
      }),
    );
  }
  const last = l.last;
  if (last) {
    const rowEvents = num(last, 'row_events');
    const seconds = num(last, 'seconds');
    rows.push(
      row('last load', {
        state: 'done',
        level: 'ok',
        rate: rowEvents !== null && seconds ? rate(rowEvents / seconds, 'row events') : NONE,
        checkpoint: `started ${ago(timeOf(last.started_at), now) ?? '?'}`,
        details: joinParts([
          `${count(rowEvents ?? 0, 'row events')}${seconds !== null ? ` in ${duration(seconds)}` : ''}`,
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

function resyncRow(t: StatusReport['table'], now: number): StatusRow | null {
  const x = t.resync;
  if (!x.phase) return null;
  const done = num(x, 'done');
  const total = num(x, 'total');
  const seconds = num(x, 'seconds');
  const finished = x.phase === 'done';
  return row('resync', {
    state: x.phase,
    level: x.error ? 'bad' : finished ? 'ok' : 'info',
    checkpoint: x.updated_at ? `updated ${ago(timeOf(x.updated_at), now)}` : NONE,
    details: joinParts([
      (x.phase === 'scan' || x.phase === 'compare') &&
        `${count(done ?? 0)} / ${total === null ? '?' : count(total)} rows`,
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
      finished && seconds !== null && `in ${duration(seconds)}`,
    ]),
  });
}

function tableRow(t: StatusReport['table']): StatusRow | null {
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

/** The table's rows, one per part, in pipeline order (source to index, then the jobs). */
export function statusRows(r: StatusReport, o: Pick<ViewOptions, 'staleAfterSeconds'> = {}): StatusRow[] {
  const now = r.collectedAt;
  const stale = o.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS;
  const backfill = r.services.backfill;
  return [
    binlogRow(r),
    readerRow(r, now, stale),
    kinesisRow(r),
    embedderRow(r, now, stale),
    redisRow(r),
    ...(backfill ? [backfillRow(backfill, now)] : []),
    ...loadRows(r, now),
    resyncRow(r.table, now),
    tableRow(r.table),
  ].filter((x): x is StatusRow => x !== null);
}

// ---------------------------------------------------------------- warnings

function serviceWarnings(r: StatusReport, staleAfterSeconds: number): string[] {
  const out: string[] = [];
  for (const [svc, h] of Object.entries(r.services)) {
    const updated = timeOf(h.updated_at);
    if (svc !== 'backfill' && updated !== null && r.collectedAt - updated > staleAfterSeconds * 1000)
      out.push(
        `${svc} has not updated its status for ${duration((r.collectedAt - updated) / 1000)}: is it running?`,
      );
    if (h.last_error) {
      const at = ago(timeOf(h.last_error_at), r.collectedAt);
      out.push(`${svc} last error${at ? ` (${at})` : ''}: ${h.last_error}`);
    }
  }
  return out;
}

/** What needs the operator's attention, most important first. */
export function statusWarnings(r: StatusReport, o: Pick<ViewOptions, 'staleAfterSeconds'> = {}): string[] {
  const out = [...r.binlog.warnings];
  if (r.kinesis.error) out.push(`kinesis: ${r.kinesis.error}`);
  out.push(...serviceWarnings(r, o.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS));
  if (r.services.backfill?.completed === 'false')
    out.push('the last backfill did not complete: run it again (it resumes) or see `drugsync status --json`');
  if (r.table.resync.error) out.push(`re-sync failed: ${r.table.resync.error}`);
  const v = r.redis.vectorIndex;
  for (const s of v?.substitutions ?? [])
    out.push(`vector index ${v?.index} built otherwise than asked: ${s}`);
  if (v?.error) out.push(`vector index ${v.index} unreadable: ${v.error}`);
  if (r.redis.deadLetters > 0)
    out.push(`${count(r.redis.deadLetters)} dead-lettered record(s): see \`drugsync dlq list\``);
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
export function renderStatus(r: StatusReport, o: ViewOptions): string[] {
  const rows = statusRows(r, o);
  const cols = ['part', 'state', 'lag', 'rate', 'checkpoint'] as const;
  const width = Object.fromEntries(
    cols.map((c) => [c, Math.max(HEADER[c].length, ...rows.map((x) => x[c].length))]),
  ) as Record<(typeof cols)[number], number>;
  const line = (x: StatusRow, header: boolean): string =>
    cols
      .map((c) => {
        const cell = x[c].padEnd(width[c]);
        if (header) return paint(cell, '1', o.color);
        return c === 'state' ? paint(cell, COLORS[x.level], o.color) : cell;
      })
      .join('  ') +
    '  ' +
    (header ? paint(x.details, '1', o.color) : x.details);
  const lines = [line(HEADER, true), ...rows.map((x) => line(x, false))].map((l) => l.trimEnd());
  for (const w of statusWarnings(r, o)) lines.push(`${paint('WARNING', COLORS.warn, o.color)}  ${w}`);
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
