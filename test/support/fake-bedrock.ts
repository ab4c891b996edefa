/**
 * A fake Bedrock runtime for the Titan path: answers `POST /model/{modelId}/invoke` as Titan Text
 * Embeddings v2 does, with knobs for latency, a requests-per-minute quota (429 ThrottlingException beyond
 * it, exactly as Bedrock signals it: `x-amzn-ErrorType` header and a JSON `{message}`), rejected inputs
 * (400 ValidationException: a marker, or more than Titan's 50,000 characters), and injected server errors.
 * Vectors are deterministic (the lexical embedder of a prefixed text), unit length, of the requested size.
 * Used through the real AWS SDK.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { lexicalVector } from '../../services/core/embedding/local.ts';

export interface FakeBedrockOptions {
  latencyMs?: number;
  /** requests per minute, enforced over a rolling one-second window (rpm / 60 per second); beyond: 429 */
  rpm?: number;
  /** texts containing this marker are rejected with 400 ValidationException */
  rejectMarker?: string;
  /** fail this share of requests with 500 (0..1) */
  serverErrorRate?: number;
  /** fail the next `count` requests with this status and error type (e.g. 503 ServiceUnavailableException) */
  failNext?: { count: number; status: number; errorType: string };
}

/** Titan Text Embeddings v2's input limit in characters. */
export const TITAN_INPUT_MAX_CHARS = 50_000;

export interface FakeBedrockStats {
  requests: number;
  ok: number;
  throttled: number;
  rejected: number;
  serverErrors: number;
  perText: Map<string, number>;
  /** longest inputText accepted, in characters */
  maxChars: number;
  /** times (ms) of successful requests, for rate checks */
  okTimes: number[];
}

export interface FakeBedrock {
  endpoint: string;
  stats: FakeBedrockStats;
  setOptions(o: FakeBedrockOptions): void;
  close(): Promise<void>;
}

export async function startFakeBedrock(initial: FakeBedrockOptions = {}): Promise<FakeBedrock> {
  let opts = { ...initial };
  const stats: FakeBedrockStats = {
    requests: 0,
    ok: 0,
    throttled: 0,
    rejected: 0,
    serverErrors: 0,
    perText: new Map(),
    maxChars: 0,
    okTimes: [],
  };
  const window: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stats.requests++;
      const send = (status: number, body: unknown, errorType?: string) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (errorType) headers['x-amzn-errortype'] = errorType;
        setTimeout(() => {
          res.writeHead(status, headers);
          res.end(JSON.stringify(body));
        }, opts.latencyMs ?? 0);
      };
      const m = /^\/model\/([^/]+)\/invoke$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m)
        return send(404, { message: `no route ${req.url}` }, 'ResourceNotFoundException');
      const now = Date.now();
      while (window.length && (window[0] as number) < now - 1_000) window.shift();
      if (opts.rpm !== undefined && window.length >= opts.rpm / 60) {
        stats.throttled++;
        return send(
          429,
          { message: 'Too many requests, please wait before trying again.' },
          'ThrottlingException',
        );
      }
      window.push(now);
      if (opts.failNext && opts.failNext.count > 0) {
        opts.failNext = { ...opts.failNext, count: opts.failNext.count - 1 };
        stats.serverErrors++;
        return send(opts.failNext.status, { message: 'injected failure' }, opts.failNext.errorType);
      }
      if (opts.serverErrorRate && Math.random() < opts.serverErrorRate) {
        stats.serverErrors++;
        return send(500, { message: 'internal' }, 'InternalServerException');
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        inputText: string;
        dimensions?: number;
      };
      if (typeof body.inputText !== 'string' || body.inputText.length > TITAN_INPUT_MAX_CHARS) {
        stats.rejected++;
        return send(
          400,
          {
            message: `Malformed input request: expected maxLength: ${TITAN_INPUT_MAX_CHARS}, please reformat your input and try again.`,
          },
          'ValidationException',
        );
      }
      if (opts.rejectMarker && body.inputText.includes(opts.rejectMarker)) {
        stats.rejected++;
        return send(400, { message: 'Malformed input request: text rejected' }, 'ValidationException');
      }
      if (body.dimensions !== undefined && ![256, 512, 1024].includes(body.dimensions)) {
        stats.rejected++;
        return send(
          400,
          { message: `Malformed input request: #/dimensions: ${body.dimensions} is not a valid enum value` },
          'ValidationException',
        );
      }
      stats.ok++;
      stats.okTimes.push(now);
      stats.perText.set(body.inputText, (stats.perText.get(body.inputText) ?? 0) + 1);
      stats.maxChars = Math.max(stats.maxChars, body.inputText.length);
      const dims = body.dimensions ?? 1024;
      send(200, {
        embedding: lexicalVector(`titan ${body.inputText}`, dims),
        inputTextTokenCount: body.inputText.split(' ').length,
      });
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    setOptions(o) {
      opts = { ...opts, ...o };
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
