/**
 * In-memory DrugStore for unit tests, following the contract in services/core/drug-store-contract.ts: per-NDC
 * positions refuse stale writes, tombstones on delete, 'needs_embedding' when the text changed and no
 * vector was given. `applied` logs what was written; `failNext` makes the next call throw.
 */
import type { SourcePosition } from '../../services/core/position.ts';
import type {
  ApplyResult,
  DocMeta,
  DrugStore,
  StoreOp,
  UpsertOp,
} from '../../services/core/drug-store-contract.ts';
import type { DrugFields } from '../../services/core/mapping.ts';

interface StoredDoc {
  fields: DrugFields;
  embedding: number[];
}

/** In-memory DrugStore following the contract in services/core/drug-store-contract.ts. Unit tests only. */
export class MemoryDrugStore implements DrugStore {
  readonly docs = new Map<string, StoredDoc>();
  readonly meta = new Map<string, DocMeta>();
  readonly applied: StoreOp[] = [];
  failNext: Error | null = null;

  async ensureIndex(): Promise<void> {}

  async getMeta(ndcs: readonly string[]): Promise<Map<string, DocMeta | null>> {
    if (this.failNext) throw this.takeFailure();
    return new Map(ndcs.map((n) => [n, this.meta.get(n) ?? null]));
  }

  private takeFailure(): Error {
    const e = this.failNext as Error;
    this.failNext = null;
    return e;
  }

  async apply(ops: readonly StoreOp[]): Promise<ApplyResult[]> {
    if (this.failNext) throw this.takeFailure();
    return ops.map((op) => ({ ndc: op.ndc, outcome: this.applyOne(op) }));
  }

  private applyOne(op: StoreOp): ApplyResult['outcome'] {
    const m = this.meta.get(op.ndc);
    if (op.kind === 'delete') {
      if (m && m.pos >= op.pos) return 'stale';
      const had = this.docs.delete(op.ndc);
      this.meta.set(op.ndc, { pos: op.pos, contentHash: null, textHash: null, tombstone: true });
      this.applied.push(op);
      return had ? 'deleted' : 'tombstoned';
    }
    if (m && m.pos >= op.pos) return 'stale';
    const doc = this.docs.get(op.ndc);
    if (doc && m && !m.tombstone && m.contentHash === op.contentHash) {
      m.pos = op.pos;
      return 'unchanged';
    }
    if (!op.embedding) {
      if (!doc || !m || m.tombstone || m.textHash !== op.textHash) return 'needs_embedding';
      this.write(op, doc.embedding);
      return 'fields_updated';
    }
    this.write(op, op.embedding);
    return 'written';
  }

  /** Stores an upsert's fields with `embedding`, its position and hashes, and logs it in `applied`. */
  private write(op: UpsertOp, embedding: number[]): void {
    this.docs.set(op.ndc, { fields: op.fields, embedding });
    this.meta.set(op.ndc, {
      pos: op.pos,
      contentHash: op.contentHash,
      textHash: op.textHash,
      tombstone: false,
    });
    this.applied.push(op);
  }

  async sweepOlderThan(pos: SourcePosition): Promise<number> {
    let n = 0;
    for (const [ndc, m] of this.meta) {
      if (!m.tombstone && m.pos < pos && this.docs.delete(ndc)) {
        this.meta.set(ndc, { pos, contentHash: null, textHash: null, tombstone: true });
        n++;
      }
    }
    return n;
  }

  /** Seeds a document as if written earlier (a backfill, say). */
  seed(op: UpsertOp & { embedding: number[] }): void {
    this.applyOne(op);
  }
}
