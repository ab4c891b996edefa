/**
 * drugsync on AWS: a CDK for Terraform app. One stack per stage (`STAGE=dev`, `STAGE=prod`, or unset for
 * every stage), composed from infra/. `npm run synth` writes cdktf.out/stacks/drugsync-{stage}/cdk.tf.json
 * offline; deploy it with cdktf or with plain Terraform (docs/deploy.md).
 */
import { App } from 'cdktf';
import { Naming, stagesFromEnv } from './infra/config.ts';
import { DrugsyncStack } from './infra/stack.ts';

const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? 'cdktf.out' });
for (const stage of stagesFromEnv()) {
  new DrugsyncStack(app, new Naming(stage).stackId(), {
    stage,
    stateBucket: process.env.DRUGSYNC_TF_STATE_BUCKET || undefined,
  });
}
app.synth();
