/**
 * The local embedder: deterministic and LEXICAL, NOT SEMANTIC. It hashes word tokens and character
 * trigrams into `dimensions` buckets (signed feature hashing) and L2-normalises, so names that share words
 * and spellings are near ("LISINOPRIL 10 MG TABLET" ~ "LISINOPRIL 20 MG TABLET"), but it knows nothing
 * of meaning ("blood pressure pill" finds nothing useful). Form and strength words weigh about as much
 * as the ingredient, so "PRACO 12.5 MG TABLET ER 24 HR" sits nearer "XAZO 12.5 MG TABLET ER 24 HR" than
 * "PRACO 20 MG TABLET". It exists so the local stack and the tests run without Bedrock, fast (>100K
 * texts/s at 256-d and 1024-d on one core); production uses Titan Text Embeddings v2. Its vectors are
 * part of the model id 'drugsync-lexical-v1': any change to the function needs a new id (cached vectors
 * and content hashes are keyed by it).
 */
import type { Embedder } from './types.ts';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const scratch = new Map<number, Float64Array>();

export function lexicalVector(text: string, dimensions: number): number[] {
  // Sparse accumulation: a name has a few dozen features, so only the touched buckets are visited (in
  // ascending order, which keeps the float sums, and so the vectors, identical to a dense pass).
  let v = scratch.get(dimensions);
  if (!v) scratch.set(dimensions, (v = new Float64Array(dimensions)));
  const acc = v;
  const touched: number[] = [];
  const add = (feature: string, weight: number) => {
    const h = fnv1a(feature);
    const i = h % dimensions;
    if (acc[i] === 0) touched.push(i);
    acc[i]! += h & 0x80000000 ? -weight : weight;
  };
  const words = text
    .toLowerCase()
    .split(/[^a-z0-9.%/]+/)
    .filter(Boolean);
  for (const w of words) {
    // Numbers (strengths) matter less than ingredient words.
    add(`w:${w}`, /^\d/.test(w) ? 0.7 : 2);
    const padded = `^${w}$`;
    for (let i = 0; i + 3 <= padded.length; i++) add(`t:${padded.slice(i, i + 3)}`, 0.5);
  }
  const buckets = [...new Set(touched)].sort((x, y) => x - y);
  let norm = 0;
  for (const i of buckets) norm += (acc[i] as number) ** 2;
  norm = Math.sqrt(norm) || 1;
  const out = new Array<number>(dimensions).fill(0);
  for (const i of buckets) {
    out[i] = Math.fround((acc[i] as number) / norm);
    acc[i] = 0;
  }
  if (norm === 1 && words.length === 0) out[0] = 1; // an empty text still gets a unit vector
  return out;
}

export const LOCAL_MODEL_ID = 'drugsync-lexical-v1';

export function createLocalEmbedder(dimensions: number, model = LOCAL_MODEL_ID): Embedder {
  return {
    model,
    dimensions,
    maxBatch: 256,
    async embed(texts) {
      return texts.map((t) => lexicalVector(t, dimensions));
    },
  };
}
