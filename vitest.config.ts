import { defineConfig } from 'vitest/config';

// Integration suites share one local stack (started once by test/global-setup.ts) and run one file at a
// time: the machine has 2 cores and the servers need them. Each suite isolates itself with its own MySQL
// database, Redis key prefixes / index name and Kinesis stream (see test/support/stack.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
