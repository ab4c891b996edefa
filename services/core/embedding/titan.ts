/**
 * Amazon Titan Text Embeddings v2 through Bedrock's InvokeModel (one text per request), on a keep-alive
 * HTTP handler. The SDK does not retry (maxAttempts 1): the embedding service owns retries and slow-down,
 * so throttling is seen and acted on rather than hidden.
 */
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { keepAliveHandler } from '../clients/http.ts';
import { DrugsyncError } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Embedder } from './types.ts';

/**
 * Titan v2 accepts up to 8,192 tokens and 50,000 characters. A token never covers less than one byte of
 * UTF-8, so a text of at most 8,000 bytes is within both limits whatever its script or digits; longer texts
 * (drug names are ~20-60 characters, so only corrupt data) are cut to that many bytes, at a character
 * boundary, and the cut is logged.
 */
export const TITAN_MAX_BYTES = 8_000;

/** The longest prefix of `text` whose UTF-8 encoding fits in `maxBytes` (never splits a character). */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  return text.slice(0, end);
}

export interface TitanSettings {
  model: string;
  dimensions: number;
  region: string;
  endpoint?: string | undefined;
  concurrency: number;
  logger?: Logger;
}

/** How a Bedrock error is reported: the first rule naming its error name or HTTP status (else transient). */
interface BedrockErrorRule {
  names: readonly string[];
  status?: number;
  code: ErrorCode;
  what: string;
  retryable: boolean;
  remedy: string;
}

const BEDROCK_ERRORS: readonly BedrockErrorRule[] = [
  {
    names: [
      'ModelNotReadyException',
      'ModelTimeoutException',
      'ServiceUnavailableException',
      'InternalServerException',
    ],
    code: 'EMBEDDING_TRANSIENT',
    what: 'Bedrock is not ready',
    retryable: true,
    remedy: 'retried with backoff; if it persists, check the model status in the Bedrock console',
  },
  {
    names: ['ThrottlingException'],
    status: 429,
    code: 'EMBEDDING_THROTTLED',
    what: 'Bedrock throttled the request',
    retryable: true,
    remedy: 'the service slows down and retries; raise the Bedrock quota or lower EMBEDDING_RPM',
  },
  {
    names: ['ValidationException'],
    status: 400,
    code: 'EMBEDDING_FAILED',
    what: 'Bedrock rejected the input',
    retryable: false,
    remedy: 'the change is dead-lettered with this reason; fix the text or the model settings, then replay',
  },
  {
    names: ['AccessDeniedException', 'ResourceNotFoundException'],
    status: 403,
    code: 'EMBEDDING_FAILED',
    what: 'Bedrock refused the model call',
    retryable: false,
    remedy: 'grant bedrock:InvokeModel on the model ARN and enable model access in the region',
  },
];

function classify(e: unknown, text: string): DrugsyncError {
  const err = e as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    code?: string;
  };
  const status = err.$metadata?.httpStatusCode;
  const name = err.name ?? '';
  const context = { model: '', status: status ?? null, error: name, text: text.slice(0, 60) };
  const rule = BEDROCK_ERRORS.find(
    (r) => r.names.includes(name) || (status !== undefined && r.status === status),
  );
  if (!rule) {
    return new DrugsyncError('EMBEDDING_TRANSIENT', `Bedrock call failed: ${err.message ?? name}`, {
      context,
      retryable: true,
      cause: e,
    });
  }
  return new DrugsyncError(rule.code, `${rule.what}: ${err.message ?? name}`, {
    context,
    retryable: rule.retryable,
    cause: e,
    remedy: rule.remedy,
  });
}

/** True for an endpoint on this machine (the fake Bedrock of the tests and the local stack). */
export function isLocalEndpoint(endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (e) {
    throw new DrugsyncError('CONFIG_INVALID', `BEDROCK_ENDPOINT is not a URL: "${endpoint}"`, {
      context: { variables: ['BEDROCK_ENDPOINT'] },
      remedy: 'set BEDROCK_ENDPOINT to a URL such as http://127.0.0.1:4599, or unset it to use AWS',
      cause: e,
    });
  }
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(url.hostname);
}

export function createTitanEmbedder(settings: TitanSettings): Embedder {
  const client = new BedrockRuntimeClient({
    region: settings.region,
    maxAttempts: 1,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    // A local fake Bedrock needs no real credentials; any other endpoint (a VPC endpoint, say) keeps the
    // default credential chain (task role, profile, environment).
    ...(settings.endpoint && isLocalEndpoint(settings.endpoint) && !process.env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    requestHandler: keepAliveHandler(Math.max(1, settings.concurrency)),
  });
  return {
    model: settings.model,
    dimensions: settings.dimensions,
    maxBatch: 1,
    async embed(texts) {
      const out: number[][] = [];
      for (const original of texts) {
        const text = truncateUtf8(original, TITAN_MAX_BYTES);
        if (text !== original) {
          settings.logger?.warn('embedding text truncated to the Titan input limit', {
            model: settings.model,
            chars: original.length,
            kept_chars: text.length,
            max_bytes: TITAN_MAX_BYTES,
            preview: original.slice(0, 60),
          });
        }
        try {
          const res = await client.send(
            new InvokeModelCommand({
              modelId: settings.model,
              contentType: 'application/json',
              accept: 'application/json',
              body: JSON.stringify({ inputText: text, dimensions: settings.dimensions, normalize: true }),
            }),
          );
          const body = JSON.parse(Buffer.from(res.body).toString('utf8')) as { embedding?: number[] };
          if (!Array.isArray(body.embedding) || body.embedding.length !== settings.dimensions) {
            throw new DrugsyncError(
              'EMBEDDING_FAILED',
              `Bedrock returned no ${settings.dimensions}-d embedding`,
              {
                context: { model: settings.model, got: body.embedding?.length ?? null },
              },
            );
          }
          out.push(body.embedding);
        } catch (e) {
          if (e instanceof DrugsyncError) throw e;
          const err = classify(e, text);
          err.context.model = settings.model;
          throw err;
        }
      }
      return out;
    },
  };
}
