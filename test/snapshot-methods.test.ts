/**
 * The snapshot methods on the real stack (services/core/snapshot.ts), with SNAPSHOT_METHOD=table-lock forced
 * on MariaDB (the method MySQL 8 / Aurora MySQL 3 use):
 * - the position each method records, proven against the binlog under a concurrent writer: every change of
 *   the table committed before the position is in the snapshot (table-lock: a sound lower bound;
 *   binlog-snapshot: exact);
 * - `verify --repair` and the re-sync, in process, while a realistic writer commits updates, renames,
 *   inserts, deletes and NDC changes and the pipeline (binlog reader + embedder) streams them: they repair
 *   the damage done to Redis by hand, and once the writer has stopped and the pipeline has converged,
 *   `verify` finds 0 missing / 0 extra / 0 stale (test/support/writer.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createMysqlPool, mysqlCredentials } from '../services/core/clients/mysql.ts';
import type { MysqlPool } from '../services/core/clients/mysql.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { createEmbeddingService } from '../services/core/embedding/service.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { repair, verifyOnce } from '../services/core/reconcile.ts';
import type { VerifyDeps } from '../services/core/reconcile.ts';
import { createRedisDrugStore } from '../services/core/redis/drug-store.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { openSnapshot } from '../services/core/snapshot.ts';
import type { SnapshotMethodUsed } from '../services/core/snapshot.ts';
import { opsShape } from '../services/cli/runtime.ts';
import { createResyncRunner } from '../services/embedder/resync.ts';
import { createRedisTableState } from '../services/embedder/table-state.ts';
import { insertRows, makeRow } from './support/factories.ts';
import { startStreamingPipeline } from './support/pipeline.ts';
import type { StreamingPipeline } from './support/pipeline.ts';
import { adminConnection, eventually, suiteEnv, suiteRedis } from './support/stack.ts';
import { whileWriting } from './support/writer.ts';

const MARK = '88888'; // NDC prefix of the marker rows (the catalogue has none: checked in beforeAll)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Binlog positions after each committed transaction that wrote `db.table`, in binlog order, from `start`. */
async function tableCommits(
  admin: Connection,
  start: BinlogPosition,
  db: string,
  table: string,
): Promise<BinlogPosition[]> {
  const [logs] = await admin.query('SHOW BINARY LOGS');
  const files = (logs as { Log_name: string }[])
    .map((l) => l.Log_name)
    .filter((f) => compareBinlogPositions({ file: f, pos: 0 }, { file: start.file, pos: 0 }) >= 0);
  const out: BinlogPosition[] = [];
  for (const file of files) {
    const from = file === start.file ? ` FROM ${start.pos}` : '';
    const [events] = await admin.query(`SHOW BINLOG EVENTS IN ?${from}`, [file]);
    let touched = false;
    for (const e of events as { Event_type: string; Info: string; End_log_pos: number }[]) {
      if (e.Event_type === 'Gtid' || (e.Event_type === 'Query' && e.Info === 'BEGIN')) touched = false;
      else if (e.Event_type === 'Table_map' && e.Info.includes(`(${db}.${table})`)) touched = true;
      else if (touched && (e.Event_type === 'Xid' || (e.Event_type === 'Query' && /^COMMIT/.test(e.Info)))) {
        out.push({ file, pos: Number(e.End_log_pos) });
        touched = false;
      }
    }
  }
  return out;
}

async function serverPosition(admin: Connection): Promise<BinlogPosition> {
  const [rows] = await admin.query('SHOW MASTER STATUS');
  const r = (rows as { File: string; Position: number }[])[0]!;
  return { file: r.File, pos: Number(r.Position) };
}

describe('snapshot methods: table-lock forced on MariaDB, under a writer and the live pipeline', () => {
  const env: Env = suiteEnv('snapmethods', { SNAPSHOT_METHOD: 'table-lock' });
  const db = env.DB_NAME as string;
  const log = createLogger({ service: 'snapmethods' }, { level: 'warn' });
  let pipeline: StreamingPipeline;
  let admin: Connection;
  let redis: RedisClient;
  let pool: MysqlPool;
  let keys: Keys;
  let deps: VerifyDeps;
  let catalogue: Rndc14Row[];

  const doc = async (ndc: string): Promise<Record<string, unknown> | null> => {
    const raw = (await redis.call('JSON.GET', keys.doc(ndc))) as string | null;
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
  };

  beforeAll(async () => {
    pipeline = await startStreamingPipeline(env, 3_000, 53);
    ({ admin, catalogue } = pipeline);
    expect(catalogue.filter((r) => String(r.NDC).startsWith(MARK))).toEqual([]);
    redis = suiteRedis(env);
    const cfg = decodeConfig(opsShape, env);
    keys = makeKeys(cfg);
    pool = createMysqlPool(cfg, mysqlCredentials(cfg, { region: cfg.AWS_REGION }));
    const store = createRedisDrugStore(redis, keys, cfg);
    const embeddings = createEmbeddingService(cfg, redis, keys, { logger: log });
    deps = {
      ...{ mysql: pool, redis, keys, store, embeddings, log },
      schema: db,
      table: 'rndc14',
      snapshotMethod: cfg.SNAPSHOT_METHOD,
    };
    expect(pipeline.backfill).toMatchObject({ completed: true, snapshot_method: 'table-lock' });
  });
  afterAll(async () => {
    await pipeline?.stop();
    await pool?.end();
    await admin?.end();
    await redis?.quit();
  });

  it.each<[SnapshotMethodUsed]>([['table-lock'], ['binlog-snapshot']])(
    '%s: every change committed before the recorded position is in the snapshot',
    async (method) => {
      // Prepare: a writer committing one marker row per transaction, as fast as it can
      const start = await serverPosition(admin);
      const base = method === 'table-lock' ? 0 : 50_000;
      const marker = (i: number) => `${MARK}${String(base + i).padStart(6, '0')}`;
      const writer = await adminConnection(env, db);
      let written = 0;
      let writing = true;
      const writes = (async () => {
        for (let i = 0; writing && i < 1_500; i++) {
          const row: Rndc14Row = { ...makeRow({}, i, 53), NDC: marker(i) };
          await insertRows(writer, [row]);
          written++;
        }
      })();
      // Act: snapshots opened while the writer commits
      const taken: { position: BinlogPosition; visible: string[]; method: string; exact: boolean }[] = [];
      await eventually(async () => written >= 20, 30_000, 'the writer to start');
      for (let k = 0; k < 6; k++) {
        const snap = await openSnapshot(pool, { method, schema: db, table: 'rndc14' });
        const visible: string[] = [];
        try {
          const after = base === 0 ? MARK : `${MARK}${String(base - 1).padStart(6, '0')}`;
          const range = { schema: db, table: 'rndc14', after, upTo: marker(49_999) };
          for await (const page of snap.rows(range)) visible.push(...page.map((r) => String(r.NDC)));
        } finally {
          await snap.close();
        }
        taken.push({ position: snap.position, visible, method: snap.method, exact: snap.exact });
        await sleep(40);
      }
      writing = false;
      await writes;
      await writer.end();
      const commits = await tableCommits(admin, start, db, 'rndc14');
      // Assess
      expect(commits.length).toBe(written); // only the writer wrote the table meanwhile: commit k = marker k
      for (const t of taken) {
        expect(t).toMatchObject({ method, exact: method === 'binlog-snapshot' });
        const before = commits.filter((c) => compareBinlogPositions(c, t.position) <= 0).length;
        // one writer, one row per transaction: the snapshot shows the first n markers, in commit order
        expect(t.visible).toEqual(Array.from({ length: t.visible.length }, (_, i) => marker(i)));
        // nothing committed before the position is missing from the snapshot …
        expect(before).toBeLessThanOrEqual(t.visible.length);
        // … and binlog-snapshot's position is exactly the snapshot's
        if (method === 'binlog-snapshot') expect(before).toBe(t.visible.length);
      }
      // the snapshots straddled the writes
      expect(taken.some((t) => t.visible.length > 0 && t.visible.length < written)).toBe(true);
    },
  );

  it('verify --repair and the re-sync, while a writer changes the compared rows and the pipeline streams, leave verify clean', async () => {
    // Prepare: damage Redis (documents deleted, edited by hand, one extra), then a realistic writer
    const eligible = catalogue.map(mapRow).filter((f): f is DrugFields => f !== null);
    const deleted = eligible.slice(100, 106).map((f) => f.ndc);
    const edited = eligible.slice(200, 206).map((f) => f.ndc);
    const extra = '99999999998';
    for (const n of deleted) await redis.del(keys.doc(n));
    for (const n of edited) await redis.call('JSON.SET', keys.doc(n), '$.brand_name', '"HAND EDITED"');
    await redis.call(
      'JSON.SET',
      keys.doc(extra),
      '$',
      JSON.stringify({ ...eligible[300], ndc: extra, embedding: new Array(32).fill(0.1) }),
    );
    const touched = new Set<string>();
    const original = new Map(eligible.map((f) => [f.ndc, f]));
    /** Damaged NDCs the writer never touched hold their original content again (only a repair can do it). */
    const expectRestored = async (ndcs: string[]) => {
      const got = new Map<string, Record<string, unknown> | null>();
      for (const n of ndcs) got.set(n, await doc(n));
      const untouched = ndcs.filter((n) => !touched.has(n));
      expect(untouched.length).toBeGreaterThan(0);
      for (const n of untouched) expect(got.get(n), n).toMatchObject({ ...original.get(n) });
    };

    const run = await whileWriting(
      env,
      { rate: 40, seed: 5, onChange: (c) => touched.add(c.ndc) },
      async (sim) => {
        // Act 1: verify --repair in process (as `drugsync verify --repair` does) while the writer runs
        await eventually(async () => sim.stats.changes >= 40, 60_000, 'the writer to commit changes');
        const first = await verifyOnce(deps, { repair: true });
        const fixed = await repair(deps, first.diff);
        // Assess 1
        expect(first.report.snapshot_method).toBe('table-lock');
        expect(first.report.ok).toBe(false);
        for (const n of deleted.filter((x) => !touched.has(x))) expect(first.diff.missing).toContain(n);
        for (const n of edited.filter((x) => !touched.has(x))) expect(first.diff.stale).toContain(n);
        expect(first.diff.extra).toContain(extra);
        expect(fixed.written).toBeGreaterThan(0);
        await expectRestored([...deleted, ...edited]);
        expect(await redis.exists(keys.doc(extra))).toBe(0);

        // Prepare 2: more damage, of the kinds the re-sync sees (it trusts each document's recorded hash)
        const gone = eligible.slice(400, 405).map((f) => f.ndc);
        const drifted = eligible.slice(500, 505).map((f) => f.ndc);
        for (const n of gone) await redis.del(keys.doc(n));
        for (const n of drifted) {
          await redis.call('JSON.SET', keys.doc(n), '$.brand_name', '"DRIFTED"');
          await redis.hset(keys.meta(n), 'h', 'drifted');
        }
        await redis.call(
          'JSON.SET',
          keys.doc(extra),
          '$',
          JSON.stringify({ ...eligible[301], ndc: extra, embedding: new Array(32).fill(0.2) }),
        );
        // Act 2: the re-sync in process (as the embedder or `drugsync resync --force` runs it)
        const runner = createResyncRunner({
          ...deps,
          tableState: createRedisTableState(redis, keys),
          log,
        });
        const outcome = await runner.runNow([]);
        // Assess 2
        expect(outcome).not.toBeNull();
        expect(outcome!.snapshot_method).toBe('table-lock');
        expect(outcome!.missing).toBeGreaterThanOrEqual(gone.filter((x) => !touched.has(x)).length);
        expect(outcome!.extra).toBeGreaterThanOrEqual(1);
        await expectRestored([...gone, ...drifted]);
        expect(await redis.exists(keys.doc(extra))).toBe(0);

        // Act 3: a few more changes; then the writer stops and the pipeline must converge
        const until = sim.stats.changes + 40;
        await eventually(async () => sim.stats.changes >= until, 60_000, 'more changes');
      },
    );

    // Assess 3: every change the writer made reached Redis, and verify (table-lock) finds nothing to repair
    expect(run.writer.errors).toBe(0);
    expect(run.writer.inserts + run.writer.deletes + run.writer.renames + run.writer.updates).toBeGreaterThan(
      0,
    );
    expect(run.verify).toMatchObject({
      missing: 0,
      extra: 0,
      stale: 0,
      ok: true,
      snapshot_method: 'table-lock',
    });
  }, 300_000);
});
