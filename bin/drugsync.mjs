#!/usr/bin/env node
// The one CLI, development entry: runs the TypeScript sources through tsx so that a fresh clone needs no
// build step. Deployed tasks run the bundle instead (`npm run build` → dist/drugsync.mjs, see docs/image.md).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../services/cli/main.ts');
await main(process.argv);
