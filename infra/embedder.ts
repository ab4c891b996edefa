/**
 * The embedder (`drugsync embedder`, services/embedder/consumer.ts) as a singleton ECS service
 * (infra/service.ts): one consumer per stream, never two during a deployment; its Redis lease is the
 * second guard. It reads every shard from its Redis checkpoint (TRIM_HORIZON without one), holds a
 * DELETE-all + INSERT-all transaction until its commit, defers big deletes durably, re-syncs a table
 * swapped in by RENAME and sweeps a settled truncate by asking the table — which is why it needs the DB_*
 * settings and a route to Aurora. A failed record is retried from the shard's first failure, never skipped;
 * poison records go to the dead-letter queue (DLQ_QUEUE_URL).
 */
import type { Construct } from 'constructs';
import { SingletonService } from './service.ts';
import type { WorkerServiceProps } from './service.ts';

export interface EmbedderProps extends WorkerServiceProps {
  dlqUrl: string;
}

export class EmbedderService extends SingletonService {
  constructor(scope: Construct, id: string, p: EmbedderProps) {
    const { dlqUrl, ...rest } = p;
    super(scope, id, {
      ...rest,
      what: 'embedder',
      command: ['embedder'],
      extraEnv: { ...p.extraEnv, DLQ_QUEUE_URL: dlqUrl },
    });
  }
}
