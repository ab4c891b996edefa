/**
 * JSON-valued attributes (policies, container definitions, event patterns). In the default Terraform JSON
 * output they are JSON strings (readable, and parsed by the tests). In the HCL export (`cdktf synth --hcl`,
 * i.e. SYNTH_HCL_OUTPUT=true) cdktf 0.21 writes a one-line string attribute without escaping its quotes, but
 * a string of several lines as a heredoc (`<<EOF … EOF`), where quotes need no escaping: so there the same
 * document is written indented, over several lines. Terraform reads a heredoc as the same template a JSON
 * string is (`${…}` references resolve in both), and the AWS provider compares these attributes as JSON.
 * (A `jsonencode(…)` expression, the earlier form, is valid Terraform too, but checkov's HCL parser cannot
 * read an object nested inside an interpolation: it parsed the whole file to zero checks.)
 */

/** The switch cdktf's TerraformStack itself reads to write cdk.tf instead of cdk.tf.json. */
export function hclOutput(env: Record<string, string | undefined> = process.env): boolean {
  return env.SYNTH_HCL_OUTPUT === 'true' || env.SYNTH_HCL_OUTPUT === '1';
}

export function tfJson(value: unknown): string {
  return hclOutput() ? JSON.stringify(value, null, 2) : JSON.stringify(value);
}
