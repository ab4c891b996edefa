/**
 * `--part i/n`: the NDC range one backfill process loads. The 11-digit NDC key space is split into n ranges;
 * each part has its own snapshot, spool, run state and cleanup, and the reader's start is the oldest of the
 * parts' snapshot positions (./handoff.ts).
 */
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { DrugsyncError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import { quoteTable } from '../core/sql.ts';

/** NDCs in (after, upTo]: '' = from the start, undefined = to the end. */
export interface NdcRange {
  after: string;
  upTo: string | undefined;
}

export interface Part extends NdcRange {
  index: number;
  count: number;
  /** `<i>of<n>`: names the part's run state, spool directory and snapshot position */
  label: string;
}

export function parsePart(text: string | undefined): Part {
  if (!text) return { index: 1, count: 1, after: '', upTo: undefined, label: '1of1' };
  const match = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count || count > 1000) {
    throw new DrugsyncError('CONFIG_INVALID', `--part must be i/n with 1 ≤ i ≤ n ≤ 1000, got "${text}"`);
  }
  // Equal numeric ranges of the 11-digit NDC space (resolvePart replaces them with sampled boundaries).
  const bound = (k: number) => String(Math.floor((k * 1e11) / count) - 1).padStart(11, '0');
  return withBounds(
    index,
    count,
    Array.from({ length: count - 1 }, (_, k) => bound(k + 1)),
  );
}

function withBounds(index: number, count: number, bounds: readonly string[]): Part {
  return {
    index,
    count,
    after: index === 1 ? '' : (bounds[index - 2] as string),
    upTo: index === count ? undefined : (bounds[index - 1] as string),
    label: `${index}of${count}`,
  };
}

export function inPart(ndc: string, range: NdcRange): boolean {
  return ndc > range.after && (range.upTo === undefined || ndc <= range.upTo);
}

/**
 * The part's NDC range. Boundaries are n-quantiles of the table's NDCs (one keyset pass over the primary
 * key, NDC only), computed by whichever part starts first and stored in Redis with SET NX, so every part
 * of the split uses the same ones: the ranges never overlap nor leave gaps whatever the data, and are
 * balanced for the data at the time of the split. An empty table falls back to equal numeric ranges.
 */
export async function resolvePart(
  deps: { mysql: MysqlPool; redis: RedisClient; keys: Keys },
  text: string | undefined,
  table: { schema: string; table: string },
): Promise<Part> {
  const equal = parsePart(text);
  if (equal.count === 1) return equal;
  const count = equal.count;
  const key = deps.keys.backfillSplit(count);
  if (!(await deps.redis.get(key))) {
    let bounds = await quantileBounds(deps.mysql, table, count);
    if (bounds.length !== count - 1)
      bounds = Array.from({ length: count - 1 }, (_, k) => parsePart(`${k + 1}/${count}`).upTo as string);
    await deps.redis.set(key, JSON.stringify(bounds), 'NX');
  }
  const bounds = JSON.parse((await deps.redis.get(key)) as string) as string[];
  return withBounds(equal.index, count, bounds);
}

/** The NDCs that cut the table into `count` equal shares (fewer when the table has fewer rows than parts). */
async function quantileBounds(
  mysql: MysqlPool,
  table: { schema: string; table: string },
  count: number,
): Promise<string[]> {
  const conn = await mysql.getConnection();
  const bounds: string[] = [];
  try {
    const from = quoteTable(table.schema, table.table);
    const [counted] = await conn.query(`SELECT COUNT(*) AS n FROM ${from}`);
    const rows = Number((counted as { n: number }[])[0]?.n ?? 0);
    if (rows < count) return bounds;
    const want = Array.from({ length: count - 1 }, (_, k) => Math.floor(((k + 1) * rows) / count));
    let seen = 0;
    let last = '';
    while (bounds.length < want.length) {
      const [page] = await conn.query(`SELECT NDC FROM ${from} WHERE NDC > ? ORDER BY NDC LIMIT 20000`, [
        last,
      ]);
      const ndcs = page as { NDC: string }[];
      if (ndcs.length === 0) break;
      for (const row of ndcs) {
        seen++;
        if (seen === want[bounds.length]) bounds.push(String(row.NDC));
      }
      last = String((ndcs[ndcs.length - 1] as { NDC: string }).NDC);
    }
    return bounds;
  } finally {
    conn.release();
  }
}
