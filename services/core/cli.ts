import type { Command } from 'commander';
import { changeEventJsonSchema } from './events.ts';
import { decodeConfig, embeddingModelId, sharedShape } from './config.ts';
import { redact } from './log.ts';

/** Commands of services/core. */
export function registerCoreCommands(program: Command): void {
  program
    .command('events')
    .description('the change-event format (contract between binlog reader and embedder)')
    .command('schema')
    .description('print the JSON Schema of change events (version 1)')
    .action(() => {
      process.stdout.write(JSON.stringify(changeEventJsonSchema(), null, 2) + '\n');
    });

  program
    .command('config')
    .description(
      'decode every setting (environment over .drugsync/stack.env) and print it with secrets masked;\n' +
        'exits 2 naming every missing or malformed variable',
    )
    .action(() => {
      const cfg = decodeConfig(sharedShape);
      const shown: Record<string, unknown> = { ...cfg, EMBEDDING_MODEL: embeddingModelId(cfg) };
      // Secret values are hidden whole; an ARN only names a secret and is shown. Every line is masked too.
      for (const k of Object.keys(shown)) {
        if (/PASSWORD|SECRET/.test(k) && !/_ARN$/.test(k) && shown[k]) shown[k] = '***';
      }
      for (const [k, v] of Object.entries(shown))
        if (v !== undefined) process.stdout.write(redact(`${k}=${String(v)}`) + '\n');
    });
}
