/**
 * The Kinesis client against a loopback HTTP server that behaves as a keep-alive server does when it closes
 * an idle socket just as the client reuses it: the connection ends with no response.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetRecordsCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { afterEach, describe, expect, it } from 'vitest';
import { createKinesis, isStaleSocketError } from '../services/core/clients/kinesis.ts';
import { isDrugsyncError, type DrugsyncError } from '../services/core/errors.ts';
import { listAllShards } from '../services/core/kinesis-shards.ts';

type Answer = 'drop' | { status: number; body: unknown };

let server: http.Server | null = null;

/** Answers the requests in turn from `answers` (the last one repeats); records each request's target. */
async function kinesisLike(
  answers: Answer[],
  keepAliveMs?: number,
): Promise<{ endpoint: string; targets: string[]; closes: Promise<'client' | 'server'>[] }> {
  const targets: string[] = [];
  const closes: Promise<'client' | 'server'>[] = [];
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      targets.push(`${String(req.headers['x-amz-target'])} ${body}`);
      const a = answers[Math.min(targets.length - 1, answers.length - 1)] as Answer;
      if (a === 'drop') {
        req.socket.destroy();
        return;
      }
      res.writeHead(a.status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(a.body));
    });
  });
  if (keepAliveMs !== undefined) server.keepAliveTimeout = keepAliveMs;
  // who ended each connection: 'end' is the client's FIN; a close without it is the server's own timeout
  server.on('connection', (socket) => {
    let ended = false;
    socket.on('end', () => (ended = true));
    closes.push(new Promise((r) => socket.on('close', () => r(ended ? 'client' : 'server'))));
  });
  await new Promise<void>((r) => (server as http.Server).listen(0, '127.0.0.1', r));
  const { port } = (server as http.Server).address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, targets, closes };
}

afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = null;
});

describe('Kinesis client: keep-alive sockets', () => {
  it("closes an idle socket itself, before the server's announced keep-alive timeout closes it", async () => {
    // Prepare: a server that keeps idle connections 2 s and says so (Keep-Alive: timeout=2), as kinesalite does
    const shards = { Shards: [{ ShardId: 'shardId-000000000000' }] };
    const srv = await kinesisLike([{ status: 200, body: shards }], 2000);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: srv.endpoint, AWS_REGION: 'us-east-1' });
    // Act: one request, then the socket sits idle in the pool
    const out = await kinesis.send(new ListShardsCommand({ StreamName: 'drugsync-changes' }));
    // Assess: the client ended the idle connection (so it never reuses one the server is closing)
    expect(out.Shards?.[0]?.ShardId).toBe('shardId-000000000000');
    expect(srv.closes).toHaveLength(1);
    expect(await srv.closes[0]).toBe('client');
    kinesis.destroy();
  });
});

describe('Kinesis client: a connection dropped before any response', () => {
  it('is sent once more, the same request, and the second answer is what the caller gets', async () => {
    // Prepare: the first GetRecords dies on the socket, the second is answered
    const records = { Records: [], NextShardIterator: 'AAAA-next', MillisBehindLatest: 0 };
    const srv = await kinesisLike(['drop', { status: 200, body: records }]);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: srv.endpoint, AWS_REGION: 'us-east-1' });
    // Act
    const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: 'AAAA-it', Limit: 1000 }));
    // Assess
    expect(out.NextShardIterator).toBe('AAAA-next');
    expect(srv.targets).toHaveLength(2);
    expect(srv.targets[1]).toBe(srv.targets[0]);
    expect(srv.targets[0]).toContain('Kinesis_20131202.GetRecords');
    kinesis.destroy();
  });

  it('fails on the second drop: one resend, never a loop', async () => {
    // Prepare: every connection is dropped
    const srv = await kinesisLike(['drop']);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: srv.endpoint, AWS_REGION: 'us-east-1' });
    // Act
    const err = await kinesis.send(new ListShardsCommand({ StreamName: 'drugsync-changes' })).catch((e) => e);
    // Assess
    expect(isStaleSocketError(err)).toBe(true);
    expect(srv.targets).toHaveLength(2);
    kinesis.destroy();
  });

  it('leaves an answered error to the caller: a throttled GetRecords is not sent again', async () => {
    // Prepare: Kinesis answers, with an error of its own
    const srv = await kinesisLike([
      {
        status: 400,
        body: {
          __type: 'ProvisionedThroughputExceededException',
          message: 'Rate exceeded for shard shardId-000000000000',
        },
      },
    ]);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: srv.endpoint, AWS_REGION: 'us-east-1' });
    // Act
    const err = (await kinesis
      .send(new GetRecordsCommand({ ShardIterator: 'AAAA-it' }))
      .catch((e: unknown) => e)) as Error;
    // Assess
    expect(err.name).toBe('ProvisionedThroughputExceededException');
    expect(isStaleSocketError(err)).toBe(false);
    expect(srv.targets).toHaveLength(1);
    kinesis.destroy();
  });
});

describe('Kinesis client: listing shards', () => {
  it('pages ListShards over the wire: the stream name first, then the NextToken alone', async () => {
    // Prepare: a stream of three shards served over two pages, as Kinesis pages a resharded stream
    const shard = (n: number) => ({
      ShardId: `shardId-00000000000${n}`,
      HashKeyRange: { StartingHashKey: String(n), EndingHashKey: String(n) },
      SequenceNumberRange: { StartingSequenceNumber: `4960${n}` },
    });
    const srv = await kinesisLike([
      { status: 200, body: { Shards: [shard(0), shard(1)], NextToken: 'AAAA-page-2' } },
      { status: 200, body: { Shards: [shard(2)] } },
    ]);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: srv.endpoint, AWS_REGION: 'us-east-1' });
    // Act
    const shards = await listAllShards(kinesis, 'drugsync-changes');
    // Assess
    expect(shards.map((s) => s.ShardId)).toEqual([0, 1, 2].map((n) => shard(n).ShardId));
    const bodies = srv.targets.map((t) => JSON.parse(t.slice(t.indexOf(' ') + 1)) as Record<string, unknown>);
    expect(bodies).toEqual([{ StreamName: 'drugsync-changes' }, { NextToken: 'AAAA-page-2' }]);
    kinesis.destroy();
  });

  it('turns an answered error into KINESIS_LIST_SHARDS_FAILED naming the stream', async () => {
    // Prepare: the stream does not exist
    const srv = await kinesisLike([
      {
        status: 400,
        body: {
          __type: 'ResourceNotFoundException',
          message: 'Stream drugsync-gone under account 000 not found.',
        },
      },
    ]);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: srv.endpoint, AWS_REGION: 'us-east-1' });
    // Act
    const err: unknown = await listAllShards(kinesis, 'drugsync-gone').catch((e: unknown) => e);
    // Assess
    expect(isDrugsyncError(err, 'KINESIS_LIST_SHARDS_FAILED')).toBe(true);
    expect((err as DrugsyncError).context.stream).toBe('drugsync-gone');
    expect((err as DrugsyncError).message).toContain('not found');
    kinesis.destroy();
  });
});
