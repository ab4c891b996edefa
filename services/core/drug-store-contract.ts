/**
 * The document store contract (no Redis here): how backfill, embedder, verify and re-sync write `drug:{ndc}`
 * documents.
 * Implemented once, in services/core/redis/drug-store.ts, as an atomic server-side check (Lua): a write that
 * carries an older SourcePosition than the one recorded for its NDC is refused, deletes leave a tombstone
 * (with a TTL) carrying their position, and a document whose content did not change is not rewritten
 * (any JSON write re-indexes the document, vector included), only its recorded position advances.
 *
 * Bookkeeping lives outside the index prefix (`Keys.meta(ndc)`): p = position, h = content hash,
 * t = embedding-text hash, d = '1' for a tombstone.
 */
import { contentHash, embeddingText, textHash } from './mapping.ts';
import type { DrugFields, EmbeddingIdentity } from './mapping.ts';
import type { SourcePosition } from './position.ts';

export interface DocMeta {
  pos: SourcePosition;
  contentHash: string | null;
  textHash: string | null;
  tombstone: boolean;
}

export interface UpsertOp {
  kind: 'upsert';
  ndc: string;
  pos: SourcePosition;
  fields: DrugFields;
  contentHash: string;
  textHash: string;
  /**
   * The vector for the document's embedding text. May be omitted when the caller knows (from getMeta) that
   * the stored document has the same text hash: the store then rewrites the fields and keeps the vector.
   * If the stored text hash differs after all (a race), the outcome is 'needs_embedding' and nothing is written.
   */
  embedding?: number[] | undefined;
}

export interface UpsertOpInput {
  ndc: string;
  pos: SourcePosition;
  fields: DrugFields;
  /** the model and dimension count the hashes are taken under */
  identity: EmbeddingIdentity;
  /** omit to keep the stored vector when its text hash matches (see UpsertOp.embedding) */
  embedding?: number[] | undefined;
}

/**
 * The one way to build an UpsertOp: the content hash (every mapped field plus the text hash) and the text
 * hash of the fields' embedding text, both under `identity`.
 */
export function upsertOp(a: UpsertOpInput): UpsertOp {
  const op: UpsertOp = {
    kind: 'upsert',
    ndc: a.ndc,
    pos: a.pos,
    fields: a.fields,
    contentHash: contentHash(a.fields, a.identity),
    textHash: textHash(embeddingText(a.fields), a.identity),
  };
  if (a.embedding !== undefined) op.embedding = a.embedding;
  return op;
}

export interface DeleteOp {
  kind: 'delete';
  ndc: string;
  pos: SourcePosition;
}

export type StoreOp = UpsertOp | DeleteOp;

export type ApplyOutcome =
  /** the full document (vector included) was written */
  | 'written'
  /** fields rewritten, stored vector kept (text unchanged) */
  | 'fields_updated'
  /** same content: only the recorded position advanced, no index work */
  | 'unchanged'
  /** refused: the store already reflects a newer (or equal, for deletes) position */
  | 'stale'
  /** document removed, tombstone recorded */
  | 'deleted'
  /** nothing to remove, tombstone recorded anyway (a late insert must not resurrect it) */
  | 'tombstoned'
  /** upsert without embedding, but the stored text differs: embed and retry */
  | 'needs_embedding';

export interface ApplyResult {
  ndc: string;
  outcome: ApplyOutcome;
}

export interface DrugStore {
  /** Ensures the index exists with our schema (idempotent); reports a different schema, never reuses it. */
  ensureIndex(): Promise<void>;
  /** Bookkeeping of many NDCs, pipelined. Missing NDCs map to null. */
  getMeta(ndcs: readonly string[]): Promise<Map<string, DocMeta | null>>;
  /** Applies the operations (pipelined, each atomic on its own). Results in input order. */
  apply(ops: readonly StoreOp[]): Promise<ApplyResult[]>;
}
