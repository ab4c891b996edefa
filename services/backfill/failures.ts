/**
 * Rows that failed to embed: never dropped silently. Each is listed in the Redis hash
 * `keys.backfillFailures` (NDC → the JSON of a `FailedRow`: its position, reason, error code and fields),
 * which `--retry-failed` reads back, and in a JSON report per part beside the spool directories. This module
 * owns that JSON: the load and the retry write it through `embeddedOps`, the retry and the report read it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RedisClient } from '../core/clients/redis.ts';
import { upsertOp } from '../core/drug-store-contract.ts';
import type { StoreOp } from '../core/drug-store-contract.ts';
import type { EmbeddingResult } from '../core/embedding/types.ts';
import { errorMessage } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { embeddingText } from '../core/mapping.ts';
import type { DrugFields, EmbeddingIdentity } from '../core/mapping.ts';
import type { SourcePosition } from '../core/position.ts';
import { inPart } from './part.ts';
import type { Part } from './part.ts';
import { environmentDir } from './spool.ts';

/** A row to write at its source position. */
export interface PendingRow {
  ndc: string;
  pos: SourcePosition;
  fields: DrugFields;
}

/** A listed failure: the row (written again at `pos` by --retry-failed) and why it has no vector. */
interface FailedRow {
  pos: SourcePosition;
  reason: string;
  code: string | undefined;
  fields: DrugFields;
}

/**
 * The upserts of the rows `embedded` has a vector for, and for each other row its listed failure (NDC →
 * JSON), for `keys.backfillFailures`.
 */
export function embeddedOps(
  rows: readonly PendingRow[],
  embedded: EmbeddingResult,
  identity: EmbeddingIdentity,
): { ops: StoreOp[]; failures: Record<string, string> } {
  const ops: StoreOp[] = [];
  const failures: Record<string, string> = {};
  for (const { ndc, pos, fields } of rows) {
    const text = embeddingText(fields);
    const embedding = embedded.vectors.get(text);
    if (embedding) {
      ops.push(upsertOp({ ndc, pos, fields, identity, embedding }));
      continue;
    }
    const err = embedded.failures.get(text);
    const reason = err ? errorMessage(err) : 'no vector';
    const failed: FailedRow = { pos, reason, code: err?.code, fields };
    failures[ndc] = JSON.stringify(failed);
  }
  return { ops, failures };
}

/** The reason of a listed failure (for log lines). */
export function failureReason(listed: string): string {
  return (JSON.parse(listed) as FailedRow).reason;
}

/** Every listed failure, as rows to write again at their recorded position. */
export async function listedFailures(deps: { redis: RedisClient; keys: Keys }): Promise<PendingRow[]> {
  const all = await deps.redis.hgetall(deps.keys.backfillFailures);
  return Object.entries(all).map(([ndc, listed]) => {
    const { pos, fields } = JSON.parse(listed) as FailedRow;
    return { ndc, pos, fields };
  });
}

/** The failure list of this part as a JSON file beside the spool (the Redis hash is what --retry-failed reads). */
export async function writeFailureReport(
  deps: { redis: RedisClient; keys: Keys; log: Logger },
  part: Part,
  spoolDir: string,
): Promise<void> {
  const { keys } = deps;
  const all = await deps.redis.hgetall(keys.backfillFailures);
  const rows = Object.entries(all)
    .filter(([ndc]) => inPart(ndc, part))
    .map(([ndc, listed]) => {
      const failed = JSON.parse(listed) as FailedRow;
      return {
        ndc,
        reason: failed.reason,
        code: failed.code,
        pos: failed.pos,
        drug_name: failed.fields.drug_name,
      };
    });
  const dir = environmentDir(spoolDir, keys);
  const file = path.join(dir, `failures-${part.label}.json`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ part: part.label, count: rows.length, rows }, null, 2));
  deps.log.error('failure report written; fix the cause, then run `drugsync backfill --retry-failed`', {
    file,
    count: rows.length,
    failures_key: keys.backfillFailures,
  });
}
