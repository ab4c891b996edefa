import type { Command } from 'commander';
import { createKinesis } from '../core/clients/kinesis.ts';
import { waitForRedis } from '../core/clients/redis.ts';
import { DrugsyncError } from '../core/errors.ts';
import { createLogger, describeErrorMasked } from '../core/log.ts';
import { startEmbedderConsumer } from './consumer.ts';
import { queueMessages } from './dlq.ts';
import type { QueueMessage } from './dlq.ts';
import { replayDeadLetters, streamNameOf } from './replay.ts';
import type { ReplayReport } from './replay.ts';
import {
  consumerDeps,
  createEmbedderRuntime,
  decodeEmbedderConfig,
  decodeEmbedderWithSourceConfig,
} from './runtime.ts';
import type { EmbedderRuntime, EmbedderWithSourceConfig } from './runtime.ts';
import { createResyncRunner } from './resync.ts';
import { createSourceProbe } from './source-probe.ts';
import type { ResyncRunner } from './resync.ts';
import { createMysqlPool, mysqlCredentials } from '../core/clients/mysql.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import { createRedisDrugStore } from '../core/redis/drug-store.ts';
import type { Logger } from '../core/log.ts';

/** The re-sync runner with its own read-only MySQL pool (the DB_* settings; follows a password rotation). */
async function resyncRunnerFor(
  rt: EmbedderRuntime,
  config: EmbedderWithSourceConfig,
  log: Logger,
): Promise<{ runner: ResyncRunner; mysql: MysqlPool }> {
  const mysql = createMysqlPool(config, mysqlCredentials(config, { region: config.AWS_REGION, log }));
  const runner = createResyncRunner({
    mysql,
    redis: rt.redis,
    keys: rt.keys,
    store: createRedisDrugStore(rt.redis, rt.keys, config),
    embeddings: rt.deps.embeddings,
    tableState: rt.deps.tableState,
    log: log.child({ job: 'resync' }),
    snapshotMethod: config.SNAPSHOT_METHOD,
    schema: config.DB_NAME,
    table: config.DB_TABLE,
  });
  return { runner, mysql };
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new DrugsyncError('CONFIG_INVALID', `--exit-when-idle must be a number of seconds ≥ 0, got "${v}"`);
  }
  return n;
}

/** Commands of services/embedder: the consumer, the re-sync and the dead-letter queue. */
export function registerEmbedderCommands(program: Command): void {
  registerConsumerCommand(program);
  registerResyncCommand(program);
  const dlq = program.command('dlq').description('dead-lettered change events (poison records)');
  registerDlqListCommand(dlq);
  registerDlqReplayCommand(dlq);
}

function registerConsumerCommand(program: Command): void {
  program
    .command('embedder')
    .description(
      'apply change events from Kinesis to Redis (local/ECS consumer): every shard, checkpointed in Redis, ' +
        'embedding only changed names; stops cleanly on SIGTERM/SIGINT (finishes the batch, checkpoints)',
    )
    .option('--exit-when-idle <seconds>', 'exit 0 once every shard is caught up and idle this long', seconds)
    .action(runConsumer);
}

/** `drugsync embedder`: runs the consumer until a signal (or idle with --exit-when-idle), then closes all. */
async function runConsumer(o: { exitWhenIdle?: number }): Promise<void> {
  const base = decodeEmbedderConfig();
  // With RESYNC_AUTO the DB_* settings are required too (every problem is reported at once).
  const full = base.RESYNC_AUTO ? decodeEmbedderWithSourceConfig() : null;
  const config = full ?? base;
  const log = createLogger({ service: 'embedder' });
  const rt = await createEmbedderRuntime(config, log);
  await waitForRedis(rt.redis);
  // The index normally comes from the backfill; create it here too so a consumer on an empty Redis
  // still produces searchable documents (and refuse to run over an index of another schema).
  await rt.deps.store.ensureIndex();
  // With the DB_* settings the consumer re-syncs a replaced table and checks the table before a truncate
  // sweep; RESYNC_AUTO=0 runs it without database access.
  const resync = full ? await resyncRunnerFor(rt, full, log) : null;
  rt.deps.resync = resync?.runner;
  rt.deps.source = full && resync ? createSourceProbe(resync.mysql, full.DB_NAME, full.DB_TABLE) : undefined;
  const kinesis = createKinesis(config);
  const consumer = startEmbedderConsumer(config, consumerDeps(rt, kinesis, log), {
    exitWhenIdleMs: o.exitWhenIdle === undefined ? undefined : o.exitWhenIdle * 1000,
  });
  const onSignal = (sig: string) => {
    log.info('signal received', { signal: sig });
    consumer.stop();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  log.info('embedder consumer started', {
    stream: config.KINESIS_STREAM,
    model: rt.deps.embeddings.model,
    dimensions: rt.deps.embeddings.dimensions,
    dlq: rt.deps.dlq.kind,
  });
  await consumer.done;
  await resync?.runner.stop();
  await resync?.mysql.end();
  kinesis.destroy();
  await rt.close();
}

function registerResyncCommand(program: Command): void {
  program
    .command('resync')
    .description(
      're-sync Redis with the table by difference (compare by NDC and content hash, write only what differs,\n' +
        'delete what is gone, embed only unknown names) for the pending resync events (table replaced by\n' +
        'RENAME or DROP + CREATE). The embedder consumer does this by itself (with RESYNC_AUTO); run it by hand\n' +
        'when the consumer runs without database access. --force runs one even when nothing is pending',
    )
    .option('--force', 'run a re-sync even without a pending resync event')
    .option('--json', 'print the outcome as JSON')
    .action(runResync);
}

/** `drugsync resync`: one re-sync of the pending resync events (or forced), under the re-sync lease. */
async function runResync(o: { force?: boolean; json?: boolean }): Promise<void> {
  const config = decodeEmbedderWithSourceConfig();
  const log = createLogger({ service: 'resync' });
  const rt = await createEmbedderRuntime(config, log);
  await waitForRedis(rt.redis);
  const { runner, mysql } = await resyncRunnerFor(rt, config, log);
  try {
    const st = await rt.deps.tableState.read();
    if (st.resyncs.length === 0 && !o.force) {
      process.stdout.write(o.json ? JSON.stringify({ pending: 0 }) + '\n' : 'no pending resync\n');
      return;
    }
    const outcome = await runner.runNow(st.resyncs);
    if (!outcome) {
      process.exitCode = 1;
      process.stderr.write('another process holds the re-sync lease; try again when it has finished\n');
      return;
    }
    process.stdout.write(
      o.json
        ? JSON.stringify(outcome) + '\n'
        : `re-synced at ${outcome.position}: ${outcome.source_rows} rows, ${outcome.written} written, ${outcome.deleted} deleted, ${outcome.embeddings_requested} embedding call(s), ${outcome.seconds} s\n`,
    );
  } finally {
    await mysql.end();
    await rt.close();
  }
}

function registerDlqListCommand(dlq: Command): void {
  dlq
    .command('list')
    .description(
      'show the dead-letter queue, every kind of message: our dead letters (time, shard, sequence number, NDC,\n' +
        'position, error), Lambda on-failure batch records (shard, sequence range, batch size, condition, time)\n' +
        'and malformed messages (id and why)',
    )
    .option(
      '--json',
      'one JSON object per line with its "kind" (letter with the record bytes in base64, lambda_batch, malformed)',
    )
    .option('--limit <n>', 'at most this many', (v) => Number(v), 1000)
    .action(listDeadLetters);
}

/** `drugsync dlq list`: every message of the queue, one line each, then a summary by kind. */
async function listDeadLetters(o: { json?: boolean; limit: number }): Promise<void> {
  const config = decodeEmbedderConfig();
  const log = createLogger({ service: 'dlq' });
  const rt = await createEmbedderRuntime(config, log);
  try {
    const messages = await queueMessages(rt.deps.dlq, o.limit);
    for (const m of messages) {
      process.stdout.write(
        (o.json
          ? JSON.stringify(messageJson(m, config.KINESIS_STREAM))
          : messageLine(m, config.KINESIS_STREAM)) + '\n',
      );
    }
    if (!o.json) process.stdout.write(listSummary(messages, rt.deps.dlq.kind) + '\n');
  } finally {
    await rt.close();
  }
}

function registerDlqReplayCommand(dlq: Command): void {
  dlq
    .command('replay')
    .description(
      're-apply dead-lettered records (still subject to the position rule: older than Redis → refused as ' +
        'stale, which counts as done) and re-read the ranges of Lambda on-failure batch records from Kinesis; ' +
        'a message is removed only once applied. Malformed messages and ranges no longer on the stream are ' +
        'reported and kept. Exits 1 if anything is left.',
    )
    .option('--id <id...>', 'only these messages (ids from `drugsync dlq list`)')
    .option('--json', 'print the report as JSON')
    .action(replayCommand);
}

/** `drugsync dlq replay`: re-applies the queue (or the given ids); exit code 1 when anything is left. */
async function replayCommand(o: { id?: string[]; json?: boolean }): Promise<void> {
  const config = decodeEmbedderConfig();
  const log = createLogger({ service: 'dlq' });
  const rt = await createEmbedderRuntime(config, log);
  const kinesis = createKinesis(config);
  try {
    const report = await replayDeadLetters(rt.deps, { ids: o.id, kinesis });
    printReplay(report, !!o.json);
    if (o.id && o.id.length > report.considered) {
      log.warn('some ids were not found in the dead-letter queue', {
        asked: o.id.length,
        found: report.considered,
      });
      process.exitCode = 1;
    }
    if (report.left > 0) process.exitCode = 1;
  } finally {
    kinesis.destroy();
    await rt.close();
  }
}

// ---------------------------------------------------------------- dlq output

function messageJson(m: QueueMessage, fallbackStream: string): Record<string, unknown> {
  if (m.kind === 'letter') return { kind: m.kind, ...m.letter };
  if (m.kind === 'lambda_batch')
    return { kind: m.kind, id: m.id, ...m.batch, stream: streamNameOf(m.batch, fallbackStream) };
  return { kind: m.kind, id: m.id, error: m.error.toJSON(), body: m.body };
}

function messageLine(m: QueueMessage, fallbackStream: string): string {
  if (m.kind === 'letter') {
    const l = m.letter;
    return `${l.id}  ${l.time}  ${l.shardId}/${l.sequenceNumber}  ndc=${l.ndc ?? '?'} pos=${l.pos ?? '?'}  [${l.error.code}] ${l.error.message}`;
  }
  if (m.kind === 'lambda_batch') {
    const b = m.batch;
    const why = [b.condition ?? 'condition ?', b.functionError].filter(Boolean).join(', ');
    return (
      `${m.id}  ${b.timestamp ?? '?'}  Lambda batch ${b.shardId} ${b.startSequenceNumber}..${b.endSequenceNumber}` +
      `  size=${b.batchSize ?? '?'}  [${why}]  stream=${streamNameOf(b, fallbackStream) ?? '?'}`
    );
  }
  return `${m.id}  MALFORMED  [${m.error.code}] ${String(m.error.context.reason ?? m.error.message)}`;
}

function listSummary(messages: readonly QueueMessage[], kind: string): string {
  const n = (k: QueueMessage['kind']) => messages.filter((m) => m.kind === k).length;
  return (
    `${n('letter')} dead-lettered record(s), ${n('lambda_batch')} Lambda batch record(s), ` +
    `${n('malformed')} malformed message(s) (${kind})`
  );
}

function printReplay(report: ReplayReport, json: boolean): void {
  const rows = report.outcomes.map((x) => ({
    id: x.letter.id,
    ndc: x.result.ndc ?? x.letter.ndc,
    status: x.result.status,
    detail: x.result.detail,
    removed: x.removed,
    error: x.error ? describeErrorMasked(x.error) : undefined,
  }));
  const batches = report.batches.map((b) => ({ ...b, error: b.error?.toJSON() }));
  const malformed = report.malformed.map((m) => ({ id: m.id, error: m.error.toJSON() }));
  if (json) {
    process.stdout.write(JSON.stringify({ ...report, outcomes: rows, batches, malformed }) + '\n');
    return;
  }
  for (const r of rows)
    process.stdout.write(
      `${r.id}  ndc=${r.ndc ?? '?'}  ${r.status} (${r.detail})${r.error ? `  ${r.error}` : ''}\n`,
    );
  for (const b of report.batches) {
    const range = `${b.batch.shardId} ${b.batch.startSequenceNumber}..${b.batch.endSequenceNumber}`;
    const counts = `${b.records} record(s): ${b.applied} applied, ${b.deadLettered} dead-lettered, ${b.failed} failed`;
    process.stdout.write(
      `${b.id}  Lambda batch ${range}  ${b.status}  ${counts}${b.removed ? '' : '  (kept)'}` +
        `${b.error ? `  ${describeErrorMasked(b.error)}` : ''}\n`,
    );
  }
  for (const m of report.malformed)
    process.stdout.write(`${m.id}  MALFORMED (kept)  ${describeErrorMasked(m.error)}\n`);
  process.stdout.write(
    `replayed ${report.considered}: applied ${report.applied}, removed ${report.removed}, still failing ${report.stillFailing}; ` +
      `Lambda batches ${report.batches.filter((b) => b.removed).length}/${report.batches.length} replayed; ` +
      `malformed ${report.malformed.length}; left in the queue ${report.left}\n`,
  );
}
