#!/usr/bin/env node
// The one CLI. Runs the TypeScript sources through tsx so that a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

// Node 20 runs drugsync locally (Lambda runs nodejs22.x); the AWS SDK's notice about Node 22 is not ours to act on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
const { main } = await import('../services/cli/main.ts');
await main(process.argv);
