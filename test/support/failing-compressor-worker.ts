/** A record-compressor worker that dies on its first batch (test/compressor.test.ts: the fallback). */
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', () => {
  throw new Error('zlib worker out of memory');
});
