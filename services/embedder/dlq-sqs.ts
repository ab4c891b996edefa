/**
 * The dead-letter queue on SQS (production, DLQ_QUEUE_URL): one message per letter, its body the message
 * format of dlq-codec.ts. `messages`/`list` receive with a short visibility timeout (the messages reappear
 * unless removed); `remove` deletes by the receipt handles of the last `messages`/`list`. With `markers`, a
 * record already dead-lettered is not sent again.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { decodeQueueMessage, encodeDeadLetter, lettersOf } from './dlq-codec.ts';
import type { DeadLetter, DeadLetterInput, QueueMessage } from './dlq-codec.ts';
import { DEFAULT_MARKER_TTL_SECONDS, queueFailure, queueOp, uniqueEntries } from './dlq-queue.ts';
import type { DeadLetterMarkers, DeadLetterQueue, QueuePlace } from './dlq-queue.ts';

/** One SendMessageBatch / DeleteMessageBatch call carries at most this many entries. */
const SQS_BATCH = 10;

const chunks = <T>(items: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += SQS_BATCH) out.push(items.slice(i, i + SQS_BATCH));
  return out;
};

/**
 * Records of `entries` not yet dead-lettered (no marker). SQS and Redis cannot be written atomically, so
 * the marker is set after the send (`markSent`): a process that dies between the two sends the letter
 * again on its retry (a duplicate, never a loss); a marker set before a send that fails would lose it.
 */
async function notYetSent(
  entries: readonly DeadLetterInput[],
  markers: DeadLetterMarkers | undefined,
): Promise<DeadLetterInput[]> {
  if (!markers) return [...entries];
  const unique = uniqueEntries(entries, markers.key);
  if (unique.length === 0) return unique;
  const seen = await markers.redis.mget(...unique.map((e) => markers.key(e.record)));
  return unique.filter((_, i) => seen[i] === null);
}

async function markSent(
  sent: { entry: DeadLetterInput; messageId: string }[],
  markers: DeadLetterMarkers | undefined,
): Promise<void> {
  if (!markers || sent.length === 0) return;
  const ttl = markers.ttlSeconds ?? DEFAULT_MARKER_TTL_SECONDS;
  const pipe = markers.redis.pipeline();
  for (const s of sent) pipe.set(markers.key(s.entry.record), s.messageId, 'EX', ttl);
  const res = await pipe.exec();
  for (const [err] of res ?? []) if (err) throw err;
}

export class SqsDeadLetterQueue implements DeadLetterQueue {
  readonly kind = 'sqs';
  /** message id → receipt handle of its last receive */
  private readonly receipts = new Map<string, string>();
  /** message id → its record's marker key */
  private readonly markerOf = new Map<string, string>();
  private readonly place: QueuePlace;

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly markers?: DeadLetterMarkers,
  ) {
    this.place = {
      transport: 'sqs',
      queue: queueUrl,
      check: 'check DLQ_QUEUE_URL and that this role may call sqs:SendMessage/ReceiveMessage/DeleteMessage',
    };
  }

  async put(entries: readonly DeadLetterInput[]): Promise<void> {
    const now = new Date();
    const todo = await queueOp('write', this.place, () => notYetSent(entries, this.markers));
    for (const chunk of chunks(todo)) await queueOp('write', this.place, () => this.sendChunk(chunk, now));
  }

  async messages(limit = 100): Promise<QueueMessage[]> {
    const out: QueueMessage[] = [];
    while (out.length < limit) {
      const received = await queueOp('read', this.place, () =>
        this.receive(Math.min(SQS_BATCH, limit - out.length)),
      );
      if (received.length === 0) break;
      out.push(...received);
    }
    return out;
  }

  async list(limit = 100): Promise<DeadLetter[]> {
    return lettersOf(await this.messages(limit));
  }

  async remove(ids: readonly string[]): Promise<number> {
    let removed = 0;
    for (const chunk of chunks(ids.filter((id) => this.receipts.has(id))))
      removed += await queueOp('remove', this.place, () => this.deleteChunk(chunk));
    return removed;
  }

  private async sendChunk(chunk: DeadLetterInput[], now: Date): Promise<void> {
    const out = await this.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: chunk.map((entry, j) => ({ Id: String(j), MessageBody: encodeDeadLetter(entry, now) })),
      }),
    );
    const sent = (out.Successful ?? []).map((s) => ({
      entry: chunk[Number(s.Id)] as DeadLetterInput,
      messageId: s.MessageId ?? '',
    }));
    await markSent(sent, this.markers);
    const failed = out.Failed ?? [];
    if (failed.length > 0) {
      const why = failed[0]?.Message ?? failed[0]?.Code ?? 'no reason given';
      throw queueFailure(
        new Error(`SQS refused ${failed.length} dead letter(s): ${why}`),
        'write',
        this.place,
      );
    }
  }

  /** One ReceiveMessage, decoded; remembers each message's receipt handle and marker. */
  private async receive(max: number): Promise<QueueMessage[]> {
    const res = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: max,
        VisibilityTimeout: 60,
        WaitTimeSeconds: 1,
      }),
    );
    return (res.Messages ?? []).map((m) => {
      const id = m.MessageId ?? '';
      if (m.ReceiptHandle) this.receipts.set(id, m.ReceiptHandle);
      const decoded = decodeQueueMessage(id, m.Body);
      if (this.markers && decoded.kind === 'letter') this.markerOf.set(id, this.markers.key(decoded.letter));
      return decoded;
    });
  }

  /** Deletes received messages and their records' markers; returns how many SQS deleted. */
  private async deleteChunk(chunk: string[]): Promise<number> {
    const res = await this.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: chunk.map((id, j) => ({ Id: String(j), ReceiptHandle: this.receipts.get(id) as string })),
      }),
    );
    const done = (res.Successful ?? []).map((s) => chunk[Number(s.Id)] as string);
    const keys = done.flatMap((id) => (this.markerOf.has(id) ? [this.markerOf.get(id) as string] : []));
    if (this.markers && keys.length > 0) await this.markers.redis.del(...keys);
    return done.length;
  }
}
