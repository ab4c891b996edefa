/**
 * Watching a load (issue 9) go through the running pipeline, for tests and `npm run bench -- loads`: the
 * pipeline has drained when every shard's checkpoint is at the newest record and no load, truncate or
 * resync is pending; the embedder's `last_load` (or the re-sync's outcome) then says what the load did.
 */
import type { Env } from '../../services/core/config.ts';
import type { StatusReport } from '../../services/cli/status.ts';
import { runCli } from './pipeline.ts';
import { eventually } from './stack.ts';

export async function pipelineStatus(env: Env): Promise<StatusReport> {
  const r = await runCli(env, ['status', '--json'], 60_000);
  if (r.status !== 0) throw new Error(`drugsync status failed: ${r.stderr.slice(-2000)}`);
  return r.json as unknown as StatusReport;
}

export function drained(s: StatusReport): boolean {
  return (
    s.kinesis.shards.length > 0 &&
    s.kinesis.shards.every((x) => x.lagRecords === 0) &&
    !s.load.inProgress &&
    s.table.truncatePending === null &&
    s.table.resyncsPending.length === 0
  );
}

export type LoadKind = 'rows' | 'resync';

/**
 * Waits until the load started at `t0` is applied and returns what it did: the embedder's summary of the
 * load (`rows`) or the re-sync's outcome (`resync`), and the seconds from `t0`.
 */
export async function waitForLoad(
  env: Env,
  kind: LoadKind,
  t0: number,
  timeoutMs: number,
): Promise<{
  /** from t0 until the drain was observed (includes polling and the load's quiet period) */
  seconds: number;
  /** from t0 until the last record of the load was applied (or the re-sync finished) */
  appliedSeconds: number;
  summary: Record<string, unknown>;
  status: StatusReport;
}> {
  const since = new Date(t0 - 1000).toISOString();
  const status = await eventually(
    async () => {
      const s = await pipelineStatus(env);
      if (!drained(s)) return false;
      if (kind === 'resync')
        return s.table.resync.phase === 'done' && String(s.table.resync.started_at) >= since ? s : false;
      return s.load.last && String(s.load.last.started_at) >= since ? s : false;
    },
    timeoutMs,
    `the ${kind === 'resync' ? 're-sync' : 'load'} to be applied`,
  );
  const seconds = (Date.now() - t0) / 1000;
  const summary = (kind === 'resync' ? status.table.resync : status.load.last) as Record<string, unknown>;
  const end =
    kind === 'resync'
      ? Date.parse(String(summary.finished_at))
      : Date.parse(String(summary.started_at)) + Number(summary.seconds) * 1000;
  return { seconds, appliedSeconds: (end - t0) / 1000, summary, status };
}
