/** A record-compressor worker that takes batches and never answers (test/compressor.test.ts: the timeout). */
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', () => undefined);
