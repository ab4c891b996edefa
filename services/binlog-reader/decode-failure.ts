/**
 * Which errors of the zongji stream are failures to decode an event (BINLOG_DECODE_FAILED: not retryable, a
 * restart would fail on the same event) rather than a connection or server failure. Row images go through
 * ./decoder.ts' hook, whose errors already name the column; what the hook does not see (the first rows event of
 * each kind, other events, zongji's "Unsupported type") is recognised here by where it was thrown. zongji's
 * error for a MySQL 8 event whose rows it skips (TRANSACTION_PAYLOAD, PARTIAL_UPDATE_ROWS) is
 * BINLOG_DECODE_FAILED too (`undecodedEventError`).
 */
import { DrugsyncError } from '../core/errors.ts';
import { binlogDecodeError, undecodedEventError } from './decode-errors.ts';

/** The first stack frame outside Node's own code lies in zongji's event parsing (not in its protocol code). */
const ZONGJI_PARSING = /@vlasky[\\/]zongji[\\/]lib[\\/](?!sequence[\\/])/;

/**
 * A stream error that is a failure to decode an event (BINLOG_DECODE_FAILED, not retryable: a restart
 * would fail on the same event), or null. MySQL errors carry an errno/sqlState and stay as they are.
 * `file`:`pos` is where the failing event starts, `table` the last table mapped (`schema.table`).
 */
export function decodeFailure(e: unknown, file: string, pos: number, table: string): DrugsyncError | null {
  if (e instanceof DrugsyncError) return e.code === 'BINLOG_DECODE_FAILED' ? e : null;
  if (!(e instanceof Error)) return null;
  const mysqlError = e as { errno?: unknown; sqlState?: unknown; code?: unknown };
  if (mysqlError.errno !== undefined || mysqlError.sqlState !== undefined) return null;
  const undecoded = undecodedEventError(e, file, pos);
  if (undecoded) return undecoded;
  const unsupported = /^Unsupported type "[^"]*" on column "([^"]*)"/.exec(e.message);
  const frame = (e.stack ?? '')
    .split('\n')
    .slice(1)
    .find((l) => !/\(node:|at node:/.test(l));
  if (!unsupported && !(frame && ZONGJI_PARSING.test(frame))) return null;
  const [schema, name] = table.includes('.') ? table.split('.', 2) : ['(unknown)', table];
  return binlogDecodeError(
    { file, pos, schema: schema as string, table: name as string, column: unsupported?.[1] ?? null },
    e,
  );
}
