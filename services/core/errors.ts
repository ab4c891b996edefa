/**
 * One base error class for the whole project. Every error carries a stable code, the context
 * needed to act on it (NDC, binlog position, shard, key, port, ...) and, where there is one, a remedy.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  SECRET_INVALID: 'SECRET_INVALID',
  STACK_START_FAILED: 'STACK_START_FAILED',
  STACK_PORT_IN_USE: 'STACK_PORT_IN_USE',
  STACK_NOT_RUNNING: 'STACK_NOT_RUNNING',
  TOOL_INSTALL_FAILED: 'TOOL_INSTALL_FAILED',
  MYSQL_QUERY_FAILED: 'MYSQL_QUERY_FAILED',
  MYSQL_PREFLIGHT_FAILED: 'MYSQL_PREFLIGHT_FAILED',
  BINLOG_PURGED: 'BINLOG_PURGED',
  BINLOG_NO_START_POSITION: 'BINLOG_NO_START_POSITION',
  BINLOG_DECODE_FAILED: 'BINLOG_DECODE_FAILED',
  BINLOG_STALLED: 'BINLOG_STALLED',
  BINLOG_SOURCE_CHANGED: 'BINLOG_SOURCE_CHANGED',
  CHECKPOINT_BACKWARDS: 'CHECKPOINT_BACKWARDS',
  READER_LEASE_HELD: 'READER_LEASE_HELD',
  CONSUMER_LEASE_HELD: 'CONSUMER_LEASE_HELD',
  SUPERVISOR_RUNNING: 'SUPERVISOR_RUNNING',
  KINESIS_PUT_FAILED: 'KINESIS_PUT_FAILED',
  KINESIS_PUT_STALLED: 'KINESIS_PUT_STALLED',
  KINESIS_RECORD_TOO_LARGE: 'KINESIS_RECORD_TOO_LARGE',
  KINESIS_READ_FAILED: 'KINESIS_READ_FAILED',
  KINESIS_LIST_SHARDS_FAILED: 'KINESIS_LIST_SHARDS_FAILED',
  STREAM_RECORD_INVALID: 'STREAM_RECORD_INVALID',
  DLQ_MESSAGE_INVALID: 'DLQ_MESSAGE_INVALID',
  DLQ_REPLAY_FAILED: 'DLQ_REPLAY_FAILED',
  DLQ_WRITE_FAILED: 'DLQ_WRITE_FAILED',
  DLQ_READ_FAILED: 'DLQ_READ_FAILED',
  DLQ_REMOVE_FAILED: 'DLQ_REMOVE_FAILED',
  REDIS_UNAVAILABLE: 'REDIS_UNAVAILABLE',
  REDIS_COMMAND_FAILED: 'REDIS_COMMAND_FAILED',
  INDEX_SCHEMA_MISMATCH: 'INDEX_SCHEMA_MISMATCH',
  /** a warning, not thrown: the server built the vector index otherwise than asked (LeanVec4x8 → GlobalSQ8) */
  INDEX_VECTOR_SUBSTITUTED: 'INDEX_VECTOR_SUBSTITUTED',
  REDIS_MODULE_MISSING: 'REDIS_MODULE_MISSING',
  EMBEDDING_THROTTLED: 'EMBEDDING_THROTTLED',
  EMBEDDING_TRANSIENT: 'EMBEDDING_TRANSIENT',
  EMBEDDING_FAILED: 'EMBEDDING_FAILED',
  EVENT_DECODE_FAILED: 'EVENT_DECODE_FAILED',
  EVENT_VERSION_UNSUPPORTED: 'EVENT_VERSION_UNSUPPORTED',
  ROW_INVALID: 'ROW_INVALID',
  CHECKPOINT_INVALID: 'CHECKPOINT_INVALID',
  BACKFILL_INCOMPLETE: 'BACKFILL_INCOMPLETE',
  VERIFY_MISMATCH: 'VERIFY_MISMATCH',
  SNAPSHOT_FAILED: 'SNAPSHOT_FAILED',
  SEED_FAILED: 'SEED_FAILED',
  ABORTED: 'ABORTED',
  INTERNAL: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export type ErrorContext = Record<string, string | number | boolean | null | undefined | string[]>;

export interface DrugsyncErrorOptions {
  context?: ErrorContext;
  remedy?: string;
  cause?: unknown;
  /** true when retrying the same operation later may succeed (throttling, timeouts, outages). */
  retryable?: boolean;
}

export class DrugsyncError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  readonly remedy: string | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: DrugsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DrugsyncError';
    this.code = code;
    this.context = options.context ?? {};
    this.remedy = options.remedy;
    this.retryable = options.retryable ?? false;
  }

  /** One line for humans: message, context and remedy. */
  describe(): string {
    const ctx = Object.entries(this.context)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(' ');
    const cause = this.cause instanceof Error ? ` (cause: ${this.cause.message})` : '';
    return `[${this.code}] ${this.message}${ctx ? ` {${ctx}}` : ''}${cause}${this.remedy ? ` — remedy: ${this.remedy}` : ''}`;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      context: this.context,
      remedy: this.remedy,
      retryable: this.retryable,
      cause: this.cause instanceof Error ? this.cause.message : undefined,
    };
  }
}

export function isDrugsyncError(e: unknown, code?: ErrorCode): e is DrugsyncError {
  return e instanceof DrugsyncError && (code === undefined || e.code === code);
}

/** Wraps any thrown value into a DrugsyncError, keeping the original as cause. */
export function wrapError(
  e: unknown,
  code: ErrorCode,
  message: string,
  options: Omit<DrugsyncErrorOptions, 'cause'> = {},
): DrugsyncError {
  if (e instanceof DrugsyncError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new DrugsyncError(code, `${message}: ${detail}`, { ...options, cause: e });
}

export function errorMessage(e: unknown): string {
  if (e instanceof DrugsyncError) return e.describe();
  if (e instanceof Error) return e.message;
  return String(e);
}
