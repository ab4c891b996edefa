import { defineConfig } from 'vitest/config';

/**
 * Two projects, chosen by file name (README.md, "Tests"):
 *
 * - `unit`: `test/**\/*.unit.test.ts`. No servers: no stack setup,
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
          include: [UNIT_GLOB],
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
          exclude: [UNIT_GLOB],
          globalSetup: ['test/global-setup.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
