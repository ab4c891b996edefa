/**
 * `drugsync verify [--repair] [--json]`: proves Redis equals MySQL.
 *
 * 1. Opens a consistent snapshot of the source table (./snapshot.ts, method SNAPSHOT_METHOD) and its binlog
 *    position P: exact (binlog-snapshot) or a sound lower bound (table-lock: a change the snapshot shows may
 *    be after P; the stream replays it, so a repair written at P never overwrites it for good).
 * 2. Scans every `drug:*` document (fields only, plus the vector's length) and its bookkeeping, keeping a
 *    content hash per NDC (~150 bytes an NDC: ~75 MB for the full catalogue; the vectors are never loaded).
 * 3. Streams the snapshot's rows by keyset pages and compares each eligible row's mapped content with the
 *    document: missing, stale (fields differ, or the vector is not the current model's embedding of the
 *    name), and, for documents left over, extra.
 * Differences whose Redis side already reflects a change newer than P (a document or tombstone recorded at a
 * later position) are changes in flight, reported apart and not counted as mismatches.
 *
 * `--repair` re-syncs exactly the differing NDCs through the position-checked store at P (so nothing newer
 * is overwritten), embedding through the cache, then verifies again and reports that second result.
 */
import type { RedisClient } from './clients/redis.ts';
import type { MysqlPool } from './clients/mysql.ts';
import type { Keys } from './keys.ts';
import type { Logger } from './log.ts';
import { createProgress } from './progress.ts';
import { FIELD_ORDER, contentHash, embeddingText, mapRow, textHash } from './mapping.ts';
import type { DrugFields, EmbeddingIdentity } from './mapping.ts';
import { snapshotSourcePosition } from './position.ts';
import type { SourcePosition } from './position.ts';
import { openSnapshot } from './snapshot.ts';
import type { SnapshotMethod } from './snapshot.ts';
import type { RedisDrugStore } from './redis/drug-store.ts';
import type { EmbeddingService } from './embedding/types.ts';
import { upsertOp } from './drug-store-contract.ts';
import type { StoreOp } from './drug-store-contract.ts';
import { DrugsyncError } from './errors.ts';
import { quoteTable } from './sql.ts';

export interface VerifyReport {
  source_rows: number;
  redis_docs: number;
  missing: number;
  extra: number;
  stale: number;
  in_flight: number;
  ok: boolean;
  snapshot_position: string;
  /** how the snapshot found its position: 'binlog-snapshot' (exact) or 'table-lock' (lower bound) */
  snapshot_method: string;
  examples: { missing: string[]; extra: string[]; stale: string[] };
  seconds: number;
}

export interface VerifyDeps {
  mysql: MysqlPool;
  redis: RedisClient;
  keys: Keys;
  store: RedisDrugStore;
  embeddings: EmbeddingService;
  schema: string;
  table: string;
  log: Logger;
  /** SNAPSHOT_METHOD from the caller's configuration */
  snapshotMethod: SnapshotMethod;
}

const FIELD_PATHS = FIELD_ORDER;

export interface RedisSide {
  hash: string;
  pos: string | null;
}

/** Content hash of a stored document as the mapping would compute it, or a marker when its vector is off. */
function storedHash(
  doc: Record<string, unknown[]>,
  vectorLength: number,
  meta: (string | null)[],
  id: EmbeddingIdentity,
): string {
  const f = Object.fromEntries(FIELD_PATHS.map((k) => [k, doc[`$.${k}`]?.[0]])) as unknown as DrugFields;
  const [, t] = meta;
  // The vector must be the current model's embedding of the current name, of the right size.
  if (vectorLength !== id.dimensions || t !== textHash(embeddingText(f), id)) return 'vector-mismatch';
  return contentHash(f, id);
}

/**
 * One SCAN step over the documents with the position and content hash each one's bookkeeping recorded,
 * read in the server: `[cursor, records]`, records joined by NUL, each `p h ndc` ('' where absent; the NDC
 * last, so only a NUL inside an NDC could break a record, and the parser refuses that). A pipelined HMGET
 * per document costs the client ~15 µs each (ioredis builds a command and a promise per call: ~7 s of CPU
 * for the full catalogue, the re-sync's largest part); this costs ~2 s. The meta keys are built from ARGV
 * (not declared in KEYS): like the SCAN itself, this needs a standalone Redis, as every drugsync Redis is.
 */
const SCAN_META_LUA = `local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = {}
local n = #ARGV[4]
for i, k in ipairs(r[2]) do
  local ndc = string.sub(k, n + 1)
  local m = redis.call('HMGET', ARGV[5] .. ndc, 'p', 'h')
  out[i] = (m[1] or '') .. ' ' .. (m[2] or '') .. ' ' .. ndc
end
return {r[1], table.concat(out, '\\0')}`;

/** Keys one SCAN step visits: ~8 ms of server time per call with the script. */
const SCAN_COUNT = 1000;

/** Parses the records of one SCAN_META_LUA step into `out`. */
export function parseRecordedHashes(records: string, out: Map<string, RedisSide>): void {
  if (!records) return;
  for (const rec of records.split('\0')) {
    const a = rec.indexOf(' ');
    const b = rec.indexOf(' ', a + 1);
    if (a < 0 || b < 0) {
      throw new DrugsyncError('INTERNAL', 'unreadable bookkeeping record from the Redis scan', {
        context: { record: rec.slice(0, 80) },
        remedy: 'a document key holds a NUL byte: remove it, then run the re-sync again',
      });
    }
    out.set(rec.slice(b + 1), {
      pos: rec.slice(0, a) || null,
      hash: rec.slice(a + 1, b) || 'no-bookkeeping',
    });
  }
}

/** Every document's recorded content hash and position, without reading a document (re-sync). */
async function scanRecordedHashes(
  deps: VerifyDeps,
  onProgress: (n: number) => void,
): Promise<Map<string, RedisSide>> {
  const out = new Map<string, RedisSide>();
  const { docPrefix, metaPrefix } = deps.keys;
  let cursor = '0';
  do {
    const [next, records] = (await deps.redis.eval(
      SCAN_META_LUA,
      0,
      cursor,
      `${docPrefix}*`,
      SCAN_COUNT,
      docPrefix,
      metaPrefix,
    )) as [string, string];
    cursor = String(next);
    parseRecordedHashes(records, out);
    onProgress(out.size);
  } while (cursor !== '0');
  return out;
}

async function scanRedis(
  deps: VerifyDeps,
  id: EmbeddingIdentity,
  onProgress: (n: number) => void,
  trustMeta = false,
): Promise<Map<string, RedisSide>> {
  // the content hash recorded at the last write stands for the document (no JSON read)
  if (trustMeta) return scanRecordedHashes(deps, onProgress);
  const out = new Map<string, RedisSide>();
  let cursor = '0';
  do {
    const [next, found] = await deps.redis.scan(cursor, 'MATCH', `${deps.keys.docPrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (!found.length) continue;
    const pipe = deps.redis.pipeline();
    for (const k of found) {
      pipe.call('JSON.GET', k, ...FIELD_PATHS.map((p) => `$.${p}`));
      pipe.call('JSON.ARRLEN', k, '$.embedding');
      pipe.hmget(deps.keys.meta(k.slice(deps.keys.docPrefix.length)), 'p', 't');
    }
    const replies = (await pipe.exec()) ?? [];
    found.forEach((k, i) => {
      const [e1, raw] = replies[i * 3] ?? [];
      const [, len] = replies[i * 3 + 1] ?? [];
      const [, meta] = replies[i * 3 + 2] ?? [];
      const ndc = k.slice(deps.keys.docPrefix.length);
      if (e1 || typeof raw !== 'string') {
        out.set(ndc, { hash: 'unreadable', pos: null });
        return;
      }
      const m = (meta as (string | null)[]) ?? [null, null];
      const vlen = Array.isArray(len) ? Number(len[0] ?? -1) : -1;
      out.set(ndc, {
        hash: storedHash(JSON.parse(raw) as Record<string, unknown[]>, vlen, m, id),
        pos: m[0] ?? null,
      });
    });
    onProgress(out.size);
  } while (cursor !== '0');
  return out;
}

export interface VerifyOptions {
  /** keep the mapped rows of the differing NDCs (for `repair`) */
  repair: boolean;
  /** called as the comparison advances: phase, items done, total expected */
  onProgress?: (phase: 'scan' | 'compare', done: number, total: number) => void;
  /** stops between pages with an ABORTED error */
  signal?: AbortSignal;
  /**
   * Compare with the content hash each document's bookkeeping recorded when drugsync wrote it, without
   * reading the documents (re-sync: ~3× faster; a document edited by hand is only caught by `verify`).
   */
  trustMeta?: boolean;
}

function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted)
    throw new DrugsyncError('ABORTED', `${what} stopped before it finished`, {
      remedy: 'nothing was lost: the comparison runs again from the start next time',
    });
}

export async function verifyOnce(
  deps: VerifyDeps,
  opts: VerifyOptions,
): Promise<{ report: VerifyReport; diff: Diff }> {
  const t0 = Date.now();
  const { schema, table, log } = deps;
  const id = { model: deps.embeddings.model, dimensions: deps.embeddings.dimensions };
  const snap = await openSnapshot(deps.mysql, { method: deps.snapshotMethod, schema, table });
  const P: SourcePosition = snapshotSourcePosition(snap.position);
  const diff: Diff = { missing: [], extra: [], stale: [], rows: new Map(), inFlight: 0, P };
  let sourceRows = 0;
  let redisDocs: number;
  try {
    const total = Number(
      (await deps.mysql.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${quoteTable(schema, table)}`))[0]
        ?.n ?? 0,
    );
    const scanProgress = createProgress({ label: 'verify: scan Redis', total: total, unit: 'docs', log });
    const redisSide = await scanRedis(
      deps,
      id,
      (n) => {
        scanProgress.update(n);
        opts.onProgress?.('scan', n, total);
        checkAbort(opts.signal, 'the Redis scan');
      },
      opts.trustMeta,
    );
    scanProgress.stop();
    redisDocs = redisSide.size;
    const progress = createProgress({ label: 'verify: compare with MySQL', total, unit: 'rows', log });
    let seen = 0;
    for await (const page of snap.rows({ schema, table, pageSize: 5_000 })) {
      for (const row of page) {
        seen++;
        const f = mapRow(row);
        if (!f) continue;
        sourceRows++;
        const r = redisSide.get(f.ndc);
        if (!r) {
          diff.missing.push(f.ndc);
          if (opts.repair) diff.rows.set(f.ndc, f);
          continue;
        }
        redisSide.delete(f.ndc);
        if (r.hash !== contentHash(f, id)) {
          if (r.pos !== null && r.pos > P) diff.inFlight++;
          else {
            diff.stale.push(f.ndc);
            if (opts.repair) diff.rows.set(f.ndc, f);
          }
        }
      }
      progress.update(seen, { missing: diff.missing.length, stale: diff.stale.length });
      opts.onProgress?.('compare', seen, total);
      checkAbort(opts.signal, 'the comparison with MySQL');
    }
    progress.stop();
    for (const [ndc, r] of redisSide) {
      if (r.pos !== null && r.pos > P) diff.inFlight++;
      else diff.extra.push(ndc);
    }
  } finally {
    await snap.close();
  }
  await setAsideDeletedAfter(deps, diff);
  const report: VerifyReport = {
    source_rows: sourceRows,
    redis_docs: redisDocs,
    missing: diff.missing.length,
    extra: diff.extra.length,
    stale: diff.stale.length,
    in_flight: diff.inFlight,
    ok: diff.missing.length + diff.extra.length + diff.stale.length === 0,
    snapshot_position: `${snap.position.file}:${snap.position.pos}`,
    snapshot_method: snap.method,
    examples: {
      missing: diff.missing.slice(0, 5),
      extra: diff.extra.slice(0, 5),
      stale: diff.stale.slice(0, 5),
    },
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  return { report, diff };
}

/** Bookkeeping read per round trip when looking for tombstones of the missing NDCs. */
const META_CHUNK = 1000;

/**
 * A missing document whose tombstone is newer than the snapshot was deleted after it: a change in flight,
 * not a mismatch. Collects those NDCs over the whole list first, then filters `missing` (and the rows kept
 * for the repair) once: the list is never changed while it is walked.
 */
async function setAsideDeletedAfter(deps: VerifyDeps, diff: Diff): Promise<void> {
  const deletedAfter = new Set<string>();
  for (let i = 0; i < diff.missing.length; i += META_CHUNK) {
    const metas = await deps.store.getMeta(diff.missing.slice(i, i + META_CHUNK));
    for (const [ndc, m] of metas) if (m && m.pos > diff.P) deletedAfter.add(ndc);
  }
  if (deletedAfter.size === 0) return;
  diff.missing = diff.missing.filter((ndc) => !deletedAfter.has(ndc));
  for (const ndc of deletedAfter) diff.rows.delete(ndc);
  diff.inFlight += deletedAfter.size;
}

export interface Diff {
  missing: string[];
  extra: string[];
  stale: string[];
  /** mapped source rows of the missing and stale NDCs (repair only) */
  rows: Map<string, DrugFields>;
  inFlight: number;
  P: SourcePosition;
}

export interface RepairResult {
  written: number;
  deleted: number;
  refused: number;
  failed: number;
}

/** Re-syncs exactly the differing NDCs at the snapshot position (never overwriting anything newer). */
export async function repair(deps: VerifyDeps, diff: Diff): Promise<RepairResult> {
  const id = { model: deps.embeddings.model, dimensions: deps.embeddings.dimensions };
  const res: RepairResult = { written: 0, deleted: 0, refused: 0, failed: 0 };
  const fields = [...diff.rows.values()];
  for (let i = 0; i < fields.length; i += 500) {
    const chunk = fields.slice(i, i + 500);
    const emb = await deps.embeddings.embedTexts(chunk.map(embeddingText));
    const ops: StoreOp[] = [];
    for (const f of chunk) {
      const text = embeddingText(f);
      const v = emb.vectors.get(text);
      if (!v) {
        res.failed++;
        deps.log.error('repair: embedding failed', { ndc: f.ndc, error: emb.failures.get(text) });
        continue;
      }
      ops.push(upsertOp({ ndc: f.ndc, pos: diff.P, fields: f, identity: id, embedding: v }));
    }
    for (const r of await deps.store.applyWith(ops, { force: true })) {
      if (r.outcome === 'stale') res.refused++;
      else res.written++;
    }
  }
  for (let i = 0; i < diff.extra.length; i += 500) {
    const ops: StoreOp[] = diff.extra.slice(i, i + 500).map((ndc) => ({ kind: 'delete', ndc, pos: diff.P }));
    for (const r of await deps.store.apply(ops)) {
      if (r.outcome === 'stale') res.refused++;
      else res.deleted++;
    }
  }
  if (res.failed > 0) {
    throw new DrugsyncError('VERIFY_MISMATCH', `repair could not embed ${res.failed} document(s)`, {
      context: { failed: res.failed },
      remedy: 'check the embedding provider (drugsync config) and run verify --repair again',
    });
  }
  return res;
}

export function formatReport(report: VerifyReport): string {
  const lines = [
    `verify at snapshot ${report.snapshot_position}: ${report.source_rows} eligible rows, ${report.redis_docs} documents (${report.seconds} s)`,
    `  missing ${report.missing}${report.examples.missing.length ? `  e.g. ${report.examples.missing.join(', ')}` : ''}`,
    `  extra   ${report.extra}${report.examples.extra.length ? `  e.g. ${report.examples.extra.join(', ')}` : ''}`,
    `  stale   ${report.stale}${report.examples.stale.length ? `  e.g. ${report.examples.stale.join(', ')}` : ''}`,
    `  changes in flight (newer than the snapshot, not counted): ${report.in_flight}`,
    report.ok
      ? 'OK: Redis equals MySQL'
      : 'MISMATCH: run `drugsync verify --repair` to re-sync exactly these NDCs',
  ];
  return lines.join('\n');
}
