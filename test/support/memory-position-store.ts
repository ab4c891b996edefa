/**
 * An in-memory BinlogPositionStore (services/core/checkpoint.ts) for unit tests and the benchmarks: what the
 * reader loads and saves, and every position it saved, in order.
 */
import type { BinlogPositionStore } from '../../services/core/checkpoint.ts';
import type { BinlogPosition } from '../../services/core/position.ts';

export function createMemoryPositionStore(initial: BinlogPosition | null = null): BinlogPositionStore & {
  saves: BinlogPosition[];
} {
  let current = initial;
  const saves: BinlogPosition[] = [];
  return {
    saves,
    load: async () => current,
    save: async (p) => {
      current = { ...p };
      saves.push({ ...p });
    },
    clear: async () => {
      current = null;
    },
  };
}
