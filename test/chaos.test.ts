/**
 * Chaos: a writer makes ~200 changes/s for 60 s while the binlog reader and the embedder are each killed
 * with -9 and restarted three times at random moments, and Redis is restarted once. After the writer stops
 * and the pipeline drains, `drugsync verify` must report 0 missing, 0 extra, 0 stale.
 *
 * The kill times come from a seeded generator: the seed and every kill time are printed, and `CHAOS_SEED=N`
 * replays a run's schedule (test/support/random.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../services/core/log.ts';
import { STATE_DIR } from '../services/core/paths.ts';
import { stackUp } from '../services/stack/stack.ts';
import { startStreamingPipeline } from './support/pipeline.ts';
import type { StreamingPipeline } from './support/pipeline.ts';
import { seededRandom } from './support/random.ts';
import { eventually, suiteEnv } from './support/stack.ts';
import { whileWriting } from './support/writer.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WRITE_MS = 60_000;

type Target = 'reader' | 'embedder' | 'redis';

/** The kill schedule: each service three times in 3–55 s, Redis once in 15–45 s, in time order. */
function killSchedule(): { seed: number; events: { at: number; what: Target }[] } {
  const random = seededRandom('CHAOS_SEED', 'chaos');
  const events = [
    ...[0, 1, 2].map(() => ({ at: random.between(3_000, 55_000), what: 'reader' as const })),
    ...[0, 1, 2].map(() => ({ at: random.between(3_000, 55_000), what: 'embedder' as const })),
    { at: random.between(15_000, 45_000), what: 'redis' as const },
  ].sort((a, b) => a.at - b.at);
  process.stdout.write(
    `chaos: kill schedule ${events.map((e) => `${e.what} at ${(e.at / 1000).toFixed(1)} s`).join(', ')}\n`,
  );
  return { seed: random.seed, events };
}

/** kill -9 of the stack's Redis, then `stack up` until it is back (it replays its AOF). */
async function restartRedis(log: ReturnType<typeof createLogger>): Promise<void> {
  const pid = Number(fs.readFileSync(path.join(STATE_DIR, 'run', 'redis.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  // Until the killed process has released its port, stack up refuses: retry for a while.
  await eventually(
    async () => {
      await sleep(500);
      await stackUp(log);
      return true;
    },
    60_000,
    'Redis restarted',
  );
}

describe('chaos: kill -9 every service mid-stream', () => {
  const env = suiteEnv('chaos');
  let pipeline: StreamingPipeline;

  beforeAll(async () => {
    pipeline = await startStreamingPipeline(env, 10_000, 5);
  });
  afterAll(async () => {
    await pipeline?.stop();
    await pipeline?.admin.end();
  });

  it('converges to exactly MySQL after every service was killed mid-stream', async () => {
    // Prepare: the kill schedule, random within the 60 s of writing (seeded, printed)
    const log = createLogger({ service: 'chaos' }, { level: 'warn' });
    const { seed, events } = killSchedule();

    // Act: the writer runs for 60 s while the schedule is carried out, then stops; the pipeline converges
    const run = await whileWriting(env, { rate: 200, seed: 99 }, async () => {
      const t0 = Date.now();
      let kills = 0;
      for (const e of events) {
        await sleep(Math.max(0, e.at - (Date.now() - t0)));
        process.stdout.write(
          `chaos: t+${((Date.now() - t0) / 1000).toFixed(1)} s kill -9 ${e.what} (planned ${(e.at / 1000).toFixed(1)} s, seed ${seed})\n`,
        );
        if (e.what === 'redis') await restartRedis(log);
        else await pipeline.restart(e.what);
        kills++;
      }
      await sleep(Math.max(0, WRITE_MS - (Date.now() - t0)));
      return kills;
    });
    process.stdout.write(
      `chaos: ${run.writer.changes} changes (${run.writer.errors} rejected by MySQL), ${run.result} kills/restarts, ` +
        `converged ${run.convergedSeconds.toFixed(1)} s after the writer stopped (seed ${seed})\n`,
    );

    // Assess
    expect(run.verify).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    expect(run.writer.changes).toBeGreaterThan(5_000);
    expect(run.result).toBe(7);
  }, 480_000);
});
