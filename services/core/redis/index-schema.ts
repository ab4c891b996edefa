/**
 * The schema of the RediSearch index `drugs_idx` over `drug:{ndc}` JSON documents, as we create it: its
 * fields, the vector field's spec (algorithm, dimension, metric, type, compression) and where that spec is
 * recorded beside the index, the FT.CREATE arguments, and the vector bytes its FLOAT32 field takes. index.ts
 * creates and verifies the index; index-compare.ts checks an existing one against this.
 */
import type { Keys } from '../keys.ts';
import type { Logger } from '../log.ts';
import type { SearchCapabilities, VectorAlgorithm } from './capabilities.ts';

export interface IndexOptions {
  dimensions: number;
  hnsw: { m: number; efConstruction: number };
  /** Force an algorithm (tests, benchmarks); default: the one the server's search module offers. */
  algorithm?: VectorAlgorithm;
  /** The server's capabilities when the caller has them already (default: detected here). */
  capabilities?: SearchCapabilities;
  /** Where a vector index built otherwise than asked is reported (INDEX_VECTOR_SUBSTITUTED). */
  log?: Pick<Logger, 'warn'>;
}

export interface FieldSpec {
  path: string;
  name: string;
  type: 'TEXT' | 'TAG' | 'NUMERIC' | 'VECTOR';
  weight?: number;
  sortable?: boolean;
}

export const FIELDS: FieldSpec[] = [
  { path: '$.drug_name', name: 'drug_name', type: 'TEXT', weight: 2 },
  { path: '$.brand_name', name: 'brand_name', type: 'TEXT', weight: 1.5 },
  { path: '$.generic_name', name: 'generic_name', type: 'TEXT', weight: 1.5 },
  { path: '$.ndc', name: 'ndc', type: 'TAG' },
  { path: '$.dosage_form', name: 'dosage_form', type: 'TAG' },
  { path: '$.is_generic', name: 'is_generic', type: 'TAG' },
  { path: '$.is_brand', name: 'is_brand', type: 'TAG' },
  { path: '$.dea_schedule', name: 'dea_schedule', type: 'TAG' },
  { path: '$.gcn_seqno', name: 'gcn_seqno', type: 'NUMERIC', sortable: true },
  { path: '$.embedding', name: 'embedding', type: 'VECTOR' },
];

/**
 * The vector field as we create it; ensureIndex records it beside the index (keys.indexVectorSpec). FT.INFO
 * does not report every vector parameter on every version (an SVS-VAMANA field shows no algorithm or
 * dimension on some), so the record is what an existing index is checked against when FT.INFO is silent.
 */
export interface VectorSpec {
  algorithm: VectorAlgorithm;
  dim: number;
  metric: 'COSINE';
  type: 'FLOAT32';
  compression?: 'LeanVec4x8';
}

export function vectorSpec(opts: IndexOptions, algorithm: VectorAlgorithm): VectorSpec {
  return {
    algorithm,
    dim: opts.dimensions,
    metric: 'COSINE',
    type: 'FLOAT32',
    ...(algorithm === 'SVS-VAMANA' ? { compression: 'LeanVec4x8' as const } : {}),
  };
}

/** The FT.CREATE arguments (after the command name) for our schema. */
export function createIndexArgs(keys: Keys, opts: IndexOptions, algorithm: VectorAlgorithm): string[] {
  const args = [keys.index, 'ON', 'JSON', 'PREFIX', '1', keys.docPrefix, 'SCHEMA'];
  for (const f of FIELDS) {
    args.push(f.path, 'AS', f.name, f.type);
    if (f.weight !== undefined) args.push('WEIGHT', String(f.weight));
    if (f.sortable) args.push('SORTABLE');
    if (f.type === 'VECTOR') {
      const common = ['TYPE', 'FLOAT32', 'DIM', String(opts.dimensions), 'DISTANCE_METRIC', 'COSINE'];
      const extra =
        algorithm === 'HNSW'
          ? ['M', String(opts.hnsw.m), 'EF_CONSTRUCTION', String(opts.hnsw.efConstruction)]
          : algorithm === 'SVS-VAMANA'
            ? ['COMPRESSION', 'LeanVec4x8']
            : [];
      args.push(algorithm, String(common.length + extra.length), ...common, ...extra);
    }
  }
  return args;
}

/** A vector as the index's FLOAT32 field and KNN's PARAMS take it: little-endian float32 bytes. */
export function toFloat32Bytes(v: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i] as number, i * 4);
  return b;
}
