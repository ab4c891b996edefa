/**
 * The PEM bundle of a private CA named by a setting (DB_TLS_CA_FILE, REDIS_TLS_CA_FILE): read once when the
 * client is built. A file that cannot be read or holds no PEM certificate is CONFIG_INVALID naming the
 * setting, the file and the remedy. The value `system` means Node's own CAs, as unset does (libpq's
 * `sslrootcert=system`): a deployment can always pass the setting, since ECS drops an empty value and
 * Terraform then sees a change on every plan.
 */
import fs from 'node:fs';
import { DrugsyncError } from '../errors.ts';

/** The value that names Node's own CAs. */
export const SYSTEM_CAS = 'system';

/**
 * The PEM text of `file`, or undefined for `system` (Node's CAs). `remedy` says which CA the setting must
 * name (e.g. "the RDS CA bundle").
 */
export function readCaFile(variable: string, file: string, remedy: string): string | undefined {
  if (file === SYSTEM_CAS) return undefined;
  let ca: string;
  try {
    ca = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DrugsyncError('CONFIG_INVALID', `${variable}: cannot read ${file}`, {
      context: { variable, file },
      cause: e,
      remedy: `point ${variable} at a readable PEM bundle of ${remedy}`,
    });
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new DrugsyncError('CONFIG_INVALID', `${variable}: ${file} holds no PEM certificate`, {
      context: { variable, file },
      remedy: `point ${variable} at a PEM bundle of ${remedy}`,
    });
  }
  return ca;
}
