/**
 * A fake Secrets Manager on 127.0.0.1 speaking the real GetSecretValue protocol (JSON 1.1: `POST /`,
 * `X-Amz-Target: secretsmanager.GetSecretValue`, `{"SecretId"}` in, `{"ARN","Name","SecretString",
 * "VersionId","CreatedDate"}` out; an unknown secret answers 400 ResourceNotFoundException with the
 * `x-amzn-ErrorType` header, as AWS does). Reached through the real AWS SDK client by pointing
 * SECRETS_MANAGER_ENDPOINT at `endpoint`. `put` replaces a secret's value the way a rotation moves
 * AWSCURRENT: the next read returns the new value under a new VersionId.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeSecretsManager {
  endpoint: string;
  /** SecretString per ARN; an ARN not present answers ResourceNotFoundException. */
  secrets: Map<string, string>;
  /** every request as "<target> <SecretId>", in order */
  requests: string[];
  /** sets a secret's value (a new version); reads after this return it */
  put(arn: string, value: string): void;
  /** GetSecretValue calls answered for this ARN (found or not) */
  reads(arn: string): number;
  close(): Promise<void>;
}

function notFound(res: http.ServerResponse, id: string): void {
  res.statusCode = 400;
  res.setHeader('x-amzn-errortype', 'ResourceNotFoundException');
  res.end(
    JSON.stringify({ __type: 'ResourceNotFoundException', message: `Secrets Manager can't find ${id}` }),
  );
}

export async function startFakeSecretsManager(): Promise<FakeSecretsManager> {
  const secrets = new Map<string, string>();
  const versions = new Map<string, number>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { SecretId?: string };
      const id = body.SecretId ?? '';
      requests.push(`${target} ${id}`);
      const value = secrets.get(id);
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target !== 'secretsmanager.GetSecretValue' || value === undefined) return notFound(res, id);
      res.end(
        JSON.stringify({
          ARN: id,
          Name: id.split(':').at(-1),
          SecretString: value,
          VersionId: `v${versions.get(id) ?? 1}`,
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    secrets,
    requests,
    put(arn, value) {
      secrets.set(arn, value);
      versions.set(arn, (versions.get(arn) ?? 0) + 1);
    },
    reads: (arn) => requests.filter((r) => r === `secretsmanager.GetSecretValue ${arn}`).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
