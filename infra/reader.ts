/**
 * The binlog reader (`drugsync binlog-reader`) as a singleton ECS service (infra/service.ts): one reader,
 * never two during a deployment; its Redis lease is the second guard.
 */
import type { Construct } from 'constructs';
import { SingletonService } from './service.ts';
import type { WorkerServiceProps } from './service.ts';

export class ReaderService extends SingletonService {
  constructor(scope: Construct, id: string, p: WorkerServiceProps) {
    super(scope, id, { ...p, what: 'reader', command: ['binlog-reader'] });
  }
}
