/**
 * Brings the shared local stack up once for every suite (idempotent: a running stack is reused, a stopped
 * one started, a fresh machine gets everything installed). Suites then isolate themselves with suiteEnv().
 * Prints the Node that runs the tests and the one child processes get from PATH (`node …`): both must be 22.
 */
import { execFileSync } from 'node:child_process';
import { createLogger } from '../services/core/log.ts';
import { stackUp } from '../services/stack/stack.ts';

function pathNodeVersion(): string {
  try {
    return execFileSync('node', ['--version'], { encoding: 'utf8' }).trim();
  } catch (e) {
    return `none on PATH (${(e as Error).message})`;
  }
}

export default async function setup(): Promise<void> {
  process.stdout.write(
    `node --version: ${process.version} (${process.execPath}); node on PATH: ${pathNodeVersion()}\n`,
  );
  await stackUp(createLogger({ service: 'test-setup' }, { level: 'warn' }));
}
