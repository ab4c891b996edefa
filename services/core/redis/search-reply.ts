/**
 * FT.SEARCH replies, read in one place for every caller (KNN in knn.ts, text and group reads in
 * ../search/search.ts). Two shapes reach us:
 * - the classic array: `[total, key, (score,) [field, value, ...], key, ...]` (RESP2; Redis Stack 7.4 always);
 * - the map-like one: `[attributes, [...], format, STRING, results, [[id, key, extra_attributes, [field,
 *   value, ...], (score, n,) values, []], ...], total_results, n, warning, []]`, as ioredis hands over a
 *   KNN reply of Redis 8.2 / search 8.2 (captured in test/fixtures/redis-8.2/replies.json), and the same as
 *   a plain object where a client decodes RESP3 maps.
 */
export interface SearchReplyHit {
  key: string;
  /** the document's score (WITHSCORES), when the reply carries one */
  score?: number;
  fields: Record<string, string>;
}

export interface SearchReply {
  total: number;
  hits: SearchReplyHit[];
}

function fieldPairs(list: unknown): Record<string, string> {
  const o: Record<string, string> = {};
  if (!Array.isArray(list)) return o;
  for (let i = 0; i + 1 < list.length; i += 2) o[String(list[i])] = String(list[i + 1]);
  return o;
}

/** An array of alternating keys and values, or a plain object, as a record (null when it is neither). */
function asMap(v: unknown): Record<string, unknown> | null {
  if (Array.isArray(v)) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < v.length; i += 2) o[String(v[i])] = v[i + 1];
    return o;
  }
  if (v instanceof Map) return Object.fromEntries(v) as Record<string, unknown>;
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : null;
}

function isMapLike(reply: unknown): boolean {
  if (Array.isArray(reply))
    return reply.length > 0 && typeof reply[0] === 'string' && reply.includes('results');
  return reply !== null && typeof reply === 'object' && 'results' in (asMap(reply) ?? {});
}

function fromMapLike(reply: unknown): SearchReply {
  const m = asMap(reply) ?? {};
  const results = Array.isArray(m.results) ? m.results : [];
  const hits = results.map((r): SearchReplyHit => {
    const x = asMap(r) ?? {};
    const attrs = asMap(x.extra_attributes) ?? {};
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) fields[k] = String(v);
    return { key: String(x.id), ...(x.score !== undefined ? { score: Number(x.score) } : {}), fields };
  });
  return { total: Number(m.total_results ?? hits.length), hits };
}

function fromArray(reply: unknown[], withScores: boolean): SearchReply {
  const step = withScores ? 3 : 2; // key, [score,] fields
  const hits: SearchReplyHit[] = [];
  for (let i = 1; i + step - 1 < reply.length; i += step) {
    hits.push({
      key: String(reply[i]),
      ...(withScores ? { score: Number(reply[i + 1]) } : {}),
      fields: fieldPairs(reply[i + step - 1]),
    });
  }
  return { total: Number(reply[0] ?? 0), hits };
}

/** An FT.SEARCH reply in either shape; `withScores`: the query asked for WITHSCORES. */
export function parseSearchReply(reply: unknown, o: { withScores: boolean }): SearchReply {
  if (isMapLike(reply)) return fromMapLike(reply);
  if (!Array.isArray(reply)) return { total: 0, hits: [] };
  return fromArray(reply, o.withScores);
}
