/**
 * Transaction hold: a transaction that deletes rows may insert them again further on (DELETE-all +
 * INSERT-all), and applying its deletes before its inserts would empty search for a moment. A shard keeps
 * reading, holding its records, while its batch ends inside such a transaction and more records are (or may
 * soon be) there; the binlog reader closes every such transaction with a 'commit' table event on every
 * shard. Past the hold bound the open transaction's deletes are deferred (deferred.ts) until that commit.
 *
 * Everything here is pure: the shard runner feeds it what it read and acts on its decision.
 */
import type { _Record } from '@aws-sdk/client-kinesis';
import { decodeChangeEvent, peekChangeEvent } from '../core/events.ts';

/** What the hold needs of a record, read from its JSON once without decoding it. */
export interface TxMark {
  /** the record's transaction id (null when it has none / is not JSON) */
  txid: string | null;
  /** its transaction id when it deletes a row, else null */
  deleteTx: string | null;
  /** the transaction id a 'commit' table event closes, else null */
  commitTx: string | null;
}

/** A record as read: its JSON bytes (decompressed) and its transaction mark. */
export interface HeldRecord extends _Record {
  tx: TxMark;
}

export function txMark(json: Uint8Array): TxMark {
  const { type, txid } = peekChangeEvent(json);
  return {
    txid,
    deleteTx: type === 'delete' ? txid : null,
    commitTx: type === 'commit' ? txid : null,
  };
}

/** Records held, and the transactions among them that deleted rows and have not committed yet. */
export interface TxHoldState {
  pending: HeldRecord[];
  openDeleteTxs: Set<string>;
  /** when the last record arrived (epoch ms): a caught-up shard waits `txWaitMs` past it */
  lastArrival: number;
}

export function emptyHold(now: number): TxHoldState {
  return { pending: [], openDeleteTxs: new Set(), lastArrival: now };
}

/** Adds freshly read records to the hold (opens / closes the transactions they delete in / commit). */
export function holdRecords(state: TxHoldState, read: readonly HeldRecord[], now: number): void {
  for (const r of read) {
    if (r.tx.deleteTx !== null) state.openDeleteTxs.add(r.tx.deleteTx);
    if (r.tx.commitTx !== null) state.openDeleteTxs.delete(r.tx.commitTx);
  }
  if (read.length > 0) state.lastArrival = now;
  state.pending.push(...read);
}

/** The held records ending inside a transaction that deleted rows and has not committed. */
export function endsInOpenDeleteTx(state: TxHoldState): boolean {
  const tail = state.pending.length > 0 ? (state.pending[state.pending.length - 1] as HeldRecord).tx : null;
  return tail !== null && tail.txid !== null && state.openDeleteTxs.has(tail.txid) && tail.commitTx === null;
}

export interface HoldInput {
  /** the shard has a next iterator (it is not at SHARD_END) */
  hasIterator: boolean;
  /** the stream has more right now (MillisBehindLatest > 0, or the read filled its limit) */
  moreOnStream: boolean;
  now: number;
  maxPending: number;
  txWaitMs: number;
}

/**
 * read-on: keep reading and holding; idle: nothing held; apply: apply what is held; defer-deletes: too
 * large to hold, the open transaction's deletes wait (durably) for its commit, the rest is applied.
 */
export type HoldDecision = 'read-on' | 'idle' | 'apply' | 'defer-deletes';

export function decideHold(state: TxHoldState, input: HoldInput): HoldDecision {
  const open = endsInOpenDeleteTx(state);
  const full = state.pending.length >= input.maxPending;
  const mayGetMore = input.moreOnStream || input.now - state.lastArrival < input.txWaitMs;
  if (input.hasIterator && open && !full && mayGetMore) return 'read-on';
  if (state.pending.length === 0) return 'idle';
  return open && full ? 'defer-deletes' : 'apply';
}

/** Takes every held record out of the hold (a batch is cut); also forgets the open transactions. */
export function takeHeld(state: TxHoldState): HeldRecord[] {
  const out = state.pending;
  state.pending = [];
  state.openDeleteTxs.clear();
  return out;
}

/**
 * Splits held records into those applied now and the delete events of still open transactions, grouped by
 * transaction (NDC and position each). A record that does not decode stays in the batch, which
 * dead-letters it with its reason.
 */
export function splitOpenDeletes(
  records: readonly HeldRecord[],
  open: ReadonlySet<string>,
): { keep: HeldRecord[]; deferred: Map<string, { ndc: string; pos: string }[]> } {
  const keep: HeldRecord[] = [];
  const deferred = new Map<string, { ndc: string; pos: string }[]>();
  for (const r of records) {
    const tx = r.tx.deleteTx;
    const ev = tx !== null && open.has(tx) ? decodeOrNull(r.Data ?? new Uint8Array()) : null;
    if (tx === null || ev === null || ev.type !== 'delete') {
      keep.push(r);
      continue;
    }
    const list = deferred.get(tx) ?? [];
    list.push({ ndc: ev.ndc, pos: ev.pos });
    deferred.set(tx, list);
  }
  return { keep, deferred };
}

function decodeOrNull(data: Uint8Array) {
  try {
    return decodeChangeEvent(data);
  } catch {
    return null; // undecodable: applied with the batch, which dead-letters it with its reason
  }
}
