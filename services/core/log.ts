/**
 * Structured logging: JSON lines when stderr is not a TTY (CI, ECS, Lambda), short readable lines on a TTY.
 *
 * Secrets never reach the output. Every record is masked before it is serialised: each string in it
 * (message, fields, nested objects and arrays, error messages, causes, contexts) has every value
 * registered with `registerSecret` replaced by `***`, and any field whose name looks like a secret is
 * redacted whole. Masking before serialisation matters: a secret holding `"` or `\` is written escaped in
 * JSON, where masking the serialised line would no longer find it. (The serialised line is masked once
 * more, and the JSON-escaped form of each secret is registered too, for text that already holds JSON.)
 *
 * Values shorter than 4 characters (and blank ones) are not registered: masking them would rewrite every
 * log line that happens to contain those characters, and would show where they occur. Fields named like
 * secrets are still redacted whatever their length; a real password is never that short.
 */
import { DrugsyncError, errorMessage } from './errors.ts';

/** The one level vocabulary of every log line (JSON `level`, text prefix, LOG_LEVEL). */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** The keys of a record itself: a field of the same name is written as `field_<name>` (see normaliseFields). */
const RECORD_KEYS = new Set(['time', 'level', 'msg']);
const SECRET_FIELD = /pass(word)?|secret|token|authorization|credential|api[_-]?key/i;
/** Names of identifiers that merely point at a secret (DB_SECRET_ARN, secret_arn): shown. */
const SECRET_REFERENCE_FIELD = /arn$/i;
const MASK = '***';
export const MIN_SECRET_LENGTH = 4;
const MAX_DEPTH = 8;

const secrets = new Set<string>();
let ordered: string[] = [];

function addSecret(value: string): void {
  if (secrets.has(value)) return;
  secrets.add(value);
  // Longest first, so a secret that contains another is masked whole.
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/**
 * Registers a secret's value for masking; returns false when it is too short or blank to be masked
 * (see the module comment). Its JSON-escaped form is registered too when it differs.
 */
export function registerSecret(value: string | undefined): boolean {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH || value.trim() === '') return false;
  addSecret(value);
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) addSecret(escaped);
  return true;
}

/** The text with every registered secret replaced by `***`. */
export function redact(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join(MASK);
  return out;
}

function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name) && !SECRET_REFERENCE_FIELD.test(name);
}

function maskError(e: Error, depth: number, seen: WeakSet<object>): unknown {
  if (e instanceof DrugsyncError) return maskValue(e.toJSON(), depth, seen);
  const out: Record<string, unknown> = { name: e.name, message: redact(e.message) };
  if (e.cause !== undefined) out.cause = maskValue(e.cause, depth + 1, seen);
  return out;
}

function maskBeyondDepth(value: unknown): string {
  try {
    return redact(JSON.stringify(value) ?? String(value));
  } catch {
    return '[unserialisable]';
  }
}

function maskObject(value: object, depth: number, seen: WeakSet<object>): unknown {
  if (seen.has(value)) return '[circular]';
  seen.add(value); // ancestors only: the same object twice side by side is not a cycle
  try {
    return maskObjectOnce(value, depth, seen);
  } finally {
    seen.delete(value);
  }
}

function maskObjectOnce(value: object, depth: number, seen: WeakSet<object>): unknown {
  if (value instanceof Error) return maskError(value, depth, seen);
  if (Array.isArray(value)) return value.map((v) => maskValue(v, depth + 1, seen));
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return maskValue(toJSON.call(value), depth + 1, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] =
      isSecretField(k) && v !== undefined && v !== null && v !== '' ? MASK : maskValue(v, depth + 1, seen);
  }
  return out;
}

/**
 * A copy of the value with every string masked, deep (objects, arrays, errors with their causes and
 * contexts); errors become plain records (DrugsyncError: its toJSON()). Safe to serialise.
 */
export function maskValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return maskBeyondDepth(value);
  return maskObject(value, depth, seen);
}

/** An error as one masked line for people (DrugsyncError: describe(), with its cause and remedy). */
export function describeErrorMasked(e: unknown): string {
  return redact(errorMessage(e));
}

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  json?: boolean;
  write?: (line: string) => void;
}

/**
 * The fields as a record can carry them, so that no line says `undefined` or `NaN` and `level` is always
 * the record's own:
 * - a field whose value is `undefined` is left out (JSON drops it anyway; the text form printed `undefined`);
 * - a number that is not finite (NaN, ±Infinity: JSON writes null, the text form NaN) is left out and its
 *   name listed in `non_finite_fields`, so the caller's bug shows without a made-up value;
 * - a field named like a key of the record itself (`time`, `level`, `msg`) is written as `field_<name>`
 *   (a `level: 6` field replaced the record's level in JSON).
 * Top-level fields only: nested values are the caller's objects, serialised as they are.
 */
export function normaliseFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  const nonFinite: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) {
      nonFinite.push(k);
      continue;
    }
    out[RECORD_KEYS.has(k) ? `field_${k}` : k] = v;
  }
  if (nonFinite.length > 0) out.non_finite_fields = nonFinite;
  return out;
}

/** A LOG_LEVEL value as a level of the vocabulary, or undefined. */
export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  return (LOG_LEVELS as readonly (string | undefined)[]).includes(value) ? (value as LogLevel) : undefined;
}

/** One log record as a line: normalised, masked, then serialised (JSON or text), then masked once more. */
export function formatRecord(
  lvl: LogLevel,
  msg: string,
  fields: LogFields,
  json: boolean,
  time = new Date(),
): string {
  const all = maskValue(normaliseFields(fields)) as Record<string, unknown>;
  const text = redact(msg);
  if (json) return redact(JSON.stringify({ time: time.toISOString(), level: lvl, msg: text, ...all }));
  const extra = Object.entries(all)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return redact(`${lvl.toUpperCase().padEnd(5)} ${text}${extra ? '  ' + extra : ''}`);
}

/** LOG_FORMAT=json or text decides; otherwise JSON lines when stderr is not a TTY. */
function logFormatIsJson(): boolean {
  const format = process.env.LOG_FORMAT?.toLowerCase();
  if (format === 'json' || format === 'text') return format === 'json';
  return !process.stderr.isTTY;
}

export function createLogger(base: LogFields = {}, options: LoggerOptions = {}): Logger {
  const level = options.level ?? parseLogLevel(process.env.LOG_LEVEL) ?? 'info';
  const json = options.json ?? logFormatIsJson();
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));

  const emit = (lvl: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    write(formatRecord(lvl, msg, { ...base, ...fields }, json));
  };

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, { level, json, write }),
  };
}
