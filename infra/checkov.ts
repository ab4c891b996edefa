/**
 * A checkov finding accepted on purpose, written next to the resource it concerns (docs/deploy.md "Scanning").
 *
 * checkov reads `#checkov:skip=CKV_…:reason` comments in HCL, but the synthesized Terraform JSON has no
 * comments, and checkov 3.3's `terraform_json` framework reads no skip from it at all (its runner passes
 * an empty skip list to every check). So the skip is kept in the resource's `//` comment key, beside
 * cdktf's own metadata, in the shape checkov gives CloudFormation metadata:
 * `"//": { "checkov": { "skip": [{ "id": "CKV_AWS_158", "comment": "…" }] } }`. Terraform ignores `//` keys;
 * the scan in test/infra-checkov.test.ts reads them and accepts exactly those failures (and refuses a
 * skip whose check no longer fails).
 */
import type { TerraformResource } from 'cdktf';
import { DrugsyncError } from '../services/core/errors.ts';

export interface CheckovSkip {
  /** the check id, e.g. CKV_AWS_158 */
  id: string;
  /** why the finding is a deliberate choice (or a false finding): what a reviewer needs to agree */
  reason: string;
}

/** The JSON path of the skips inside a synthesized resource (read back by the scan). */
export const CHECKOV_SKIP_KEY = ['//', 'checkov', 'skip'] as const;

export function checkovSkip(resource: TerraformResource, ...skips: CheckovSkip[]): void {
  for (const s of skips) {
    const invalid = !/^CKV2?_[A-Z0-9]+_\d+$/.test(s.id)
      ? `'${s.id}' is not a checkov check id`
      : s.reason.trim().length < 20
        ? `the skip of ${s.id} gives no reason`
        : undefined;
    if (invalid) {
      throw new DrugsyncError('CONFIG_INVALID', `checkov skip on ${resource.node.path}: ${invalid}`, {
        context: { resource: resource.node.path, check: s.id },
        remedy: 'name the check (CKV_AWS_…) and say in a sentence why its finding is a deliberate choice',
      });
    }
  }
  resource.addOverride(
    CHECKOV_SKIP_KEY.join('.'),
    skips.map((s) => ({ id: s.id, comment: s.reason })),
  );
}
