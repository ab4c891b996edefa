import { defineConfig } from 'vitest/config';

/**
 * Two projects, chosen by file name (README.md, "Tests"):
 *
 * - `unit`: `test/**\/*.unit.test.ts` (and the older pure suites listed below). No servers: no stack setup,
 *   files run in parallel, and the stack settings point at a closed port so a unit test that reaches for
 *   MySQL, Redis or Kinesis fails at once instead of quietly using the shared stack.
 *   `npm run test:unit` runs only these; they pass with the stack down.
 * - `integration`: every other `test/**\/*.test.ts`. They share one local stack (started once by
 *   test/global-setup.ts) and run one file at a time: the machine has 2 cores and the servers need them.
 *   Each suite isolates itself with its own MySQL database, Redis key prefixes / index name and Kinesis
 *   stream (see test/support/stack.ts).
 *
 * `vitest run` runs both: unit first (sequence.groupOrder 0), then integration (groupOrder 1).
 */
const UNIT_GLOB = 'test/**/*.unit.test.ts';

/** Pure suites named before the `.unit.test.ts` rule; rename one to `<name>.unit.test.ts` and drop it here. */
const UNIT_FILES_BEFORE_THE_RULE = [
  'test/compressor.test.ts',
  'test/config.test.ts',
  'test/core-backoff.test.ts',
  'test/core-clients.test.ts',
  'test/core-kinesis-shards.test.ts',
  'test/core-metrics.test.ts',
  'test/embedder-apply.test.ts',
  'test/events.test.ts',
  'test/infra.test.ts',
  'test/kinesis-client.test.ts',
  'test/mapping.test.ts',
  'test/position.test.ts',
  'test/rate-limiter.test.ts',
  'test/store-upsert-op.test.ts',
  'test/titan.test.ts',
];

/** A port nothing listens on: connecting to it is refused at once. */
const CLOSED_PORT = '1';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [UNIT_GLOB, ...UNIT_FILES_BEFORE_THE_RULE],
          sequence: { groupOrder: 0 },
          env: {
            DRUGSYNC_ENV_FILE: 'test/no-stack-for-unit-tests.env', // does not exist: no stack settings
            DB_HOST: '127.0.0.1',
            DB_PORT: CLOSED_PORT,
            REDIS_HOST: '127.0.0.1',
            REDIS_PORT: CLOSED_PORT,
            KINESIS_ENDPOINT: `http://127.0.0.1:${CLOSED_PORT}`,
          },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [UNIT_GLOB, ...UNIT_FILES_BEFORE_THE_RULE],
          globalSetup: ['test/global-setup.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
