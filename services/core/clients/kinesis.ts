/**
 * Kinesis client. Against kinesalite (KINESIS_ENDPOINT set) it needs an HTTP/1.1 handler: the SDK's
 * default fails there. A keep-alive agent serves both cases.
 */
import http from 'node:http';
import https from 'node:https';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface KinesisSettings {
  KINESIS_ENDPOINT?: string | undefined;
  AWS_REGION: string;
}

export function createKinesis(s: KinesisSettings): KinesisClient {
  const local = !!s.KINESIS_ENDPOINT;
  return new KinesisClient({
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
}
