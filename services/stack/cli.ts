import type { Command } from 'commander';
import { createLogger } from '../core/log.ts';
import { DEFAULT_ENV_FILE } from '../core/paths.ts';
import { stackDown, stackEnvironment, stackSettings, stackStatus, stackUp, writeEnvFile } from './stack.ts';

/** Commands of services/stack: the local MariaDB + Redis Stack + kinesalite. */
export function registerStackCommands(program: Command): void {
  const stack = program
    .command('stack')
    .description(
      'the local stack: MariaDB (binlog ROW/FULL), Redis Stack (JSON + Search), kinesalite, under .drugsync/\n' +
        'ports: DRUGSYNC_MYSQL_PORT (13306), DRUGSYNC_REDIS_PORT (16379), DRUGSYNC_KINESIS_PORT (14567);\n' +
        'shards: DRUGSYNC_KINESIS_SHARDS (2)',
    );

  stack
    .command('up')
    .description('install what is missing, start every service not running, wait until each answers')
    .action(async () => {
      const log = createLogger({ service: 'stack' });
      const results = await stackUp(log);
      for (const r of results) process.stdout.write(`${r.service.padEnd(8)} ${r.action} on port ${r.port}\n`);
      process.stdout.write(`settings written to ${DEFAULT_ENV_FILE} (see \`drugsync stack env\`)\n`);
    });

  stack
    .command('down')
    .description('stop exactly the processes `stack up` started (data is kept)')
    .action(async () => {
      const log = createLogger({ service: 'stack' });
      for (const r of await stackDown(log)) {
        process.stdout.write(`${r.service.padEnd(8)} ${r.action}${r.pid ? ` (pid ${r.pid})` : ''}\n`);
      }
    });

  stack
    .command('status')
    .description('each service: port, pid, version, health')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const all = await stackStatus();
      if (opts.json) {
        process.stdout.write(JSON.stringify(all) + '\n');
      } else {
        for (const s of all) {
          process.stdout.write(
            `${s.service.padEnd(8)} ${s.healthy ? 'healthy  ' : s.running ? 'UNHEALTHY' : 'stopped  '} port ${s.port}` +
              `${s.pid ? ` pid ${s.pid}` : ''}${s.version ? `  ${s.version}` : ''}  ${s.detail}\n`,
          );
        }
      }
      if (!all.every((s) => s.healthy)) process.exitCode = 1;
    });

  stack
    .command('env')
    .description(`print the KEY=value settings of the local stack (also written to ${DEFAULT_ENV_FILE})`)
    .action(() => {
      const s = stackSettings();
      writeEnvFile(s);
      for (const [k, v] of Object.entries(stackEnvironment(s))) process.stdout.write(`${k}=${v}\n`);
    });
}
