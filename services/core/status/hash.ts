/**
 * Status hashes: a service's state as a flat Redis hash of text fields (`keys.serviceStatus(…)`, the re-sync's
 * status), declared once as a zod object of codecs, text in Redis ↔ a typed value. Each hash has one schema
 * (./reader.ts, ./embedder.ts, ./backfill.ts, ./resync.ts): its writer encodes with it, `drugsync status` and
 * `drugsync stream` decode with it, so a field renamed on one side fails to compile on the other.
 *
 * Encoding refuses a value the schema does not describe (NaN, an unknown state): a bug, thrown. Decoding never
 * throws: a status is read by an operator who needs the rest of it, so each field is decoded on its own, and
 * a missing required field or an unreadable one becomes a problem (shown as a warning) with the field left out.
 */
import { z } from 'zod';
import { DrugsyncError } from '../errors.ts';

/** A field's codec: text in the hash ↔ its value (optional fields are `.optional()`). */
type FieldSchema = z.ZodType<unknown, string | undefined>;

const INT_RE = /^-?\d+$/;
const NUMBER_RE = /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i;

/** A time written either as ms since the epoch or as an ISO date, read as ms since the epoch. */
function parseTime(text: string): number {
  return INT_RE.test(text) ? Number(text) : Date.parse(text);
}

const timeText = z
  .string()
  .refine((s) => Number.isFinite(parseTime(s)), 'not a time (ms since the epoch or an ISO date)');

/** The codecs status fields are made of. */
export const field = {
  /** free text */
  text: () => z.string(),
  /** an integer as its decimal text */
  int: () =>
    z.codec(z.string().regex(INT_RE, 'not an integer'), z.number().int(), {
      decode: (s) => Number(s),
      encode: (n) => String(n),
    }),
  /** a number; with `digits`, written with that many decimals (`toFixed`) */
  number: (digits?: number) =>
    z.codec(z.string().regex(NUMBER_RE, 'not a number'), z.number(), {
      decode: (s) => Number(s),
      encode: (n) => (digits === undefined ? String(n) : n.toFixed(digits)),
    }),
  /** a time (ms since the epoch) written as ms */
  epochMs: () => z.codec(timeText, z.number().int(), { decode: parseTime, encode: (ms) => String(ms) }),
  /** a time (ms since the epoch) written as an ISO date */
  isoTime: () =>
    z.codec(timeText, z.number().int(), { decode: parseTime, encode: (ms) => new Date(ms).toISOString() }),
  /** a boolean written `1` / `0` */
  flag: () =>
    z.codec(z.enum(['1', '0']), z.boolean(), { decode: (s) => s === '1', encode: (b) => (b ? '1' : '0') }),
  /** a boolean written `true` / `false` */
  trueFalse: () =>
    z.codec(z.enum(['true', 'false']), z.boolean(), {
      decode: (s) => s === 'true',
      encode: (b) => String(b) as 'true' | 'false',
    }),
  /** one of a fixed set of words */
  oneOf: <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values),
  /** a list of words without commas, written comma-separated */
  list: () =>
    z.codec(z.string(), z.array(z.string().regex(/^[^,]*$/, 'contains a comma')), {
      decode: (s) => (s === '' ? [] : s.split(',')),
      encode: (l) => l.join(','),
    }),
  /** a JSON value of `schema` */
  json: <T extends z.ZodType>(schema: T) =>
    z.codec(z.string(), schema, {
      decode: (text, ctx) => {
        try {
          return JSON.parse(text) as z.input<T>;
        } catch (e) {
          ctx.issues.push({ code: 'custom', input: text, message: `not JSON: ${(e as Error).message}` });
          return z.NEVER;
        }
      },
      encode: (v) => JSON.stringify(v),
    }),
  /** `inner`, or null written as the empty string */
  orEmpty: <T extends z.ZodType<unknown, string>>(inner: T) =>
    z.codec(z.string(), inner.nullable(), {
      decode: (s) => (s === '' ? null : s) as z.input<T> | null,
      encode: (text) => (text === null ? '' : (text as string)),
    }),
};

/** A status read back: the fields that could be decoded, and what was wrong with the others. */
export interface Decoded<T> {
  value: Partial<T>;
  problems: string[];
}

export interface StatusHash<S extends Record<string, FieldSchema>> {
  /** what the hash is, in messages ("binlog-reader status") */
  readonly name: string;
  readonly schema: z.ZodObject<S>;
  /** every field the schema knows */
  readonly fields: readonly (keyof S & string)[];
  /** The hash fields of a value (optional fields left out when undefined); throws on a value off-schema. */
  encode(value: z.output<z.ZodObject<S>>): Record<string, string>;
  /** A hash read back (null when it has no fields: the service never wrote it); never throws. */
  decode(hash: Record<string, string>): Decoded<z.output<z.ZodObject<S>>> | null;
}

/** The first issues of a zod error, one line. */
function issueText(e: z.ZodError, max = 3): string {
  const text = e.issues
    .slice(0, max)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
  return e.issues.length > max ? `${text}; ${e.issues.length - max} more` : text;
}

/** The text of a raw value in a problem, cut short. */
function quoted(raw: string): string {
  return JSON.stringify(raw.length > 60 ? `${raw.slice(0, 57)}...` : raw);
}

/** A status hash of these fields. */
export function statusHash<S extends Record<string, FieldSchema>>(name: string, shape: S): StatusHash<S> {
  const schema = z.object(shape);
  type Value = z.output<typeof schema>;
  const fields = Object.keys(shape) as (keyof S & string)[];
  const required = new Set(fields.filter((f) => !shape[f]!.safeDecode(undefined).success));
  return {
    name,
    schema,
    fields,
    encode(value) {
      const r = z.safeEncode(schema, value);
      if (!r.success) {
        throw new DrugsyncError('INTERNAL', `${name}: a value the status schema refuses`, {
          context: { problems: issueText(r.error) },
          remedy: 'a bug: report it with this message (the status hash keeps its previous fields)',
        });
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.data as Record<string, unknown>))
        if (typeof v === 'string') out[k] = v;
      return out;
    },
    decode(hash) {
      if (Object.keys(hash).length === 0) return null;
      const value: Record<string, unknown> = {};
      const problems: string[] = [];
      const missing: string[] = [];
      for (const f of fields) {
        const raw = hash[f];
        if (raw === undefined) {
          if (required.has(f)) missing.push(f);
          continue;
        }
        const r = shape[f]!.safeDecode(raw);
        if (r.success) value[f] = r.data;
        else problems.push(`${name}: ${f} ${quoted(raw)} unreadable (${issueText(r.error)})`);
      }
      if (missing.length) problems.unshift(`${name}: no ${missing.join(', ')} (written by another version?)`);
      return { value: value as Partial<Value>, problems };
    },
  };
}

/** Seconds rounded to the millisecond (ages computed from written values, without float noise in --json). */
export function toMs(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/** The value type of a status hash. */
export type StatusOf<H> = H extends StatusHash<infer S> ? z.output<z.ZodObject<S>> : never;
