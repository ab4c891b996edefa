/**
 * JSON-valued attributes (policies, container definitions, event inputs). In the default Terraform JSON
 * output they are JSON strings (readable, and parsed by the tests); in the HCL export (`cdktf synth --hcl`,
 * i.e. SYNTH_HCL_OUTPUT=true) cdktf 0.21 writes string attributes without escaping their quotes, so there
 * the same value is rendered as a `jsonencode(...)` expression instead. Terraform sees the same document.
 */
import { Fn, Token } from 'cdktf';

/** The switch cdktf's TerraformStack itself reads to write cdk.tf instead of cdk.tf.json. */
export function hclOutput(env: Record<string, string | undefined> = process.env): boolean {
  return env.SYNTH_HCL_OUTPUT === 'true' || env.SYNTH_HCL_OUTPUT === '1';
}

export function tfJson(value: unknown): string {
  return hclOutput() ? Token.asString(Fn.jsonencode(value)) : JSON.stringify(value);
}
