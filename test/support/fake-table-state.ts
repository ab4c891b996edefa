/** In-memory table state for unit tests, following TableState (services/embedder/table-state.ts). */
import type { TableEvent } from '../../services/core/events.ts';
import type { SourcePosition } from '../../services/core/position.ts';
import type { PendingResync, PendingTruncate, TableState } from '../../services/embedder/table-state.ts';

export class MemoryTableState implements TableState {
  truncate: PendingTruncate | null = null;
  floor: SourcePosition | null = null;
  readonly resyncs = new Map<string, PendingResync>();
  resyncFloor: SourcePosition | null = null;
  async read() {
    return {
      truncate: this.truncate ? { ...this.truncate, shards: [...this.truncate.shards] } : null,
      floor: this.floor,
      resyncs: [...this.resyncs.values()],
      resyncFloor: this.resyncFloor,
    };
  }
  async recordTruncate(e: TableEvent, shardId: string, now: number): Promise<boolean> {
    if (this.floor && this.floor >= e.pos) return false;
    if (this.truncate && this.truncate.pos > e.pos) return false;
    if (this.truncate && this.truncate.pos === e.pos) {
      if (!this.truncate.shards.includes(shardId)) this.truncate.shards.push(shardId);
      return false;
    }
    this.truncate = { pos: e.pos, statement: e.statement, seenAt: now, lastRowAt: now, shards: [shardId] };
    return true;
  }
  async noteRowActivity(now: number): Promise<void> {
    if (this.truncate && now > this.truncate.lastRowAt) this.truncate.lastRowAt = now;
  }
  async recordResync(e: TableEvent, shardId: string, now: number): Promise<number> {
    if (this.resyncFloor && this.resyncFloor >= e.pos) return this.resyncs.size;
    const cur = this.resyncs.get(e.pos) ?? {
      pos: e.pos,
      statement: e.statement,
      ts: e.ts,
      seenAt: now,
      shards: [],
    };
    if (!cur.shards.includes(shardId)) cur.shards.push(shardId);
    this.resyncs.set(e.pos, cur);
    return this.resyncs.size;
  }
  async completeResync(pos: SourcePosition): Promise<void> {
    if (!this.resyncFloor || this.resyncFloor < pos) this.resyncFloor = pos;
    for (const k of [...this.resyncs.keys()]) if (k <= pos) this.resyncs.delete(k);
  }
  async completeTruncate(pos: SourcePosition): Promise<void> {
    if (this.truncate?.pos === pos) this.truncate = null;
    if (!this.floor || this.floor < pos) this.floor = pos;
  }
}
