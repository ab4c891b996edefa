/**
 * Structured logging: JSON lines when stderr is not a TTY (CI, ECS, Lambda), short readable lines on a TTY.
 * Secrets never reach the output: any field whose name looks like a secret is redacted, and values
 * registered with `registerSecret` are masked wherever they appear.
 */
import { DrugsyncError } from './errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /pass(word)?|secret|token|authorization|credential|api[_-]?key/i;
const secrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
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

function sanitize(value: unknown, depth = 0): unknown {
  if (value instanceof DrugsyncError) return value.toJSON();
  if (value instanceof Error) return { message: value.message, name: value.name };
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_FIELD.test(k) && v !== undefined && v !== '' ? '***' : sanitize(v, depth + 1);
  }
  return out;
}

export function createLogger(base: LogFields = {}, options: LoggerOptions = {}): Logger {
  const envLevel = process.env.LOG_LEVEL as LogLevel | undefined;
  const level = options.level ?? (envLevel && envLevel in LEVELS ? envLevel : 'info');
  const json = options.json ?? (process.env.LOG_FORMAT === 'json' || !process.stderr.isTTY);
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));

  const emit = (lvl: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    const all = sanitize({ ...base, ...fields }) as Record<string, unknown>;
    if (json) {
      write(redact(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...all })));
    } else {
      const extra = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(redact(`${lvl.toUpperCase().padEnd(5)} ${msg}${extra ? '  ' + extra : ''}`));
    }
  };

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, { level, json, write }),
  };
}
