/**
 * The local stack's passwords, generated on the first `up` and kept in `<state>/secrets.json` (mode 600):
 * MariaDB's admin (also root's) and replication users, Redis' `requirepass`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { StackSettings } from './settings.ts';

export interface StackSecrets {
  mysqlAdminPassword: string;
  mysqlReplPassword: string;
  redisPassword: string;
}

export function loadSecrets(settings: StackSettings): StackSecrets {
  const file = path.join(settings.stateDir, 'secrets.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as StackSecrets;
  const gen = () => crypto.randomBytes(18).toString('base64url');
  const secrets: StackSecrets = { mysqlAdminPassword: gen(), mysqlReplPassword: gen(), redisPassword: gen() };
  fs.mkdirSync(settings.stateDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
