/**
 * The dead-letter queue as a Redis stream (locally, and wherever DLQ_QUEUE_URL is unset): one entry per
 * letter, its field `letter` holding the message body (dlq-codec.ts). The check of the record's marker, the
 * XADD and the marker are one script, so a record is dead-lettered once however often it is put.
 */
import type { RedisClient } from '../core/clients/redis.ts';
import type { Keys } from '../core/keys.ts';
import {
  decodeQueueMessage,
  encodeDeadLetter,
  lettersOf,
  malformedMessage,
  peekDeadLetterRecord,
} from './dlq-codec.ts';
import type { DeadLetter, DeadLetterInput, QueueMessage } from './dlq-codec.ts';
import { DEFAULT_MARKER_TTL_SECONDS, queueFailure, queueOp, uniqueEntries } from './dlq-queue.ts';
import type { DeadLetterQueue, QueuePlace } from './dlq-queue.ts';

const FIELD = 'letter';

/**
 * Adds the letter unless the record's marker exists, and sets the marker, atomically.
 * KEYS: stream, marker. ARGV: ttl seconds, max length, letter JSON. Returns the entry id or false.
 */
const PUT_ONCE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', '${FIELD}', ARGV[3])
redis.call('SET', KEYS[2], id, 'EX', tonumber(ARGV[1]))
return id
`;

export interface RedisQueueOptions {
  maxLen?: number;
  /** TTL of the per-record markers (TOMBSTONE_TTL_SECONDS) */
  markerTtlSeconds?: number;
}

/** Where the queue lives: the stream, and each record's marker beside it (under the state prefix). */
export type RedisQueueKeys = Pick<Keys, 'deadLetters' | 'deadLetterMarker'>;

type StreamEntry = [id: string, fields: string[]];

/** The message body of a stream entry: its `letter` field, or null. */
function entryBody(fields: readonly string[]): string | null {
  const i = fields.indexOf(FIELD);
  return i >= 0 && i % 2 === 0 ? (fields[i + 1] ?? null) : null;
}

/** A stream entry's message (an entry without a body is reported as malformed). */
function entryMessage([id, fields]: StreamEntry): QueueMessage {
  const body = entryBody(fields);
  if (body !== null) return decodeQueueMessage(id, body);
  const names = fields.filter((_, k) => k % 2 === 0).join(', ');
  return malformedMessage(
    id,
    fields.join(' '),
    `stream entry without a "${FIELD}" field (fields: ${names || 'none'})`,
  );
}

export class RedisStreamDeadLetterQueue implements DeadLetterQueue {
  readonly kind = 'redis';
  private readonly maxLen: number;
  private readonly ttl: number;
  private readonly key: string;
  private readonly markerKey: RedisQueueKeys['deadLetterMarker'];
  private readonly place: QueuePlace;

  constructor(
    private readonly redis: RedisClient,
    keys: RedisQueueKeys,
    opts: RedisQueueOptions = {},
  ) {
    this.maxLen = opts.maxLen ?? 1_000_000;
    this.ttl = opts.markerTtlSeconds ?? DEFAULT_MARKER_TTL_SECONDS;
    this.key = keys.deadLetters;
    this.markerKey = keys.deadLetterMarker;
    this.place = {
      transport: 'redis',
      queue: this.key,
      check: 'check that Redis is reachable (`npx drugsync stack status` locally)',
    };
  }

  async put(entries: readonly DeadLetterInput[]): Promise<void> {
    if (entries.length === 0) return;
    const now = new Date();
    const pipe = this.redis.pipeline();
    for (const entry of uniqueEntries(entries, this.markerKey)) {
      const args = [String(this.ttl), String(this.maxLen), encodeDeadLetter(entry, now)];
      pipe.eval(PUT_ONCE, 2, this.key, this.markerKey(entry.record), ...args);
    }
    const res = await queueOp('write', this.place, () => pipe.exec());
    for (const [err] of res ?? []) if (err) throw queueFailure(err, 'write', this.place);
  }

  async messages(limit = 1000): Promise<QueueMessage[]> {
    const rows = await queueOp('read', this.place, () =>
      this.redis.xrange(this.key, '-', '+', 'COUNT', limit),
    );
    return (rows as StreamEntry[]).map(entryMessage);
  }

  async list(limit = 1000): Promise<DeadLetter[]> {
    return lettersOf(await this.messages(limit));
  }

  /** XDEL of the entries, and DEL of the markers of the letters among them. */
  async remove(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return queueOp('remove', this.place, async () => {
      const read = this.redis.pipeline();
      for (const id of ids) read.xrange(this.key, id, id);
      const markers: string[] = [];
      for (const [err, rows] of (await read.exec()) ?? []) {
        if (err) throw err;
        for (const [, fields] of rows as StreamEntry[]) {
          const record = peekDeadLetterRecord(entryBody(fields));
          if (record) markers.push(this.markerKey(record));
        }
      }
      const removed = await this.redis.xdel(this.key, ...ids);
      if (markers.length > 0) await this.redis.del(...markers);
      return removed;
    });
  }
}
