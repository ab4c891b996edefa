/**
 * The DrugStore on Redis: one Lua script makes every write an atomic compare-and-set on the NDC's
 * bookkeeping hash (`Keys.meta(ndc)`: p = SourcePosition, h = content hash, t = text hash, d = tombstone),
 * so no writer — backfill, embedder, verify --repair, a consumer retry, a replay — can move a document
 * backwards or resurrect a deleted one. A document whose content did not change is not rewritten (any
 * JSON write re-indexes it, vector included): only its recorded position advances.
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../clients/redis.ts';
import { wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../log.ts';
import { buildDocument } from '../mapping.ts';
import type { DrugDocument } from '../mapping.ts';
import type { SourcePosition } from '../position.ts';
import type { ApplyOutcome, ApplyResult, DocMeta, DrugStore, StoreOp } from '../drug-store-contract.ts';
import { ensureIndex } from './index.ts';

/**
 * KEYS[1] document, KEYS[2] meta. ARGV: op (put|merge|del), pos, content hash, text hash, JSON, tombstone
 * TTL seconds, force ('1' rewrites even when the content hash is unchanged: verify --repair of a document
 * edited by hand).
 */
const APPLY_LUA = `
local op, pos = ARGV[1], ARGV[2]
local cur = redis.call('HMGET', KEYS[2], 'p', 'h', 't', 'd')
local cp = cur[1]
if cp then
  if op == 'del' then
    if pos <= cp then return 'stale' end
  elseif pos < cp then
    return 'stale'
  end
end
if op == 'del' then
  local existed = redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'p', pos, 'h', '', 't', '', 'd', '1')
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
  if existed == 1 then return 'deleted' end
  return 'tombstoned'
end
local live = cur[4] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1
if live and cur[2] == ARGV[3] and ARGV[7] ~= '1' then
  redis.call('HSET', KEYS[2], 'p', pos)
  return 'unchanged'
end
local outcome = 'written'
if op == 'merge' then
  if not live or cur[3] ~= ARGV[4] then return 'needs_embedding' end
  redis.call('JSON.MERGE', KEYS[1], '$', ARGV[5])
  outcome = 'fields_updated'
else
  redis.call('JSON.SET', KEYS[1], '$', ARGV[5])
end
redis.call('HSET', KEYS[2], 'p', pos, 'h', ARGV[3], 't', ARGV[4], 'd', '0')
redis.call('PERSIST', KEYS[2])
return outcome
`;

type ApplyCommand = (docKey: string, metaKey: string, ...argv: string[]) => Promise<string>;

export interface StoreSettings {
  TOMBSTONE_TTL_SECONDS: number;
  EMBEDDING_DIMENSIONS: number;
  HNSW_M: number;
  HNSW_EF_CONSTRUCTION: number;
}

export interface SweepResult {
  scanned: number;
  deleted: number;
  kept: number;
  /** older than the position, but their NDC is still in the source table (kept: the stream rewrites them) */
  stillInSource: number;
}

export interface SweepOptions {
  dryRun?: boolean;
  onProgress?: (s: SweepResult) => void;
  /** Of these NDCs, the ones still in the source table; they are kept. */
  inSource?: (ndcs: readonly string[]) => Promise<Set<string>>;
}

export interface RedisDrugStore extends DrugStore {
  /** Like apply, with `force` rewriting documents whose content hash looks unchanged (repairs). */
  applyWith(ops: readonly StoreOp[], opts: { force?: boolean }): Promise<ApplyResult[]>;
  /** Deletes every live document whose recorded position is older than `pos` (at `pos`, position-checked). */
  sweepOlderThan(pos: SourcePosition, opts?: SweepOptions): Promise<SweepResult>;
  /** Every NDC with bookkeeping (live or tombstone), in SCAN batches. */
  scanMeta(batch?: number): AsyncGenerator<Map<string, DocMeta>>;
  /** The stored documents (JSON.GET, pipelined); missing NDCs map to null. */
  getDocuments(ndcs: readonly string[]): Promise<Map<string, DrugDocument | null>>;
}

function ensureCommand(redis: RedisClient): void {
  if (!(redis as unknown as Record<string, unknown>).drugsyncApply) {
    redis.defineCommand('drugsyncApply', { numberOfKeys: 2, lua: APPLY_LUA });
  }
}

function parseMeta(v: (string | null)[]): DocMeta | null {
  const [p, h, t, d] = v;
  if (!p) return null;
  return { pos: p, contentHash: h || null, textHash: t || null, tombstone: d === '1' };
}

/** What every operation of the store works with. */
interface StoreState {
  redis: RedisClient;
  keys: Keys;
  settings: StoreSettings;
  /** tombstone TTL in seconds, as the script's argument */
  ttl: string;
  /** where ensureIndex reports a vector index built otherwise than asked */
  log?: Pick<Logger, 'warn'>;
}

export function createRedisDrugStore(
  redis: RedisClient,
  keys: Keys,
  settings: StoreSettings,
  opts: { log?: Pick<Logger, 'warn'> } = {},
): RedisDrugStore {
  ensureCommand(redis);
  const st: StoreState = {
    redis,
    keys,
    settings,
    ttl: String(settings.TOMBSTONE_TTL_SECONDS),
    log: opts.log,
  };
  return {
    getDocuments: (ndcs) => getDocuments(st, ndcs),
    ensureIndex: () => ensureStoreIndex(st),
    getMeta: (ndcs) => getMeta(st, ndcs),
    apply: (ops) => applyWith(st, ops),
    applyWith: (ops, opts) => applyWith(st, ops, opts),
    scanMeta: (batch) => scanMeta(st, batch),
    sweepOlderThan: (pos, opts) => sweepOlderThan(st, pos, opts),
  };
}

type Replies = [Error | null, unknown][] | null;

/** Runs a pipeline; a failure of the whole exchange (Redis unreachable) becomes `failed(e)`. */
async function execPipeline(pipe: ChainableCommander, failed: (e: unknown) => Error): Promise<Replies> {
  try {
    return await pipe.exec();
  } catch (e) {
    throw failed(e);
  }
}

/** The i-th reply of a pipeline, a missing one as an error. */
function replyAt(replies: Replies, i: number): [Error | null, unknown] {
  return replies?.[i] ?? [new Error('no reply'), null];
}

async function ensureStoreIndex(state: StoreState): Promise<void> {
  await ensureIndex(state.redis, state.keys, {
    dimensions: state.settings.EMBEDDING_DIMENSIONS,
    hnsw: { m: state.settings.HNSW_M, efConstruction: state.settings.HNSW_EF_CONSTRUCTION },
    log: state.log,
  });
}

/** The script's ARGV for one operation: op, pos, content hash, text hash, JSON, tombstone TTL, force. */
function applyArgv(state: StoreState, op: StoreOp, now: Date, force: boolean): string[] {
  const f = force ? '1' : '0';
  if (op.kind === 'delete') return ['del', op.pos, '', '', '', state.ttl, '0'];
  if (op.embedding) {
    const doc = JSON.stringify(buildDocument(op.fields, op.embedding, now));
    return ['put', op.pos, op.contentHash, op.textHash, doc, state.ttl, f];
  }
  const fields = JSON.stringify({ ...op.fields, indexed_at: now.toISOString() });
  return ['merge', op.pos, op.contentHash, op.textHash, fields, state.ttl, f];
}

async function applyWith(
  state: StoreState,
  ops: readonly StoreOp[],
  opts: { force?: boolean } = {},
): Promise<ApplyResult[]> {
  if (ops.length === 0) return [];
  const { keys } = state;
  const pipe = state.redis.pipeline();
  const now = new Date();
  const cmd = (pipe as unknown as { drugsyncApply: ApplyCommand }).drugsyncApply.bind(pipe);
  for (const op of ops)
    void cmd(keys.doc(op.ndc), keys.meta(op.ndc), ...applyArgv(state, op, now, opts.force === true));
  const replies = await execPipeline(pipe, (e) =>
    wrapError(e, 'REDIS_UNAVAILABLE', `writing ${ops.length} documents failed`, {
      context: { first_ndc: ops[0]?.ndc },
      retryable: true,
      remedy: 'Redis is unreachable or restarting; the batch is retried',
    }),
  );
  return ops.map((op, i) => {
    const [err, out] = replyAt(replies, i);
    if (err) {
      throw wrapError(err, 'REDIS_COMMAND_FAILED', `writing ${keys.doc(op.ndc)} failed`, {
        context: { ndc: op.ndc, key: keys.doc(op.ndc), pos: op.pos },
        retryable: /LOADING|BUSY|READONLY|TRYAGAIN/.test(err.message),
      });
    }
    return { ndc: op.ndc, outcome: String(out) as ApplyOutcome };
  });
}

async function getMeta(state: StoreState, ndcs: readonly string[]): Promise<Map<string, DocMeta | null>> {
  const out = new Map<string, DocMeta | null>();
  if (ndcs.length === 0) return out;
  const pipe = state.redis.pipeline();
  for (const n of ndcs) pipe.hmget(state.keys.meta(n), 'p', 'h', 't', 'd');
  const replies = await execPipeline(pipe, (e) =>
    wrapError(e, 'REDIS_UNAVAILABLE', `reading bookkeeping of ${ndcs.length} NDCs failed`, {
      retryable: true,
    }),
  );
  ndcs.forEach((n, i) => {
    const [err, v] = replyAt(replies, i);
    if (err)
      throw wrapError(err, 'REDIS_COMMAND_FAILED', `HMGET ${state.keys.meta(n)} failed`, {
        context: { ndc: n },
      });
    out.set(n, parseMeta(v as (string | null)[]));
  });
  return out;
}

async function* scanMeta(state: StoreState, batch = 5000): AsyncGenerator<Map<string, DocMeta>> {
  const { metaPrefix } = state.keys;
  let cursor = '0';
  do {
    const [next, found] = await state.redis.scan(cursor, 'MATCH', `${metaPrefix}*`, 'COUNT', batch);
    cursor = next;
    if (found.length) {
      const metas = await getMeta(
        state,
        found.map((k) => k.slice(metaPrefix.length)),
      );
      const m = new Map<string, DocMeta>();
      for (const [n, v] of metas) if (v) m.set(n, v);
      yield m;
    }
  } while (cursor !== '0');
}

async function getDocuments(
  state: StoreState,
  ndcs: readonly string[],
): Promise<Map<string, DrugDocument | null>> {
  const out = new Map<string, DrugDocument | null>();
  if (ndcs.length === 0) return out;
  const pipe = state.redis.pipeline();
  for (const n of ndcs) pipe.call('JSON.GET', state.keys.doc(n));
  const replies = await execPipeline(pipe, (e) =>
    wrapError(e, 'REDIS_UNAVAILABLE', `reading ${ndcs.length} documents failed`, { retryable: true }),
  );
  ndcs.forEach((n, i) => {
    const [err, v] = replyAt(replies, i);
    if (err)
      throw wrapError(err, 'REDIS_COMMAND_FAILED', `JSON.GET ${state.keys.doc(n)} failed`, {
        context: { ndc: n, key: state.keys.doc(n) },
      });
    out.set(n, v === null ? null : (JSON.parse(String(v)) as DrugDocument));
  });
  return out;
}

async function sweepOlderThan(
  state: StoreState,
  pos: SourcePosition,
  opts: SweepOptions = {},
): Promise<SweepResult> {
  const r: SweepResult = { scanned: 0, deleted: 0, kept: 0, stillInSource: 0 };
  for await (const metas of scanMeta(state)) {
    let victims: StoreOp[] = [];
    for (const [ndc, m] of metas) {
      r.scanned++;
      if (!m.tombstone && m.pos < pos) victims.push({ kind: 'delete', ndc, pos });
      else r.kept++;
    }
    if (opts.inSource && victims.length) {
      const present = await opts.inSource(victims.map((v) => v.ndc));
      const before = victims.length;
      victims = victims.filter((v) => !present.has(v.ndc));
      r.stillInSource += before - victims.length;
      r.kept += before - victims.length;
    }
    if (!opts.dryRun && victims.length) {
      for (const res of await applyWith(state, victims)) {
        if (res.outcome === 'deleted' || res.outcome === 'tombstoned') r.deleted++;
        else r.kept++;
      }
    } else r.deleted += victims.length;
    opts.onProgress?.(r);
  }
  return r;
}
