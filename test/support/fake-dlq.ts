/** In-memory dead-letter queue for unit tests, following DeadLetterQueue (services/embedder/dlq.ts). */
import type {
  DeadLetter,
  DeadLetterInput,
  DeadLetterQueue,
  QueueMessage,
} from '../../services/embedder/dlq.ts';
import { letterMessage, toDeadLetter } from '../../services/embedder/dlq.ts';

export class MemoryDeadLetterQueue implements DeadLetterQueue {
  readonly kind = 'redis' as const;
  readonly letters: DeadLetter[] = [];
  private n = 0;
  async put(entries: readonly DeadLetterInput[]): Promise<void> {
    for (const e of entries) this.letters.push(toDeadLetter(e, `${Date.now()}-${this.n++}`, new Date()));
  }
  async messages(limit = 1000): Promise<QueueMessage[]> {
    return (await this.list(limit)).map(letterMessage);
  }
  async list(limit = 1000): Promise<DeadLetter[]> {
    return this.letters.slice(0, limit);
  }
  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const i = this.letters.findIndex((l) => l.id === id);
      if (i >= 0) {
        this.letters.splice(i, 1);
        n++;
      }
    }
    return n;
  }
}
