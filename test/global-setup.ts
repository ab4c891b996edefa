/**
 * Brings the shared local stack up once for every suite (idempotent: a running stack is reused, a stopped
 * one started, a fresh machine gets everything installed). Suites then isolate themselves with suiteEnv().
 */
import { createLogger } from '../services/core/log.ts';
import { stackUp } from '../services/stack/stack.ts';

export default async function setup(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  await stackUp(createLogger({ service: 'test-setup' }, { level: 'warn' }));
}
