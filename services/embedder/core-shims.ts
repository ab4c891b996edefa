/**
 * Stand-in for `peekChangeEvent` of services/core/events.ts (issue 16), with its signature; it goes, and
 * its importer (tx-hold.ts) switches to the core module, once that lands.
 */
import type { ChangeEvent } from '../core/events.ts';

const TYPE_RE = /"type":"([a-z]+)"/;
const TXID_RE = /"txid":"((?:[^"\\]|\\.)*)"/;
const TYPES = new Set<string>(['insert', 'update', 'delete', 'truncate', 'resync', 'commit']);

/** An event's type and transaction id read from its JSON text without parsing it (null when absent). */
export function peekChangeEvent(json: Uint8Array): { type: ChangeEvent['type'] | null; txid: string | null } {
  const text = Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
  const t = TYPE_RE.exec(text)?.[1];
  const txid = TXID_RE.exec(text)?.[1] ?? null;
  return { type: t !== undefined && TYPES.has(t) ? (t as ChangeEvent['type']) : null, txid };
}
