import type { Command } from 'commander';
import { registerStackCommands } from '../stack/cli.ts';
import { registerSeedCommands } from '../seed/cli.ts';
import { registerBackfillCommands } from '../backfill/cli.ts';
import { registerBinlogReaderCommands } from '../binlog-reader/cli.ts';
import { registerEmbedderCommands } from '../embedder/cli.ts';
import { registerCoreCommands } from '../core/cli.ts';
import { registerOpsCommands } from './ops.ts';
import { registerSearchCommands } from './search.ts';
import { registerRunCommands } from './run.ts';

/** Every command of the CLI, one register function per service (each service owns its file). */
export function registerCommands(program: Command): void {
  registerStackCommands(program);
  registerSeedCommands(program);
  registerBackfillCommands(program);
  registerBinlogReaderCommands(program);
  registerEmbedderCommands(program);
  registerCoreCommands(program);
  registerOpsCommands(program);
  registerSearchCommands(program);
  registerRunCommands(program);
}
