/**
 * Bytes a change event costs on the stream in each framing (docs/change-event.md#why-zstd), measured on
 * synthetic catalogue rows (services/seed generator, the test factories' source) with the code the reader
 * and the consumer run: `encodeChangeEvent`, `compressRecord` (the old per-event gzip), `AggregateBuilder`
 * filled up to the sink's MAX_AGGREGATE_BYTES, and `frameAggregate` (zstd level AGGREGATE_ZSTD_LEVEL).
 *
 *   npx tsx scripts/record-sizes.ts [events per workload, default 20000]
 *
 * One shard's events of a 2-shard stream (NDCs routed by MD5 as the sink routes them), the catalogue in its
 * shuffled order and in NDC order (a load file sorted by NDC). Prints, for INSERT events (after image) and UPDATE events (a price-list change: both images): raw JSON
 * bytes, per-event gzip, and for aggregates of 1, 10, 100 events and full ones, bytes per event plain (kpl)
 * and zstd-framed, zstd's cost per event, and the per-shard ceiling min(1,000 records/s × events a record,
 * 1 MiB/s ÷ bytes an event). No server needed.
 */
import zlib from 'node:zlib';
import { MAX_AGGREGATE_BYTES } from '../services/binlog-reader/aggregating-sink.ts';
import { compressRecord, encodeChangeEvent } from '../services/core/events.ts';
import type { RowChangeEvent } from '../services/core/events.ts';
import { AggregateBuilder } from '../services/core/kpl.ts';
import type { SubRecord } from '../services/core/kpl.ts';
import { changes, generateCatalogue } from '../services/seed/generator.ts';
import { sourcePosition } from '../services/core/position.ts';
import { partitionHash } from '../services/core/shard-map.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { AGGREGATE_ZSTD_LEVEL, frameAggregate } from '../services/core/stream-record.ts';

const SHARD_RECORDS_PER_SEC = 1_000;
const SHARD_BYTES_PER_SEC = 1024 * 1024;

/** Events as the reader builds them: one transaction of `rows.length` rows, positions increasing. */
function buildEvents(rows: Rndc14Row[], kind: 'insert' | 'update'): RowChangeEvent[] {
  const file = 'binlog.000042';
  const ts = 1_767_225_600_000;
  return rows.map((row, i) => {
    const pos = 4_096 + i * 1_800;
    const common = {
      v: 1 as const,
      schema: 'fdb',
      table: 'rndc14',
      pos: sourcePosition(file, pos, 0),
      binlog: { file, pos, row: 0, next: pos + 1_800 },
      gtid: '0-1-90817',
      ts,
      txid: '0-1-90817',
      ndc: String(row.NDC),
    };
    return kind === 'insert'
      ? { ...common, type: 'insert', before: null, after: row }
      : { ...common, type: 'update', before: row, after: changes.priceList(row) };
  });
}

/** Aggregates of at most `perAggregate` events and MAX_AGGREGATE_BYTES, as the sink packs one shard. */
function aggregates(subs: SubRecord[], perAggregate: number): Buffer[] {
  const out: Buffer[] = [];
  const b = new AggregateBuilder();
  for (const s of subs) {
    if (b.count > 0 && (b.count >= perAggregate || !b.fits(s, MAX_AGGREGATE_BYTES))) out.push(b.build());
    b.add(s);
  }
  if (b.count > 0) out.push(b.build());
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function ceiling(eventsPerRecord: number, bytesPerEvent: number): number {
  return Math.min(SHARD_RECORDS_PER_SEC * eventsPerRecord, SHARD_BYTES_PER_SEC / bytesPerEvent);
}

function measure(kind: 'insert' | 'update', rows: Rndc14Row[]): void {
  const subs = buildEvents(rows, kind).map((e) => ({ partitionKey: e.ndc, data: encodeChangeEvent(e) }));
  const n = subs.length;
  const raw = sum(subs.map((s) => s.data.length)) / n;
  const gzip = sum(subs.map((s) => compressRecord(Buffer.from(s.data)).length)) / n;
  console.log(`\n${kind.toUpperCase()} events: ${fmt(n)}, JSON ${fmt(raw)} B an event`);
  console.log(`  one event a record: json ${fmt(raw)} B → ${fmt(ceiling(1, raw))} events/s a shard;`);
  console.log(`                      gzip-1 ${fmt(gzip)} B → ${fmt(ceiling(1, gzip))} events/s a shard`);
  for (const per of [1, 10, 100, Infinity]) {
    const kpls = aggregates(subs, per);
    const t0 = performance.now();
    const framed = kpls.map((k) => frameAggregate(k, 'zstd'));
    const zstdUs = ((performance.now() - t0) * 1000) / n;
    const t1 = performance.now();
    for (const f of framed) zlib.zstdDecompressSync(f);
    const unzstdUs = ((performance.now() - t1) * 1000) / n;
    const perRecord = n / kpls.length;
    const kpl = sum(kpls.map((k) => k.length)) / n;
    const z = sum(framed.map((f) => f.length)) / n;
    const label = per === Infinity ? `full (≤${fmt(MAX_AGGREGATE_BYTES)} B)` : `${per}`;
    console.log(
      `  aggregates of ${label}: ${fmt(perRecord)} events a record; kpl ${fmt(kpl)} B an event ` +
        `→ ${fmt(ceiling(perRecord, kpl))}/s; kpl+zstd-${AGGREGATE_ZSTD_LEVEL} ${z.toFixed(1)} B an event ` +
        `→ ${fmt(ceiling(perRecord, z))}/s; zstd ${zstdUs.toFixed(1)} µs, unzstd ${unzstdUs.toFixed(1)} µs an event`,
    );
  }
}

/** One shard's rows of a 2-shard stream (MD5 of the NDC in the lower half of the key space, as routed). */
function shardRows(count: number, order: 'shuffled' | 'ndc'): Rndc14Row[] {
  const half = 1n << 127n;
  const all = generateCatalogue({ rows: count * 2, seed: 7, order });
  return [...all].filter((r) => partitionHash(String(r.NDC)) < half).slice(0, count);
}

const count = Number(process.argv[2] ?? 20_000);
for (const order of ['shuffled', 'ndc'] as const) {
  console.log(`\n== catalogue in ${order} order, one shard of two ==`);
  const rows = shardRows(count, order);
  measure('insert', rows);
  measure('update', rows);
}
