/**
 * Synthesis for the infra tests, as the project's own entry points do it: `npm run synth` (main.ts: one
 * stack per stage, cdk.tf.json) or the HCL export (`cdktf synth --hcl`: SYNTH_HCL_OUTPUT=true while the app
 * is built and synthesized, cdk.tf). Writes outdir/stacks/drugsync-{stage}/.
 */
import path from 'node:path';
import { App } from 'cdktf';
import { Naming } from '../../infra/config.ts';
import type { Stage } from '../../infra/config.ts';
import { DrugsyncStack } from '../../infra/stack.ts';

export function synthStacks(outdir: string, stages: readonly Stage[], o: { hcl: boolean }): void {
  const before = process.env.SYNTH_HCL_OUTPUT;
  if (o.hcl) process.env.SYNTH_HCL_OUTPUT = 'true';
  try {
    const app = new App({ outdir, hclOutput: o.hcl });
    for (const stage of stages) new DrugsyncStack(app, new Naming(stage).stackId(), { stage });
    app.synth();
  } finally {
    if (before === undefined) delete process.env.SYNTH_HCL_OUTPUT;
    else process.env.SYNTH_HCL_OUTPUT = before;
  }
}

/** The directory of one stage's synthesized stack under outdir. */
export function stackDir(outdir: string, stage: Stage): string {
  return path.join(outdir, 'stacks', new Naming(stage).stackId());
}
