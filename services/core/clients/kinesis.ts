/**
 * Kinesis client. Against kinesalite (KINESIS_ENDPOINT set) it needs an HTTP/1.1 handler: the SDK's
 * default fails there. One keep-alive handler (./http.ts) serves both cases.
 *
 * SDK retries are off (`maxAttempts: 1`): the publisher and the consumer own their retries, ordering and
 * backoff. One failure is not theirs to handle: a keep-alive socket the server closed just as the client
 * reused it (`socket hang up` / ECONNRESET / EPIPE before any response; rare once the handler honours the
 * server's keep-alive hint). That request is sent once more at once, instead of failing a whole batch (a
 * consumer re-reading from its checkpoint after a backoff). Both calls we make tolerate it: GetRecords
 * with the same iterator is a read, and PutRecords sent twice only duplicates records (at-least-once; no
 * other call in flight holds their partition keys).
 */
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { keepAliveHandler } from './http.ts';

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

export function createKinesis(settings: KinesisSettings): KinesisClient {
  const local = !!settings.KINESIS_ENDPOINT;
  const client = new KinesisClient({
    region: settings.AWS_REGION,
    ...(local
      ? {
          endpoint: settings.KINESIS_ENDPOINT,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
      : {}),
    requestHandler: keepAliveHandler(32),
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
