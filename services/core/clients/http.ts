/**
 * The HTTP/1.1 keep-alive handler our AWS SDK clients share (Kinesis, Bedrock; and kinesalite and the fake
 * Bedrock locally, where the SDK's default HTTP/2 handler fails).
 *
 * The agents' `timeout` is what lets Node honour a server's `Keep-Alive: timeout=N` hint (kinesalite and
 * Node servers send 5 s): a free socket is then closed by us at N - 1 s, before the server closes it.
 * Without an agent timeout Node keeps idle sockets forever and reuses them into the server's close, and
 * the request fails with `socket hang up`.
 */
import http from 'node:http';
import https from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export const REQUEST_TIMEOUT_MS = 30_000;

export function keepAliveHandler(maxSockets: number): NodeHttpHandler {
  const agent = { keepAlive: true, maxSockets, timeout: REQUEST_TIMEOUT_MS };
  return new NodeHttpHandler({
    httpAgent: new http.Agent(agent),
    httpsAgent: new https.Agent(agent),
    connectionTimeout: 5_000,
    requestTimeout: REQUEST_TIMEOUT_MS,
  });
}
