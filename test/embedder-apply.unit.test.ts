/**
 * Unit tests of the embedder core (applyBatch, runMaintenance, firstFailurePerShard: where a shard is
 * re-read from after a failure), on realistic rndc14 rows and change events, with in-memory fakes of the store and embedding
 * service (the real Redis store is exercised in test/embedder-integration.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { DrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { contentHash, embeddingText, mapRow, textHash } from '../services/core/mapping.ts';
import type { DocMeta, UpsertOp } from '../services/core/drug-store-contract.ts';
import type { ChangeEvent } from '../services/core/events.ts';
import { encodeChangeEvent } from '../services/core/events.ts';
import { encodeAggregate } from '../services/core/kpl.ts';
import { frameAggregate } from '../services/core/stream-record.ts';
import { applyBatch } from '../services/embedder/apply.ts';
import { firstFailurePerShard } from '../services/embedder/apply-run.ts';
import type { ApplyDeps } from '../services/embedder/apply-run.ts';
import { runMaintenance } from '../services/embedder/maintenance.ts';
import { deadLetterRecord } from '../services/embedder/dlq.ts';
import { EventFactory, RecordFactory, makeRow } from './support/events.ts';
import { MemoryDeadLetterQueue } from './support/fake-dlq.ts';
import { MemoryDrugStore } from './support/fake-drug-store.ts';
import { MemoryEmbeddingService } from './support/fake-embedding.ts';
import { MemoryTableState } from './support/fake-table-state.ts';

function setup(opts: { now?: () => number } = {}) {
  const lines: string[] = [];
  const deps = {
    store: new MemoryDrugStore(),
    embeddings: new MemoryEmbeddingService(16),
    dlq: new MemoryDeadLetterQueue(),
    tableState: new MemoryTableState(),
    log: createLogger(
      { service: 'embedder-test' },
      { json: true, level: 'debug', write: (l) => lines.push(l) },
    ),
    stream: 'test-stream',
    truncateQuietMs: 10_000,
    now: opts.now,
  } satisfies ApplyDeps;
  return { deps, lines, ev: new EventFactory(), rec: new RecordFactory() };
}

type Setup = ReturnType<typeof setup>;

/** Applies events as one shard's batch. */
async function apply(s: Setup, events: (ChangeEvent | Uint8Array)[]) {
  return applyBatch(s.rec.records(events), s.deps);
}

describe('applyBatch', () => {
  it('inserts eligible rows as documents, embedding each distinct name once', async () => {
    // Prepare: 24 rows over 12 products → 12 distinct names
    const s = setup();
    const rows = Array.from({ length: 24 }, (_, i) => makeRow(i));
    // Act
    const { results, stats } = await apply(
      s,
      rows.map((r) => s.ev.insert(r)),
    );
    // Assess
    expect(results.every((r) => r.status === 'applied' && r.detail === 'written')).toBe(true);
    expect(s.deps.store.docs.size).toBe(24);
    const names = new Set(rows.map((r) => embeddingText(mapRow(r)!)));
    expect(s.deps.embeddings.calls.length).toBe(names.size);
    expect(stats).toMatchObject({
      records: 24,
      upserted: 24,
      embeddingsRequested: names.size,
      deadLettered: 0,
    });
    const first = s.deps.store.docs.get(String(rows[0]!.NDC))!;
    expect(first.fields).toEqual(mapRow(rows[0]!));
    expect(stats.latencyP50Ms).not.toBeNull();
    expect(stats.latencyMs.length).toBe(24);
  });

  it('collapses the changes of one NDC to its newest state and embeds only that state', async () => {
    const s = setup();
    const v1 = makeRow(1);
    const v2 = { ...v1, LN: 'LISINOPRIL 5 MG TABLET', LN60: 'LISINOPRIL 5 MG TABLET' };
    const v3 = { ...v2, LN: 'LISINOPRIL 2.5 MG TABLET', PS: '30.000' };
    const other = makeRow(2);
    const events = [s.ev.insert(v1), s.ev.insert(other), s.ev.update(v1, v2), s.ev.update(v2, v3)];
    const { results, stats } = await apply(s, events);
    expect(results.map((r) => r.detail)).toEqual(['superseded', 'written', 'superseded', 'written']);
    expect(s.deps.store.docs.get(String(v1.NDC))!.fields.drug_name).toBe('LISINOPRIL 2.5 MG TABLET');
    expect(s.deps.store.meta.get(String(v1.NDC))!.pos).toBe(events[3]!.pos);
    expect(s.deps.embeddings.calls).toEqual(
      expect.arrayContaining([embeddingText(mapRow(v3)!), embeddingText(mapRow(other)!)]),
    );
    expect(s.deps.embeddings.calls).not.toContain('LISINOPRIL 5 MG TABLET');
    expect(stats).toMatchObject({ superseded: 2, upserted: 2, ndcs: 2 });
  });

  it('treats a delete followed by an insert in one batch as the insert, and insert+delete as a delete', async () => {
    const s = setup();
    const a = makeRow(3);
    const b = makeRow(4);
    await apply(s, [s.ev.insert(a)]);
    const a2 = { ...a, BN: 'LIPITOR XR' };
    const { results } = await apply(s, [s.ev.delete(a), s.ev.insert(a2), s.ev.insert(b), s.ev.delete(b)]);
    expect(results.map((r) => r.detail)).toEqual([
      'superseded',
      'fields_updated',
      'superseded',
      'tombstoned',
    ]);
    expect(s.deps.store.docs.get(String(a.NDC))!.fields.brand_name).toBe('LIPITOR XR');
    expect(s.deps.store.docs.has(String(b.NDC))).toBe(false);
    expect(s.deps.store.meta.get(String(b.NDC))!.tombstone).toBe(true);
  });

  it('refuses duplicate and out-of-order deliveries: the newest state stays', async () => {
    const s = setup();
    const v1 = makeRow(5);
    const v2 = { ...v1, LN: 'ATORVASTATIN 80 MG TABLET' };
    const ins = s.ev.insert(v1);
    const upd = s.ev.update(v1, v2);
    // newer first, then the older one arrives (a replay from an old checkpoint), then a duplicate
    await apply(s, [upd]);
    const late = await apply(s, [ins]);
    const dup = await apply(s, [upd, upd]);
    expect(late.results[0]).toMatchObject({ status: 'applied', detail: 'stale' });
    expect(dup.results.map((r) => r.detail)).toEqual(['duplicate', 'stale']);
    expect(late.stats.staleRefused + dup.stats.staleRefused).toBe(2);
    expect(s.deps.store.docs.get(String(v1.NDC))!.fields.drug_name).toBe('ATORVASTATIN 80 MG TABLET');
    // stale ones were skipped before embedding
    expect(s.deps.embeddings.calls).toEqual(['ATORVASTATIN 80 MG TABLET']);
  });

  it('rewrites fields without any embedding call when the name did not change', async () => {
    const s = setup();
    const rows = Array.from({ length: 10 }, (_, i) => makeRow(100 + i));
    await apply(
      s,
      rows.map((r) => s.ev.insert(r)),
    );
    const callsBefore = s.deps.embeddings.calls.length;
    const hitsBefore = s.deps.embeddings.totals().cacheHits;
    const vectorBefore = s.deps.store.docs.get(String(rows[0]!.NDC))!.embedding;
    // price / date / flag changes and a brand change: the text (drug name) stays
    const updates = rows.map((r, i) =>
      s.ev.update(r, { ...r, PS: '500.000', DUPDC: '2026-11-20 00:00:00.000000', INNOV: i % 2 ? '1' : '0' }),
    );
    const { stats } = await apply(s, updates);
    expect(s.deps.embeddings.calls.length - callsBefore).toBe(0);
    expect(s.deps.embeddings.totals().cacheHits - hitsBefore).toBe(0);
    expect(stats.embeddingsRequested).toBe(0);
    expect(stats.fieldsUpdated + stats.unchanged).toBe(10);
    expect(stats.fieldsUpdated).toBeGreaterThan(0);
    expect(s.deps.store.docs.get(String(rows[0]!.NDC))!.embedding).toBe(vectorBefore);
  });

  it('an update that changes nothing mapped leaves the document as it is (unchanged)', async () => {
    const s = setup();
    const r = makeRow(7);
    await apply(s, [s.ev.insert(r)]);
    const { results } = await apply(s, [s.ev.update(r, { ...r, SHIPPER: 24 })]);
    expect(results[0]!.detail).toBe('unchanged');
    expect(s.deps.store.applied.length).toBe(1);
  });

  it('removes a row that becomes ineligible and adds one that becomes eligible', async () => {
    const s = setup();
    const r = makeRow(8);
    await apply(s, [s.ev.insert(r)]);
    const short = { ...r, LN: ' AB ' }; // LENGTH(TRIM(LN)) = 2
    const out1 = await apply(s, [s.ev.update(r, short)]);
    expect(out1.results[0]!.detail).toBe('deleted');
    expect(s.deps.store.docs.has(String(r.NDC))).toBe(false);
    const nullName = makeRow(9, { LN: null });
    await apply(s, [s.ev.insert(nullName)]);
    expect(s.deps.store.docs.has(String(nullName.NDC))).toBe(false);
    const out2 = await apply(s, [s.ev.update(short, r), s.ev.update(nullName, makeRow(9))]);
    expect(out2.results.map((x) => x.detail)).toEqual(['written', 'written']);
    expect(s.deps.store.docs.get(String(r.NDC))!.fields).toEqual(mapRow(r));
  });

  it('an NDC change deletes the old NDC and writes the new one', async () => {
    const s = setup();
    const old = makeRow(10);
    await apply(s, [s.ev.insert(old)]);
    const renamed = { ...old, NDC: '99999000199' };
    const [del, ins] = s.ev.ndcChange(old, renamed);
    const { results, stats } = await apply(s, [del, ins]);
    expect(results.map((r) => [r.ndc, r.detail])).toEqual([
      [String(old.NDC), 'deleted'],
      ['99999000199', 'written'],
    ]);
    expect(s.deps.store.docs.has(String(old.NDC))).toBe(false);
    expect(s.deps.store.docs.get('99999000199')!.fields.ndc).toBe('99999000199');
    // same name: the vector came from the cache, no new model call
    expect(stats.embeddingsRequested).toBe(0);
    expect(stats.cacheHits).toBe(1);
  });

  it('a truncate deletes nothing at once; documents not reloaded are swept after the quiet period', async () => {
    let clock = 1_000_000;
    const s = setup({ now: () => clock });
    const rows = Array.from({ length: 20 }, (_, i) => makeRow(200 + i));
    await apply(
      s,
      rows.map((r) => s.ev.insert(r)),
    );
    const calls = s.deps.embeddings.calls.length;
    // Act: TRUNCATE + reload of 15 of the 20 rows (unchanged catalogue), one row renamed
    const reload = rows
      .slice(0, 15)
      .map((r, i) => (i === 0 ? { ...r, LN: 'SERTRALINE HCL 100 MG TABLET' } : r));
    const trunc = s.ev.truncate();
    const out = await apply(s, [trunc, ...reload.map((r) => s.ev.insert(r))]);
    // Assess: nothing deleted yet, everything still searchable
    expect(out.results[0]!.detail).toBe('truncate_recorded');
    expect(out.stats.deleted).toBe(0);
    expect(s.deps.store.docs.size).toBe(20);
    expect(s.deps.tableState.truncate!.pos).toBe(trunc.pos);
    expect(out.stats.unchanged).toBe(14);
    expect(s.deps.embeddings.calls.length - calls).toBe(1); // only the renamed one
    // not settled yet: more rows arrive within the quiet period
    clock += 5_000;
    expect((await runMaintenance(s.deps)).swept).toBeNull();
    expect(s.deps.store.docs.size).toBe(20);
    // a lagging shard delivers an older upsert of a dropped row: refused by the truncate floor
    const lagging = await applyBatch(
      new RecordFactory('shardId-000000000001').records([
        { ...s.ev.insert(rows[19]!), pos: rows19Pos(trunc.pos) },
      ]),
      s.deps,
    );
    expect(lagging.results[0]!.detail).toBe('stale');
    clock += 10_001;
    const m = await runMaintenance(s.deps);
    expect(m.swept).toBe(trunc.pos);
    expect(s.deps.store.docs.size).toBe(15);
    for (const r of rows.slice(15)) expect(s.deps.store.docs.has(String(r.NDC))).toBe(false);
    expect(s.deps.tableState.truncate).toBeNull();
    expect(s.deps.tableState.floor).toBe(trunc.pos);
    // the truncate delivered again (a retry) does not start a new sweep
    await apply(s, [trunc]);
    expect(s.deps.tableState.truncate).toBeNull();
  });

  it('records a resync as pending with a warning, never dropping it', async () => {
    const s = setup();
    const r = makeRow(11);
    const { results, stats } = await apply(s, [s.ev.resync(), s.ev.insert(r)]);
    expect(results[0]).toMatchObject({ status: 'applied', detail: 'resync_recorded' });
    expect(stats.resyncs).toBe(1);
    expect(s.deps.tableState.resyncs.size).toBe(1);
    expect(s.lines.some((l) => /"level":"warn"/.test(l) && /resync event recorded as PENDING/.test(l))).toBe(
      true,
    );
    expect((await runMaintenance(s.deps)).resyncsPending).toBe(1);
    expect(s.deps.store.docs.has(String(r.NDC))).toBe(true);
  });

  it('dead-letters a Kinesis record no framing reads with the framing and its reason', async () => {
    // Prepare: a zstd frame cut short (the shard reader could not unpack it, so it arrives whole) beside an insert
    const s = setup();
    const row = makeRow(320);
    const aggregate = frameAggregate(
      encodeAggregate([{ partitionKey: String(row.NDC), data: encodeChangeEvent(s.ev.insert(row)) }]),
      'zstd',
    );
    // Act
    const { results } = await apply(s, [
      aggregate.subarray(0, aggregate.length - 6),
      s.ev.insert(makeRow(321)),
    ]);
    // Assess
    expect(results.map((r) => r.status)).toEqual(['dead_lettered', 'applied']);
    const [letter] = await s.deps.dlq.list();
    expect(letter!.error.code).toBe('STREAM_RECORD_INVALID');
    expect(letter!.error.message).toMatch(/kpl\+zstd record could not be read/);
  });

  it('dead-letters poison records (undecodable, text rejected) and applies the rest', async () => {
    const s = setup();
    const good = Array.from({ length: 5 }, (_, i) => makeRow(300 + i));
    const rejected = makeRow(305, { LN: 'IBUPROFEN 800 MG TABLET' });
    s.deps.embeddings.failing.set(
      'IBUPROFEN 800 MG TABLET',
      new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected', { retryable: false }),
    );
    const events: (ChangeEvent | Uint8Array)[] = [
      s.ev.insert(good[0]!),
      Buffer.from('{"v":1,"type":"insert"', 'utf8'),
      s.ev.insert(good[1]!),
      s.ev.insert(rejected),
      Buffer.from(JSON.stringify({ v: 2, type: 'insert' }), 'utf8'),
      ...good.slice(2).map((r) => s.ev.insert(r)),
    ];
    const { results, stats } = await apply(s, events);
    expect(results.map((r) => r.status)).toEqual([
      'applied',
      'dead_lettered',
      'applied',
      'dead_lettered',
      'dead_lettered',
      'applied',
      'applied',
      'applied',
    ]);
    expect(stats.deadLettered).toBe(3);
    expect(s.deps.store.docs.size).toBe(5);
    const letters = await s.deps.dlq.list();
    expect(letters.map((l) => l.error.code).sort()).toEqual([
      'EMBEDDING_FAILED',
      'EVENT_DECODE_FAILED',
      'EVENT_VERSION_UNSUPPORTED',
    ]);
    const rej = letters.find((l) => l.error.code === 'EMBEDDING_FAILED')!;
    expect(rej).toMatchObject({
      ndc: String(rejected.NDC),
      stream: 'test-stream',
      shardId: 'shardId-000000000000',
    });
    expect(Date.parse(rej.time)).not.toBeNaN();
    // the letter carries the record: replaying it after the cause is fixed applies it
    s.deps.embeddings.failing.clear();
    const replay = await applyBatch([deadLetterRecord(rej)], s.deps);
    expect(replay.results[0]!.detail).toBe('written');
    expect(s.deps.store.docs.get(String(rejected.NDC))!.fields.drug_name).toBe('IBUPROFEN 800 MG TABLET');
  });

  it('a transient failure blocks every later record of that NDC, not the other NDCs', async () => {
    const s = setup();
    const a = makeRow(400, { LN: 'WARFARIN 5 MG TABLET' });
    const b = makeRow(401);
    s.deps.embeddings.failing.set(
      'WARFARIN 5 MG TABLET',
      new DrugsyncError('EMBEDDING_THROTTLED', 'ThrottlingException after 6 retries', { retryable: true }),
    );
    const events = [s.ev.insert(a), s.ev.insert(b), s.ev.update(a, { ...a, PS: '30.000' })];
    const { results, stats } = await apply(s, events);
    expect(results.map((r) => [r.status, r.detail])).toEqual([
      ['failed', 'embedding_failed'],
      ['applied', 'written'],
      ['failed', 'blocked'],
    ]);
    expect(stats.failed).toBe(2);
    expect(stats.deadLettered).toBe(0);
    expect(s.deps.store.docs.has(String(a.NDC))).toBe(false);
    expect(s.deps.store.docs.has(String(b.NDC))).toBe(true);
  });

  it('fails the whole batch on a Redis outage and dead-letters nothing', async () => {
    const s = setup();
    s.deps.store.failNext = new DrugsyncError('REDIS_UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:16379', {
      retryable: true,
    });
    await expect(apply(s, [s.ev.insert(makeRow(500)), Buffer.from('garbage')])).rejects.toMatchObject({
      code: 'REDIS_UNAVAILABLE',
    });
    expect(s.deps.dlq.letters.length).toBe(0);
  });

  it("embeds and writes again when the stored text is not the event's (needs_embedding), in two round trips", async () => {
    // Prepare: a document written earlier; another writer (a backfill, say) recorded another name for it
    const s = setup();
    const r = makeRow(600);
    await apply(s, [s.ev.insert(r)]);
    const store = s.deps.store;
    const renamed = { ...r, LN: 'METFORMIN ER 750 MG TABLET' };
    const id = { model: s.deps.embeddings.model, dimensions: s.deps.embeddings.dimensions };
    const cur = store.meta.get(String(r.NDC)) as DocMeta;
    store.meta.set(String(r.NDC), {
      ...cur,
      textHash: textHash(embeddingText(mapRow(renamed)!), id),
      contentHash: contentHash(mapRow(renamed)!, id),
    });
    const newer = s.ev.update(r, { ...r, PS: '60.000' });
    const appliedBefore = store.applied.length;
    // Act
    const { results, stats } = await apply(s, [newer]);
    // Assess: first sent without a vector (refused: the text differs), then with it
    expect(results[0]!.detail).toBe('written');
    expect(stats.upserted).toBe(1);
    expect(store.meta.get(String(r.NDC))!.pos).toBe(newer.pos);
    expect(store.applied.length - appliedBefore).toBe(1);
    expect((store.applied.at(-1) as UpsertOp).embedding).toHaveLength(s.deps.embeddings.dimensions);
  });
});

/** A position just before `pos` (same file, smaller offset): an event the truncate already covers. */
function rows19Pos(pos: string): string {
  const [seq, off, row] = pos.split(':') as [string, string, string];
  return `${seq}:${String(Number(off) - 1).padStart(off.length, '0')}:${row}`;
}

describe('firstFailurePerShard (where a shard is re-read from)', () => {
  it('names the first failed record of the shard, so the retry starts there and skips nothing', async () => {
    // Prepare: six inserts; the 3rd and 5th names fail to embed (throttled), plus one poison record
    const s = setup();
    const rows = Array.from({ length: 6 }, (_, i) => makeRow(700 + i));
    rows[2] = makeRow(702, { LN: 'WARFARIN 5 MG TABLET' });
    rows[4] = makeRow(704, { LN: 'DIGOXIN 0.125 MG TABLET' });
    for (const name of ['WARFARIN 5 MG TABLET', 'DIGOXIN 0.125 MG TABLET'])
      s.deps.embeddings.failing.set(
        name,
        new DrugsyncError('EMBEDDING_THROTTLED', 'throttled', { retryable: true }),
      );
    const recs = s.rec.records([
      ...rows.map((r) => s.ev.insert(r)),
      Buffer.from('not json'), // poison: dead-lettered, not a failure
    ]);
    // Act
    const { results, stats } = await applyBatch(recs, s.deps);
    const first = firstFailurePerShard(results);
    // Assess: one entry for the shard, at the 3rd record; the poison record counts as done
    expect([...first.keys()]).toEqual([s.rec.shardId]);
    expect(first.get(s.rec.shardId)?.sequenceNumber).toBe(recs[2]!.sequenceNumber);
    expect(s.deps.dlq.letters.length).toBe(1);
    expect(stats).toMatchObject({ records: 7, upserted: 4, deadLettered: 1, failed: 2 });
    // the retry from the reported record applies the rest; earlier records are not redone
    s.deps.embeddings.failing.clear();
    const retry = await applyBatch(recs.slice(2), s.deps);
    expect(firstFailurePerShard(retry.results).size).toBe(0);
    expect(s.deps.store.docs.size).toBe(6);
  });

  it('keeps each shard apart and reports nothing when every record is applied or dead-lettered', async () => {
    // Prepare: records of two shards; only the second shard's second record fails
    const s = setup();
    const other = new RecordFactory('shardId-000000000001');
    const failing = makeRow(811, { LN: 'METFORMIN 500 MG TABLET' });
    s.deps.embeddings.failing.set(
      'METFORMIN 500 MG TABLET',
      new DrugsyncError('EMBEDDING_THROTTLED', 'throttled', { retryable: true }),
    );
    const a = s.rec.records([s.ev.insert(makeRow(800)), Buffer.from('{}')]);
    const b = other.records([s.ev.insert(makeRow(810)), s.ev.insert(failing), s.ev.insert(makeRow(812))]);
    // Act
    const { results } = await applyBatch([...a, ...b], s.deps);
    const first = firstFailurePerShard(results);
    // Assess
    expect(first.has(s.rec.shardId)).toBe(false);
    expect(first.get(other.shardId)?.sequenceNumber).toBe(b[1]!.sequenceNumber);
    expect(first.get(other.shardId)?.ndc).toBe(String(failing.NDC));
  });
});
