/**
 * Chaos: a writer makes ~200 changes/s for 60 s while the binlog reader and the embedder are each killed
 * with -9 and restarted three times at random moments, and Redis is restarted once. After the writer stops
 * and the pipeline drains, `drugsync verify` must report 0 missing, 0 extra, 0 stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createLogger } from '../services/core/log.ts';
import { STATE_DIR } from '../services/core/paths.ts';
import { startSimulator } from '../services/cli/simulate.ts';
import { stackUp } from '../services/stack/stack.ts';
import { preparePipeline, runCli, startProc } from './support/pipeline.ts';
import type { Proc } from './support/pipeline.ts';
import { eventually, suiteEnv } from './support/stack.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chaos: kill -9 every service mid-stream', () => {
  const env = suiteEnv('chaos');
  let admin: Connection;
  const live: Record<string, Proc> = {};

  beforeAll(async () => {
    ({ admin } = await preparePipeline(env, 10_000, 5));
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    live.reader = startProc(env, ['binlog-reader']);
    live.embedder = startProc(env, ['embedder']);
  });
  afterAll(async () => {
    for (const p of Object.values(live)) p.child.kill('SIGTERM');
    const killer = setTimeout(() => Object.values(live).forEach((p) => p.child.kill('SIGKILL')), 15_000);
    await Promise.all(Object.values(live).map((p) => p.exited));
    clearTimeout(killer);
    await admin.end();
  });

  it('converges to exactly MySQL after every service was killed mid-stream', async () => {
    // Prepare: the kill schedule, random within the 60 s of writing.
    const log = createLogger({ service: 'chaos' }, { level: 'warn' });
    const events = [
      ...[0, 1, 2].map(() => ({ at: 3_000 + Math.random() * 52_000, what: 'reader' })),
      ...[0, 1, 2].map(() => ({ at: 3_000 + Math.random() * 52_000, what: 'embedder' })),
      { at: 15_000 + Math.random() * 30_000, what: 'redis' },
    ].sort((a, b) => a.at - b.at);
    const sim = await startSimulator(admin, {
      rate: 200,
      schema: env.DB_NAME as string,
      table: 'rndc14',
      seed: 99,
      log,
    });
    const t0 = Date.now();
    let restarts = 0;

    // Act
    for (const e of events) {
      await sleep(Math.max(0, e.at - (Date.now() - t0)));
      if (e.what === 'redis') {
        const pid = Number(fs.readFileSync(path.join(STATE_DIR, 'run', 'redis.pid'), 'utf8'));
        process.kill(pid, 'SIGKILL');
        // Restart it (stack up restarts only what is down; Redis replays its AOF). Until the killed process
        // has released its port, stack up refuses: retry for a while.
        await eventually(
          async () => {
            await sleep(500);
            await stackUp(log);
            return true;
          },
          60_000,
          'Redis restarted',
        );
      } else {
        const p = live[e.what] as Proc;
        p.child.kill('SIGKILL');
        await p.exited;
        live[e.what] = startProc(env, [e.what === 'reader' ? 'binlog-reader' : 'embedder']);
      }
      restarts++;
    }
    await sleep(Math.max(0, 60_000 - (Date.now() - t0)));
    await sim.stop();
    const writerStopped = Date.now();
    const verdict = await eventually(
      async () => {
        const v = await runCli(env, ['verify', '--json']);
        return v.json.ok === true ? v.json : null;
      },
      240_000,
      'verify to report Redis equal to MySQL',
    );
    const convergedSeconds = (Date.now() - writerStopped) / 1000;
    process.stdout.write(
      `chaos: ${sim.stats.changes} changes (${sim.stats.errors} rejected by MySQL), ${restarts} kills/restarts, ` +
        `converged ${convergedSeconds.toFixed(1)} s after the writer stopped\n`,
    );

    // Assess
    expect(verdict).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    expect(sim.stats.changes).toBeGreaterThan(5_000);
    expect(restarts).toBe(7);
  }, 480_000);
});
