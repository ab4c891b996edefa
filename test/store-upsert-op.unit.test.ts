import { describe, expect, it } from 'vitest';
import { upsertOp } from '../services/core/drug-store-contract.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { contentHash, embeddingText, mapRow, textHash } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { sourcePosition } from '../services/core/position.ts';
import { changes, makeRow } from './support/factories.ts';

const id = { model: 'drugsync-lexical-v1', dimensions: 32 };
const pos = sourcePosition('binlog.000003', 4_096, 0);

function fieldsOf(row = makeRow({}, 3)): DrugFields {
  const f = mapRow(row);
  if (!f) throw new Error('factory row is not eligible');
  return f;
}

describe('upsertOp: the one builder of an upsert', () => {
  it('carries the content and text hashes of the fields under the identity, and the vector', () => {
    // Prepare
    const fields = fieldsOf();
    const vector = lexicalVector(embeddingText(fields), id.dimensions);

    // Act
    const op = upsertOp({ ndc: fields.ndc, pos, fields, identity: id, embedding: vector });

    // Assess
    expect(op).toEqual({
      kind: 'upsert',
      ndc: fields.ndc,
      pos,
      fields,
      contentHash: contentHash(fields, id),
      textHash: textHash(embeddingText(fields), id),
      embedding: vector,
    });
  });

  it('has no embedding key when none is given (the store keeps the stored vector)', () => {
    // Prepare
    const fields = fieldsOf();

    // Act
    const op = upsertOp({ ndc: fields.ndc, pos, fields, identity: id });

    // Assess
    expect(Object.keys(op)).not.toContain('embedding');
    expect(op.textHash).toBe(textHash(fields.drug_name, id));
  });

  it('changes both hashes on a rename and under another identity', () => {
    // Prepare
    const row = makeRow({}, 5);
    const before = fieldsOf(row);
    const after = fieldsOf(changes.rename(row, 'UPSERT'));

    // Act
    const a = upsertOp({ ndc: before.ndc, pos, fields: before, identity: id });
    const b = upsertOp({ ndc: after.ndc, pos, fields: after, identity: id });
    const wider = upsertOp({ ndc: before.ndc, pos, fields: before, identity: { ...id, dimensions: 64 } });

    // Assess
    expect(b.textHash).not.toBe(a.textHash);
    expect(b.contentHash).not.toBe(a.contentHash);
    expect(wider.textHash).not.toBe(a.textHash);
    expect(wider.contentHash).not.toBe(a.contentHash);
  });

  it('keeps both hashes when a column outside the document changes (a price list)', () => {
    // Prepare
    const row = makeRow({}, 7);
    const before = fieldsOf(row);
    const after = fieldsOf(changes.priceList(row));

    // Act
    const a = upsertOp({ ndc: before.ndc, pos, fields: before, identity: id });
    const b = upsertOp({ ndc: after.ndc, pos, fields: after, identity: id });

    // Assess
    expect(b.contentHash).toBe(a.contentHash);
    expect(b.textHash).toBe(a.textHash);
  });
});
