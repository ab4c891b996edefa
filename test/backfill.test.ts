/**
 * The backfill on the real stack: exact content, the snapshot position proven against the binlog,
 * kill -9 and resume, embedding once per text, throttled Bedrock, handoff to the reader.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ZongJi from '@vlasky/zongji';
import type { Connection } from 'mysql2/promise';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { changes, generateCatalogue, insertRows } from './support/factories.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { toFloat32Bytes } from '../services/core/redis/index-schema.ts';
import { CLI, preparePipeline, runCli } from './support/pipeline.ts';
import { startFakeBedrock } from './support/fake-bedrock.ts';
import type { FakeBedrock } from './support/fake-bedrock.ts';
import { adminConnection, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function docs(redis: RedisClient, prefix: string): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length) {
      const vals = (await redis.call('JSON.MGET', ...keys, '$')) as (string | null)[];
      keys.forEach((k, i) =>
        out.set(k.slice(prefix.length), (JSON.parse(vals[i] as string) as Record<string, unknown>[])[0]!),
      );
    }
  } while (cursor !== '0');
  return out;
}

function expectExact(got: Map<string, Record<string, unknown>>, rows: Rndc14Row[]): void {
  const expected = rows.map(mapRow).filter((f) => f !== null);
  expect(got.size).toBe(expected.length);
  for (const f of expected) {
    const d = got.get(f.ndc);
    expect(d, f.ndc).toBeDefined();
    const { embedding, indexed_at, ...fields } = d as Record<string, unknown>;
    expect(fields).toEqual(f);
    expect((embedding as number[]).length).toBeGreaterThan(0);
    expect(typeof indexed_at).toBe('string');
  }
}

describe('backfill (local embedder)', () => {
  const env = suiteEnv('backfill', {}, { dimensions: 32 });
  let admin: Connection;
  let redis: RedisClient;
  let catalogue: Rndc14Row[];

  beforeAll(async () => {
    ({ admin, catalogue } = await preparePipeline(env, 20_000, 12));
    redis = suiteRedis(env);
  });
  afterAll(async () => {
    await admin.end();
    await redis.quit();
  });

  it('loads exactly the eligible rows, answers KNN, and records a snapshot from which the binlog holds exactly the later changes', async () => {
    // Prepare: a writer inserting marked rows before, during and after the snapshot.
    // eligible rows only, so that each one is either a document of the snapshot or a later binlog event
    const extra: Rndc14Row[] = [...generateCatalogue({ rows: 420, seed: 555 })]
      .filter((r) => mapRow(r) !== null)
      .slice(0, 400)
      .map((r, i) => ({
        ...r,
        NDC: `8${String(i).padStart(10, '0')}`,
      }));
    const writer = await adminConnection(env, env.DB_NAME);
    let written = 0;
    let writing = true;
    const writes = (async () => {
      for (const r of extra) {
        if (!writing) break;
        await insertRows(writer, [r]);
        written++;
        await sleep(5);
      }
    })();
    // Act
    await sleep(100);
    const r = await runCli(env, ['backfill', '--json']);
    writing = false;
    await writes;
    await writer.end();
    // Assess: a complete run
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.json).toMatchObject({ completed: true, failed: 0 });
    const [file, pos] = String(r.json.snapshot_position).split(':');
    const got = await docs(redis, env.REDIS_DOC_PREFIX as string);
    const writtenRows = extra.slice(0, written);
    const inSnapshot = writtenRows.filter((x) => got.has(x.NDC as string)).map((x) => x.NDC);
    // The binlog from the snapshot position holds exactly the marked rows the snapshot did not see.
    // Read the binlog from the snapshot position until every marked row is accounted for (bounded wait).
    const expectedFromBinlog = written - inSnapshot.length;
    const fromBinlog = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const z = new ZongJi({
        host: env.DB_HOST,
        port: Number(env.DB_PORT),
        user: env.DB_USER,
        password: env.DB_PASSWORD,
        dateStrings: true,
      });
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        z.stop();
        resolve(seen);
      };
      const timer = setTimeout(finish, 60_000);
      z.on('binlog', (ev: unknown) => {
        const e = ev as { getEventName(): string; rows?: Record<string, unknown>[] };
        if (e.getEventName() === 'writerows') {
          for (const row of e.rows ?? []) if (String(row.NDC).startsWith('8')) seen.push(String(row.NDC));
          if (seen.length >= expectedFromBinlog) setTimeout(finish, 500); // and a little more, to catch extras
        }
      });
      z.on('error', (e: Error) => (z.stopped ? undefined : reject(e)));
      z.start({
        filename: file,
        position: Number(pos),
        includeEvents: ['tablemap', 'writerows'],
        includeSchema: { [env.DB_NAME as string]: ['rndc14'] },
        serverId: 7001,
      });
    });
    expect(written).toBeGreaterThan(0);
    expect(new Set([...inSnapshot, ...fromBinlog]).size).toBe(written);
    expect(inSnapshot.filter((n) => fromBinlog.includes(n as string))).toEqual([]);
    // Exact content: every eligible row of the snapshot, mapped
    const snapshotRows = [...catalogue, ...writtenRows.filter((x) => inSnapshot.includes(x.NDC))];
    expectExact(got, snapshotRows);
    // KNN finds a document by its own name
    const probe = mapRow(catalogue.find((x) => mapRow(x))!)!;
    const res = (await redis.call(
      'FT.SEARCH',
      env.REDIS_INDEX as string,
      '*=>[KNN 5 @embedding $v AS s]',
      'PARAMS',
      '2',
      'v',
      toFloat32Bytes(lexicalVector(probe.drug_name, 32)),
      'SORTBY',
      's',
      'RETURN',
      '1',
      'drug_name',
      'DIALECT',
      '2',
    )) as unknown[];
    expect(JSON.stringify(res)).toContain(probe.drug_name);
    // Handoff: the reader has no checkpoint, so the snapshot position is its start; it names its server
    // (the stack's MariaDB: server_id 1, domain 0) and the GTID position its binlog holds there
    expect(JSON.parse((await redis.get(suiteKeys(env).backfillSnapshot)) as string)).toMatchObject({
      file,
      pos: Number(pos),
      source: 'mariadb:1:0',
      gtid: expect.stringMatching(/^0-1-\d+/),
    });
  });

  it('a second run over unchanged data makes 0 embedding calls; one changed name makes exactly 1', async () => {
    // (the previous test inserted rows after its snapshot: absorb them first)
    await runCli(env, ['backfill', '--restart', '--json']);
    const again = await runCli(env, ['backfill', '--restart', '--json']);
    const target = catalogue.find((x) => mapRow(x))!;
    const renamed = changes.rename(target, 'ONCE');
    await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [
      renamed.LN,
      renamed.LN60,
      target.NDC,
    ]);
    const third = await runCli(env, ['backfill', '--restart', '--json']);
    expect(again.json).toMatchObject({ completed: true, embeddings_requested: 0 });
    expect(third.json).toMatchObject({ completed: true, embeddings_requested: 1 });
    const d = JSON.parse(
      (await redis.call('JSON.GET', suiteKeys(env).doc(String(target.NDC)), '$.drug_name')) as string,
    ) as string[];
    expect(d[0]).toBe(String(renamed.LN).trim().toUpperCase());
  });

  it('removes documents of rows that are no longer eligible in the new snapshot', async () => {
    const target = catalogue.filter((x) => mapRow(x))[5]!;
    await admin.query("UPDATE rndc14 SET LN = 'AB' WHERE NDC = ?", [target.NDC]);
    const r = await runCli(env, ['backfill', '--restart', '--json']);
    expect(r.json).toMatchObject({ completed: true, deleted_stale: 1 });
    expect(await redis.exists(suiteKeys(env).doc(String(target.NDC)))).toBe(0);
  });
});

describe('backfill through Titan (fake Bedrock)', () => {
  let bedrock: FakeBedrock;
  let admin: Connection;
  let redis: RedisClient;
  let catalogue: Rndc14Row[];
  const base = suiteEnv('backfill_titan', {}, { dimensions: 256 });
  const env = (b: FakeBedrock) => ({
    ...base,
    EMBEDDING_PROVIDER: 'titan',
    BEDROCK_ENDPOINT: b.endpoint,
    EMBEDDING_CONCURRENCY: '16',
    BACKFILL_WINDOW_ROWS: '2000',
  });

  beforeAll(async () => {
    bedrock = await startFakeBedrock();
    ({ admin, catalogue } = await preparePipeline(base, 20_000, 13));
    redis = suiteRedis(base);
  });
  afterAll(async () => {
    await bedrock.close();
    await admin.end();
    await redis.quit();
  });

  it('killed with -9 at three random points and restarted: exact end state, embeddings ≤ distinct texts + one window', async () => {
    const e = env(bedrock);
    for (let k = 0; k < 3; k++) {
      const child = spawn(process.execPath, [CLI, 'backfill'], {
        env: { ...process.env, ...e, LOG_FORMAT: 'json' } as NodeJS.ProcessEnv,
        stdio: 'ignore',
      });
      await sleep(1500 + Math.random() * 3000);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const final = await runCli(e, ['backfill', '--json']);
    expect(final.status, final.stderr.slice(-2000)).toBe(0);
    expect(final.json.completed).toBe(true);
    expectExact(await docs(redis, base.REDIS_DOC_PREFIX as string), catalogue);
    const distinct = new Set(
      catalogue
        .map(mapRow)
        .filter((f) => f)
        .map((f) => f!.drug_name),
    ).size;
    expect(bedrock.stats.ok).toBeGreaterThanOrEqual(distinct);
    expect(bedrock.stats.ok).toBeLessThanOrEqual(distinct + 2000);
  });

  it('completes with 0 failures under a Bedrock quota, slowing down instead of failing', async () => {
    bedrock.setOptions({ rpm: 6_000 });
    const throttledBefore = bedrock.stats.throttled;
    const okBefore = bedrock.stats.ok;
    const e = { ...env(bedrock), EMBEDDING_RPM: '12000', EMBEDDING_MAX_RETRIES: '20' };
    // New names for 1,500 rows: they must be embedded under the quota.
    for (const r of catalogue.filter((x) => mapRow(x)).slice(0, 1500)) {
      await admin.query('UPDATE rndc14 SET LN = ? WHERE NDC = ?', [
        `${String(r.LN).slice(0, 20)} Q${String(r.NDC).slice(-6)}`,
        r.NDC,
      ]);
    }
    const r = await runCli(e, ['backfill', '--restart', '--json']);
    bedrock.setOptions({ rpm: undefined });
    expect(r.json).toMatchObject({ completed: true, failed: 0 });
    expect(bedrock.stats.ok - okBefore).toBe(Number(r.json.embeddings_requested));
    expect(bedrock.stats.throttled - throttledBefore).toBeGreaterThan(0);
  });
});
