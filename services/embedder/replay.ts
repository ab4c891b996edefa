/**
 * `drugsync dlq replay`: every message of the dead-letter queue is replayed or reported, never fatal to
 * the others.
 * - Our dead letters are re-applied through `applyBatch` (so the position rule still holds: a letter older
 *   than what Redis reflects is refused as stale, which also counts as done). A letter is removed only once
 *   its record is applied; one that fails again stays where it is (not written a second time) and is
 *   reported with its new error.
 * - A Lambda on-failure record (a batch the Lambda event source mapping gave up on) is re-read from
 *   Kinesis (GetShardIterator AT_SEQUENCE_NUMBER its start, GetRecords until past its end or the shard's
 *   end) and applied through `applyBatch` like the consumer does; records of the range that are poison
 *   become our own dead letters. The message is removed once every record of the range is applied or
 *   dead-lettered. A range no longer on the stream (past retention) is reported and kept: the remedy is
 *   `drugsync verify --repair`.
 * - A malformed message is reported and kept.
 */
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import { applyBatch } from './apply.ts';
import type { ApplyDeps } from './apply-run.ts';
import { deadLetterRecord, queueMessages } from './dlq.ts';
import type { DeadLetter, DeadLetterInput, DeadLetterQueue, LambdaBatchRecord, QueueMessage } from './dlq.ts';
import { streamRecordsOf } from './shard-reader.ts';
import { mergeStats } from './types.ts';
import type { BatchStats, RecordResult, StreamRecord } from './types.ts';

/** The subset of the Kinesis client a range replay needs (GetShardIterator, GetRecords). */
export type KinesisRangeReader = Pick<KinesisClient, 'send'>;

export type RangeRead =
  | { status: 'ok'; records: StreamRecord[] }
  | { status: 'not_on_stream' | 'read_failed'; error: DrugsyncError };

/** The stream named by the record's ARN (`arn:aws:kinesis:…:stream/NAME`), else the configured one. */
export function streamNameOf(b: LambdaBatchRecord, fallback: string | undefined): string | null {
  const m = /:stream\/([^/]+)$/.exec(b.streamArn ?? '');
  return m?.[1] ?? fallback ?? null;
}

const REPAIR =
  'the records of this range are no longer on the stream (past its retention, or the stream was ' +
  're-created): run `drugsync verify --repair` to bring Redis back to the table, then delete this message';

function notOnStream(b: LambdaBatchRecord, stream: string | null, why: string, cause?: unknown): RangeRead {
  const error = new DrugsyncError(
    'DLQ_REPLAY_FAILED',
    `Lambda batch range is no longer on the stream: ${why}`,
    {
      context: { stream, shard: b.shardId, start: b.startSequenceNumber, end: b.endSequenceNumber },
      remedy: REPAIR,
      cause,
    },
  );
  return { status: 'not_on_stream', error };
}

function readFailed(b: LambdaBatchRecord, stream: string | null, e: unknown): RangeRead {
  const error = wrapError(e, 'DLQ_REPLAY_FAILED', 'cannot read the Lambda batch range from Kinesis', {
    context: { stream, shard: b.shardId, start: b.startSequenceNumber, end: b.endSequenceNumber },
    retryable: true,
    remedy:
      'check Kinesis access (kinesis:GetShardIterator, kinesis:GetRecords) and run `drugsync dlq replay` again',
  });
  return { status: 'read_failed', error };
}

const GONE = new Set(['ResourceNotFoundException', 'InvalidArgumentException']);

/** Pages through the shard from the range's start; stops past its end, at the shard's end or its tip. */
async function readPages(kinesis: KinesisRangeReader, stream: string, b: LambdaBatchRecord) {
  const start = BigInt(b.startSequenceNumber);
  const end = BigInt(b.endSequenceNumber);
  const it = await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: stream,
      ShardId: b.shardId,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: b.startSequenceNumber,
    }),
  );
  const records: StreamRecord[] = [];
  let iterator = it.ShardIterator;
  let firstSeq: bigint | null = null;
  for (let calls = 0; iterator && calls < 100_000; calls++) {
    const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    for (const r of out.Records ?? []) {
      const seq = BigInt(r.SequenceNumber ?? '0');
      firstSeq ??= seq;
      if (seq > end) return { records, firstSeq, start };
      records.push(...streamRecordsOf(r, b.shardId));
    }
    const caughtUp = (out.Records ?? []).length === 0 && (out.MillisBehindLatest ?? 0) === 0;
    if (caughtUp) break;
    iterator = out.NextShardIterator;
  }
  return { records, firstSeq, start };
}

/** Reads a Lambda batch record's range (inclusive) from its shard. */
export async function readKinesisRange(
  kinesis: KinesisRangeReader | undefined,
  stream: string | null,
  b: LambdaBatchRecord,
): Promise<RangeRead> {
  if (!kinesis || !stream) {
    return readFailed(
      b,
      stream,
      new Error(kinesis ? 'no stream name (streamArn or KINESIS_STREAM)' : 'no Kinesis client'),
    );
  }
  let page;
  try {
    page = await readPages(kinesis, stream, b);
  } catch (e) {
    const name = (e as Error).name;
    if (GONE.has(name)) return notOnStream(b, stream, `${name}: ${(e as Error).message}`, e);
    return readFailed(b, stream, e);
  }
  // AT_SEQUENCE_NUMBER returns the start record first; anything else means it was trimmed away
  if (page.firstSeq === null) return notOnStream(b, stream, 'the shard returned no record at the start');
  if (page.firstSeq !== page.start) {
    return notOnStream(b, stream, `the first record readable is ${page.firstSeq}, after the range's start`);
  }
  return { status: 'ok', records: page.records };
}

export interface ReplayOutcome {
  letter: DeadLetter;
  result: RecordResult;
  removed: boolean;
  error?: DrugsyncError | undefined;
}

export type BatchReplayStatus = 'applied' | 'still_failing' | 'not_on_stream' | 'read_failed';

export interface BatchReplayOutcome {
  id: string;
  batch: LambdaBatchRecord;
  stream: string | null;
  status: BatchReplayStatus;
  /** records read from the range */
  records: number;
  applied: number;
  deadLettered: number;
  failed: number;
  removed: boolean;
  error?: DrugsyncError | undefined;
}

export interface MalformedOutcome {
  id: string;
  error: DrugsyncError;
}

export interface ReplayReport {
  /** messages considered (every kind) */
  considered: number;
  /** our letters applied */
  applied: number;
  /** messages removed (letters and Lambda batch records) */
  removed: number;
  /** our letters that failed again */
  stillFailing: number;
  outcomes: ReplayOutcome[];
  batches: BatchReplayOutcome[];
  malformed: MalformedOutcome[];
  /** messages left in the queue: letters still failing, batch records not replayed, malformed ones */
  left: number;
  stats: BatchStats | null;
}

export interface ReplayOptions {
  ids?: readonly string[] | undefined;
  limit?: number | undefined;
  /** reads the ranges of Lambda on-failure records (required when there are any) */
  kinesis?: KinesisRangeReader | undefined;
  /** records per applyBatch call when a range is applied (default 1000) */
  applyChunk?: number | undefined;
}

/** Keeps letters of a replay from being queued again (the original letter stays until applied). */
function capturingQueue(inner: DeadLetterQueue): DeadLetterQueue & { captured: DeadLetterInput[] } {
  const captured: DeadLetterInput[] = [];
  return {
    kind: inner.kind,
    captured,
    async put(entries) {
      captured.push(...entries);
    },
    messages: (limit) => inner.messages(limit),
    list: (limit) => inner.list(limit),
    remove: (ids) => inner.remove(ids),
  };
}

const addStats = (a: BatchStats | null, b: BatchStats): BatchStats => (a ? mergeStats(a, b) : b);

async function replayLetters(deps: ApplyDeps, letters: DeadLetter[], report: ReplayReport): Promise<void> {
  if (letters.length === 0) return;
  const queue = capturingQueue(deps.dlq);
  // Replayed in the order they were dead-lettered; applyBatch orders each NDC's changes by position.
  const { results, stats } = await applyBatch(letters.map(deadLetterRecord), { ...deps, dlq: queue });
  report.stats = addStats(report.stats, stats);
  const done: string[] = [];
  letters.forEach((letter, i) => {
    const result = results[i] as RecordResult;
    const ok = result.status === 'applied';
    if (ok) {
      report.applied++;
      done.push(letter.id);
    } else report.stillFailing++;
    report.outcomes.push({ letter, result, removed: ok, error: result.error });
  });
  report.removed += await deps.dlq.remove(done);
}

/** Applies a range's records in chunks, in order; poison records go to the real queue as our letters. */
async function applyRange(
  deps: ApplyDeps,
  out: BatchReplayOutcome,
  records: Parameters<typeof applyBatch>[0],
  chunk: number,
  report: ReplayReport,
): Promise<void> {
  for (let i = 0; i < records.length; i += chunk) {
    const { results, stats } = await applyBatch(records.slice(i, i + chunk), deps);
    report.stats = addStats(report.stats, stats);
    for (const r of results) {
      if (r.status === 'applied') out.applied++;
      else if (r.status === 'dead_lettered') out.deadLettered++;
      else if (!out.error) {
        out.failed++;
        out.error = r.error;
      } else out.failed++;
    }
  }
}

async function replayBatch(
  deps: ApplyDeps,
  msg: Extract<QueueMessage, { kind: 'lambda_batch' }>,
  opts: ReplayOptions,
  report: ReplayReport,
): Promise<BatchReplayOutcome> {
  const stream = streamNameOf(msg.batch, deps.stream);
  const base = { id: msg.id, batch: msg.batch, stream, records: 0, applied: 0, deadLettered: 0, failed: 0 };
  const read = await readKinesisRange(opts.kinesis, stream, msg.batch);
  if (read.status !== 'ok') {
    return { ...base, status: read.status, removed: false, error: read.error };
  }
  const out: BatchReplayOutcome = {
    ...base,
    records: read.records.length,
    status: 'applied',
    removed: false,
  };
  await applyRange(deps, out, read.records, opts.applyChunk ?? 1000, report);
  if (out.failed > 0) {
    out.status = 'still_failing';
    return out;
  }
  out.removed = (await deps.dlq.remove([msg.id])) === 1;
  if (out.removed) report.removed++;
  return out;
}

export async function replayDeadLetters(deps: ApplyDeps, opts: ReplayOptions = {}): Promise<ReplayReport> {
  const all = await queueMessages(deps.dlq, opts.limit ?? 10_000);
  const wanted = opts.ids && opts.ids.length > 0 ? new Set(opts.ids) : null;
  const messages = wanted ? all.filter((m) => wanted.has(m.id)) : all;
  const report: ReplayReport = {
    considered: messages.length,
    applied: 0,
    removed: 0,
    stillFailing: 0,
    outcomes: [],
    batches: [],
    malformed: [],
    left: 0,
    stats: null,
  };
  const letters = messages.flatMap((m) => (m.kind === 'letter' ? [m.letter] : []));
  await replayLetters(deps, letters, report);
  for (const m of messages) {
    if (m.kind === 'lambda_batch') report.batches.push(await replayBatch(deps, m, opts, report));
    else if (m.kind === 'malformed') report.malformed.push({ id: m.id, error: m.error });
  }
  report.left = report.considered - report.removed;
  for (const b of report.batches) {
    const log = b.status === 'applied' ? deps.log.info : deps.log.warn;
    log.call(deps.log, 'Lambda batch record replayed', {
      id: b.id,
      shard: b.batch.shardId,
      start: b.batch.startSequenceNumber,
      end: b.batch.endSequenceNumber,
      status: b.status,
      records: b.records,
      error: b.error,
    });
  }
  for (const m of report.malformed) deps.log.warn('malformed dead-letter message kept', { error: m.error });
  return report;
}
