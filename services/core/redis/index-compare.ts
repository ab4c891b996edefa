/**
 * Whether an existing index is ours: every way its FT.INFO (index-info.ts) differs from our schema
 * (index-schema.ts) — key type, prefix, each field's path, type, weight and sortability, the vector field's
 * algorithm, dimension, metric, type and compression — and the INDEX_SCHEMA_MISMATCH error that names them.
 * Where FT.INFO is silent about a vector parameter, the spec recorded at creation stands in for it.
 */
import { DrugsyncError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import { builtVectorOf, pairs, parseAttributes } from './index-info.ts';
import type { BuiltVector } from './index-info.ts';
import { FIELDS } from './index-schema.ts';
import type { VectorSpec } from './index-schema.ts';

/** How the vector field differs from ours: what FT.INFO reports wins, the rest comes from our creation record. */
function vectorDifferences(
  name: string,
  built: BuiltVector,
  want: VectorSpec,
  recorded: VectorSpec | null,
): string[] {
  const diffs: string[] = [];
  const seen = {
    algorithm: built.algorithm ?? recorded?.algorithm,
    dim: built.dim ?? recorded?.dim,
    metric: built.metric ?? recorded?.metric,
    type: built.type ?? recorded?.type,
  };
  const unknown = (['algorithm', 'dim', 'metric', 'type'] as const).filter((k) => seen[k] === undefined);
  if (unknown.length)
    diffs.push(
      `vector field ${name}: ${unknown.join(', ')} not reported by FT.INFO and not recorded at creation (cannot verify)`,
    );
  if (seen.dim !== undefined && seen.dim !== want.dim)
    diffs.push(`vector dimension ${seen.dim}, expected ${want.dim}`);
  if (seen.metric !== undefined && seen.metric !== want.metric)
    diffs.push(`vector metric ${seen.metric}, expected ${want.metric}`);
  if (seen.type !== undefined && seen.type !== want.type)
    diffs.push(`vector type ${seen.type}, expected ${want.type}`);
  if (seen.algorithm !== undefined && seen.algorithm !== want.algorithm)
    diffs.push(`vector algorithm ${seen.algorithm}, expected ${want.algorithm}`);
  else if (recorded && recorded.compression !== want.compression)
    diffs.push(
      `vector compression ${recorded.compression ?? 'none'}, expected ${want.compression ?? 'none'}`,
    );
  return diffs;
}

/** Every way the existing index differs from ours (empty: same schema). */
export function schemaDifferences(
  info: Record<string, unknown>,
  keys: Keys,
  want: VectorSpec,
  recorded: VectorSpec | null,
): string[] {
  const diffs: string[] = [];
  const def = pairs((info.index_definition as unknown[]) ?? []);
  if (String(def.key_type) !== 'JSON') diffs.push(`index is on ${String(def.key_type)}, expected JSON`);
  const prefixes = ((def.prefixes as unknown[]) ?? []).map(String);
  if (prefixes.length !== 1 || prefixes[0] !== keys.docPrefix) {
    diffs.push(`prefixes ${JSON.stringify(prefixes)}, expected ["${keys.docPrefix}"]`);
  }
  const attrs = parseAttributes(info);
  for (const f of FIELDS) {
    const a = attrs.get(f.name);
    if (!a) {
      diffs.push(`field ${f.name} missing`);
      continue;
    }
    if (String(a.identifier) !== f.path)
      diffs.push(`field ${f.name} on ${String(a.identifier)}, expected ${f.path}`);
    if (String(a.type) !== f.type) {
      diffs.push(`field ${f.name} is ${String(a.type)}, expected ${f.type}`);
      continue;
    }
    if (f.type === 'TEXT' && Number(a.WEIGHT ?? 1) !== f.weight)
      diffs.push(`field ${f.name} weight ${String(a.WEIGHT ?? 1)}, expected ${f.weight}`);
    if (f.sortable && !a.SORTABLE) diffs.push(`field ${f.name} is not SORTABLE`);
    if (f.type === 'VECTOR') diffs.push(...vectorDifferences(f.name, builtVectorOf(a), want, recorded));
  }
  for (const name of attrs.keys())
    if (!FIELDS.some((f) => f.name === name)) diffs.push(`unexpected field ${name}`);
  return diffs;
}

/** INDEX_SCHEMA_MISMATCH naming every difference, with the ways out. */
export function schemaMismatch(keys: Keys, diffs: string[]): DrugsyncError {
  return new DrugsyncError(
    'INDEX_SCHEMA_MISMATCH',
    `index ${keys.index} exists with another schema: ${diffs.join('; ')}`,
    {
      context: { index: keys.index, differences: diffs },
      remedy:
        `drop the index only (documents stay): \`redis-cli FT.DROPINDEX ${keys.index}\`, then run ` +
        '`drugsync backfill` (it recreates the index and re-embeds where the dimension changed); ' +
        'or set REDIS_INDEX / REDIS_DOC_PREFIX to new names to build a second index beside it',
    },
  );
}
