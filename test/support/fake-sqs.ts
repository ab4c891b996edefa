/**
 * A loopback SQS speaking the JSON protocol the AWS SDK uses (SendMessageBatch, ReceiveMessage,
 * DeleteMessageBatch), for the SQS dead-letter queue through the real SDK: there is no SQS on the local
 * stack. `refuse` makes SendMessageBatch report the matching entries as Failed (as SQS does per entry);
 * `close` ends the server and its open connections (the SDK keeps them alive), after which every call is
 * refused.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMessage {
  id: string;
  body: string;
  receipt: string | null;
  visibleAt: number;
}

type Handler = (input: Record<string, unknown>) => unknown;

function handlers(queue: FakeMessage[], refuse: (body: string) => boolean): Record<string, Handler> {
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  return {
    SendMessageBatch: (input) => {
      const entries = input.Entries as { Id: string; MessageBody: string }[];
      const failed = entries.filter((e) => refuse(e.MessageBody));
      return {
        Successful: entries
          .filter((e) => !refuse(e.MessageBody))
          .map((e) => {
            const id = randomUUID();
            queue.push({ id, body: e.MessageBody, receipt: null, visibleAt: 0 });
            return { Id: e.Id, MessageId: id, MD5OfMessageBody: md5(e.MessageBody) };
          }),
        Failed: failed.map((e) => ({
          Id: e.Id,
          SenderFault: true,
          Code: 'InvalidParameterValue',
          Message: 'Message must be shorter than 262144 bytes.',
        })),
      };
    },
    ReceiveMessage: (input) => {
      const now = Date.now();
      const batch = queue.filter((m) => m.visibleAt <= now).slice(0, Number(input.MaxNumberOfMessages ?? 1));
      for (const m of batch) {
        m.receipt = randomUUID();
        m.visibleAt = now + Number(input.VisibilityTimeout ?? 30) * 1000;
      }
      return {
        Messages: batch.map((m) => ({
          MessageId: m.id,
          ReceiptHandle: m.receipt,
          Body: m.body,
          MD5OfBody: md5(m.body),
        })),
      };
    },
    DeleteMessageBatch: (input) => {
      const ok: { Id: string }[] = [];
      for (const e of input.Entries as { Id: string; ReceiptHandle: string }[]) {
        const i = queue.findIndex((m) => m.receipt === e.ReceiptHandle);
        if (i >= 0) queue.splice(i, 1);
        ok.push({ Id: e.Id });
      }
      return { Successful: ok, Failed: [] };
    },
  };
}

export async function startFakeSqs(opts: { refuse?: (body: string) => boolean } = {}) {
  const queue: FakeMessage[] = [];
  const ops = handlers(queue, opts.refuse ?? (() => false));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const handler = ops[op];
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (!handler) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidAction', message: op }));
        return;
      }
      res.end(JSON.stringify(handler(JSON.parse(body || '{}') as Record<string, unknown>)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    queue,
    url: `http://127.0.0.1:${port}/123456789012/drugsync-dev-embedder-dlq`,
    endpoint: `http://127.0.0.1:${port}`,
    inject: (body: string) => queue.push({ id: randomUUID(), body, receipt: null, visibleAt: 0 }),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
