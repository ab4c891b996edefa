/**
 * How a setting names a secret, in the form ECS' `valueFrom` uses: the secret's ARN, optionally followed by
 * `:json-key:version-stage:version-id` (`arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-AbCdEf`,
 * or `…:secret:redis-AbCdEf:password::` for the "password" field of a JSON secret). drugsync always reads
 * the current version (so it can follow a rotation): a version stage or id is refused.
 */

export interface SecretReference {
  /** the secret's ARN (what GetSecretValue is asked for) */
  arn: string;
  /** the JSON field holding the value; undefined: the whole secret string is the value */
  jsonKey: string | undefined;
}

const REFERENCE =
  /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[^:]+)(?::([^:]*)(?::([^:]*)(?::([^:]*))?)?)?$/;

/** The reference decoded, or a sentence saying what is wrong with it (no value of a secret is in it). */
export function parseSecretReference(ref: string): SecretReference | string {
  const m = REFERENCE.exec(ref);
  if (!m)
    return 'must be a Secrets Manager secret ARN (arn:aws:secretsmanager:…:secret:…), optionally followed by :json-key::';
  if (m[3] || m[4])
    return 'names a version stage or id: drugsync reads the current version (to follow a rotation); give ARN or ARN:json-key:: only';
  return { arn: m[1] as string, jsonKey: m[2] || undefined };
}
