/**
 * The cells of `drugsync status`: a row's shape, and the formats of its numbers, sizes, durations, ages and
 * positions. Pure.
 */
import type { BinlogPosition } from '../core/position.ts';

export type Level = 'ok' | 'info' | 'warn' | 'bad';

export interface StatusRow {
  part: string;
  state: string;
  level: Level;
  lag: string;
  rate: string;
  /** the position or time the part last checkpointed, and how long ago */
  checkpoint: string;
  details: string;
}

/** An empty cell. */
export const NONE = '—';

/** A row of `part`: empty cells but those given. */
export function row(part: string, over: Partial<StatusRow>): StatusRow {
  return { part, state: NONE, level: 'info', lag: NONE, rate: NONE, checkpoint: NONE, details: '', ...over };
}

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** 12,345 (no fraction); `unit` appended with a space. */
export function count(n: number, unit?: string): string {
  const text = intFormat.format(n);
  return unit ? `${text} ${unit}` : text;
}

/** 12.5 (at most one decimal). */
export function decimal(n: number): string {
  return oneDecimal.format(n);
}

/** 1,234 events/s; one decimal below 10 (0.4 events/s). */
export function rate(perSecond: number, unit: string): string {
  return `${(perSecond < 10 ? oneDecimal : intFormat).format(perSecond)} ${unit}/s`;
}

/** 512 B, 12.3 KiB, 4.5 MiB, 1.2 GiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${intFormat.format(v)} B` : `${oneDecimal.format(v)} ${units[u]}`;
}

/** 0.4 s, 42 s, 3 min 12 s, 5 h 3 min, 2 d 4 h. */
export function duration(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 10) return `${oneDecimal.format(s)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small ? `${count(big)} ${bigUnit} ${small} ${smallUnit}` : `${count(big)} ${bigUnit}`;
  if (s < 3600) return pair(Math.floor(s / 60), 'min', Math.floor(s % 60), 's');
  if (s < 86400) return pair(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min');
  return pair(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h');
}

/** How long before `now` the time `atMs` was ("3 s ago"); null when unknown. */
export function ago(atMs: number | null | undefined, now: number): string | null {
  return atMs === null || atMs === undefined ? null : `${duration((now - atMs) / 1000)} ago`;
}

/** An ISO date's age ("3 s ago"); null when absent or unreadable. */
export function agoIso(iso: string | null | undefined, now: number): string | null {
  const at = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(at) ? ago(at, now) : null;
}

export function position(p: BinlogPosition | null): string {
  return p ? `${p.file}:${p.pos}` : NONE;
}

/** The labelled counts of `o` that are known, joined: "12 written, 3 deleted". */
export function counts<T extends object>(o: T, fields: readonly (readonly [keyof T, string])[]): string {
  return fields
    .map(([key, label]) => [o[key], label] as const)
    .filter((x): x is readonly [T[keyof T] & number, string] => typeof x[0] === 'number')
    .map(([n, label]) => `${count(n)} ${label}`)
    .join(', ');
}

/** The parts that are text, joined with ` · `. */
export function joinParts(parts: readonly (string | null | false | undefined)[]): string {
  return parts.filter((x): x is string => typeof x === 'string' && x !== '').join(' · ');
}
