/**
 * Kinesis client. Against kinesalite (KINESIS_ENDPOINT set) it needs an HTTP/1.1 handler: the SDK's
 * default fails there. A keep-alive agent serves both cases.
 *
 * SDK retries are off (`maxAttempts: 1`): the publisher and the consumer own their retries, ordering and
 * backoff. One failure is not theirs to handle: a keep-alive socket the server closed just as the client
 * reused it (`socket hang up` / ECONNRESET / EPIPE before any response). That request is sent once more at
 * once, on a new socket, instead of failing a whole batch (a consumer re-reading from its checkpoint after
 * a backoff). Both calls we make tolerate it: GetRecords with the same iterator is a read, and PutRecords
 * sent twice only duplicates records (at-least-once; no other call in flight holds their partition keys).
 */
import http from 'node:http';
import https from 'node:https';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface KinesisSettings {
  KINESIS_ENDPOINT?: string | undefined;
  AWS_REGION: string;
}

/** A request that died on a reused keep-alive socket, before any response came back. */
export function isStaleSocketError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if ((e as { $response?: unknown }).$response !== undefined) return false;
  return code === 'ECONNRESET' || code === 'EPIPE' || e.message === 'socket hang up';
}

export function createKinesis(s: KinesisSettings): KinesisClient {
  const local = !!s.KINESIS_ENDPOINT;
  const client = new KinesisClient({
    region: s.AWS_REGION,
    ...(local
      ? {
          endpoint: s.KINESIS_ENDPOINT,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
      : {}),
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 32 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 32 }),
      connectionTimeout: 5_000,
      requestTimeout: 30_000,
    }),
    maxAttempts: 1,
  });
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (e) {
        if (!isStaleSocketError(e)) throw e;
        return next(args);
      }
    },
    { step: 'finalizeRequest', name: 'drugsyncStaleSocketRetry', priority: 'high' },
  );
  return client;
}
