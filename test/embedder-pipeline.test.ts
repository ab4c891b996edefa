/**
 * The whole path in-process on the real stack: MariaDB → binlog reader → kinesalite → embedder → Redis.
 * Inserts, updates (rename, price, eligibility flip, NDC change) and deletes in MySQL show up in
 * JSON.GET / FT.SEARCH.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { BinlogReaderHandle } from '../services/binlog-reader/reader.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import type { EmbedderConsumer } from '../services/embedder/consumer.ts';
import { createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import type { EmbedderRuntime } from '../services/embedder/runtime.ts';
import { makeRow } from './support/events.ts';
import { insertRows } from './support/factories.ts';
import { eventually, openSuite, resetSuiteRedis, suiteEnv } from './support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

describe('MariaDB → binlog reader → kinesalite → embedder → Redis', () => {
  const env = suiteEnv('embedder_pipe');
  let admin: Connection;
  let redis: RedisClient;
  let rt: EmbedderRuntime;
  let reader: BinlogReaderHandle;
  let consumer: EmbedderConsumer;
  const kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
  const log = createLogger({ service: 'embedder-pipe' }, { level: 'error' });

  beforeAll(async () => {
    ({ admin, redis } = await openSuite(env));
    await admin.query(`SET SESSION sql_mode = ''`);
    const [status] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
      { File: string; Position: number }[],
    ];
    const from = { file: status[0]!.File, pos: Number(status[0]!.Position) };
    reader = startBinlogReader(decodeConfig(readerConfigShape, env), { log }, { from });
    rt = await createEmbedderRuntime(decodeEmbedderConfig(env), log, { redis });
    await rt.deps.store.ensureIndex();
    consumer = startEmbedderConsumer(rt.config, {
      kinesis,
      redis,
      keys: rt.keys,
      apply: rt.deps,
      log,
    });
  });
  afterAll(async () => {
    consumer?.stop();
    await consumer?.done;
    await reader?.stop();
    await resetSuiteRedis(env, redis);
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(env.DB_NAME as string)}`);
    await admin.end();
    await rt.close();
    redis.disconnect();
    kinesis.destroy();
  });

  async function doc(ndc: string): Promise<Record<string, unknown> | null> {
    const raw = (await redis.call('JSON.GET', rt.keys.doc(ndc), '$')) as string | null;
    return raw ? ((JSON.parse(raw) as Record<string, unknown>[])[0] ?? null) : null;
  }

  async function fields(ndc: string): Promise<Record<string, unknown> | null> {
    const d = await doc(ndc);
    if (!d) return null;
    const { embedding: _e, indexed_at: _i, ...f } = d;
    return f;
  }

  it('inserts, updates and deletes in MySQL appear in Redis (JSON.GET, FT.SEARCH)', async () => {
    // Prepare + Act: inserts
    const rows = Array.from({ length: 30 }, (_, i) => makeRow(2000 + i));
    await insertRows(admin, rows);
    await eventually(
      async () =>
        Number(((await redis.call('FT.SEARCH', rt.keys.index, '*', 'LIMIT', '0', '0')) as [number])[0]) ===
        30,
      60_000,
      '30 documents',
    );
    expect(await fields(String(rows[0]!.NDC))).toEqual(mapRow(rows[0]!));

    // updates: rename, price + brand, eligibility flip; a delete; an NDC change
    const [a, b, c, d, e] = rows as [Rndc14Row, Rndc14Row, Rndc14Row, Rndc14Row, Rndc14Row];
    await admin.query(`UPDATE rndc14 SET LN = 'PANTOPRAZOLE 40 MG TABLET' WHERE NDC = ?`, [a.NDC]);
    await admin.query(`UPDATE rndc14 SET PS = '77.000', BN = 'PROTONIX' WHERE NDC = ?`, [b.NDC]);
    await admin.query(`UPDATE rndc14 SET LN = 'AB' WHERE NDC = ?`, [c.NDC]);
    await admin.query(`DELETE FROM rndc14 WHERE NDC = ?`, [d.NDC]);
    await admin.query(`UPDATE rndc14 SET NDC = '88888000011' WHERE NDC = ?`, [e.NDC]);

    // different NDCs travel on different shards: wait for all of them
    await eventually(
      async () =>
        (await fields('88888000011')) !== null &&
        (await fields(String(a.NDC)))?.drug_name === 'PANTOPRAZOLE 40 MG TABLET' &&
        (await fields(String(b.NDC)))?.brand_name === 'PROTONIX' &&
        (await doc(String(c.NDC))) === null &&
        (await doc(String(d.NDC))) === null &&
        (await doc(String(e.NDC))) === null,
      60_000,
      'every change applied',
    );
    expect(await fields(String(b.NDC))).toEqual(mapRow({ ...b, PS: '77.000', BN: 'PROTONIX' }));
    expect(await fields('88888000011')).toEqual(mapRow({ ...e, NDC: '88888000011' }));
    const found = (await redis.call('FT.SEARCH', rt.keys.index, '@drug_name:PANTOPRAZOLE', 'NOCONTENT')) as [
      number,
      ...string[],
    ];
    expect(found[0]).toBe(1);
    expect(found[1]).toBe(rt.keys.doc(String(a.NDC)));
    expect(
      Number(((await redis.call('FT.SEARCH', rt.keys.index, '*', 'LIMIT', '0', '0')) as [number])[0]),
    ).toBe(28);
    expect(await rt.deps.dlq.list()).toEqual([]);
  });
});
