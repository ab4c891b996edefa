import type { Command } from 'commander';
import { changeEventJsonSchema } from './events.ts';
import { decodeConfig, embeddingModelId, isSecretSetting, redisShape, sharedShape } from './config.ts';
import { redisAclSetUser } from './redis/acl.ts';
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
      // Secret values are hidden whole; an ARN (or a key inside a secret) only names it and is shown. Every
      // line is masked too.
      for (const k of Object.keys(shown)) {
        if (isSecretSetting(k) && shown[k]) shown[k] = '***';
      }
      for (const [k, v] of Object.entries(shown))
        if (v !== undefined) process.stdout.write(redact(`${k}=${String(v)}`) + '\n');
    });

  program
    .command('redis-acl')
    .description(
      'print the least-privilege Redis ACL rule of a drugsync user for the configured prefixes\n' +
        '(REDIS_DOC_PREFIX, REDIS_STATE_PREFIX, REDIS_INDEX) as one ACL SETUSER command: exactly the commands\n' +
        'and keys drugsync uses. Replace <password> (or write #<sha256 hex> in its place); see docs/deploy.md',
    )
    .option('--user <name>', 'the ACL user (default: REDIS_USERNAME, else drugsync)')
    .action((o: { user?: string }) => {
      const cfg = decodeConfig({
        REDIS_USERNAME: redisShape.REDIS_USERNAME,
        REDIS_INDEX: redisShape.REDIS_INDEX,
        REDIS_DOC_PREFIX: redisShape.REDIS_DOC_PREFIX,
        REDIS_STATE_PREFIX: redisShape.REDIS_STATE_PREFIX,
      });
      process.stdout.write(redisAclSetUser(o.user ?? cfg.REDIS_USERNAME ?? 'drugsync', cfg) + '\n');
    });
}
